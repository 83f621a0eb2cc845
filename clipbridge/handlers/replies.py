"""Every answer clipbridge gives, built and routed here: MQTT replies, REST bodies, `clipbridge clip`, annotations.

One shape (`ClipResult`) for all of them; where a reply goes (response topic, `reply_to`, result or error topic) is
decided by `Routing`, once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from clipbridge.bridge.topic import Topic
from clipbridge.errors import ClipError
from clipbridge.handlers.signing import signed_query
from clipbridge.handlers.storage.base import Presigned
from clipbridge.model import ClipRecord, FileKind, Job, ReplyStatus, ReplyTarget, StoredFile, iso, utcnow


class ErrorOut(BaseModel):
    code: str
    message: str


class GapOut(BaseModel):
    start: str
    end: str
    seconds: float
    reason: str


class SegmentOut(BaseModel):
    filename: str
    start_time: str
    end_time: str
    file_size: int | None


class CodecsOut(BaseModel):
    video: str
    audio: str | None
    audio_transcoded: bool
    width: int
    height: int


class ClipResult(BaseModel):
    """One shape for every answer: MQTT replies, `GET /clips/{id}`, list entries."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "clip_id": "3f2a9c0d1e4b5a67",
                    "event_id": "evt-42",
                    "status": "done",
                    "camera_id": "camera1",
                    "timestamp": "2025-08-29T14:30:15.000Z",
                    "requested_start": "2025-08-29T14:30:00.000Z",
                    "requested_end": "2025-08-29T14:30:20.000Z",
                    "actual_start": "2025-08-29T14:30:00.000Z",
                    "actual_end": "2025-08-29T14:30:20.000Z",
                    "start_time": "2025-08-29T14:30:00.000Z",
                    "end_time": "2025-08-29T14:30:20.000Z",
                    "duration_seconds": 20.0,
                    "download_url": "http://127.0.0.1:8080/videos/camera1_20250829_143015_3f2a9c0d1e4b5a67.mp4",
                    "video_file": "camera1_20250829_143015_3f2a9c0d1e4b5a67.mp4",
                    "file_size": 2112311,
                    "annotations": {
                        "json": "http://127.0.0.1:8080/annotations/camera1_20250829_143015_3f2a9c0d1e4b5a67.json"
                    },
                    "source_segments": [
                        {
                            "filename": "camera1_20250829_143000.mp4",
                            "start_time": "2025-08-29T14:30:00.000Z",
                            "end_time": "2025-08-29T14:30:05.000Z",
                            "file_size": 518543,
                        }
                    ],
                    "gaps": [],
                    "trim": "keyframe",
                    "codecs": {
                        "video": "h264",
                        "audio": "aac",
                        "audio_transcoded": False,
                        "width": 1920,
                        "height": 1080,
                    },
                    "metadata": {"label": "person", "zone": "B"},
                    "error": None,
                    "created_at": "2026-11-24T01:40:01.100Z",
                    "completed_at": "2026-11-24T01:40:01.156Z",
                }
            ]
        }
    )

    clip_id: str | None
    event_id: str | None = None
    status: ReplyStatus
    camera_id: str | None = None
    timestamp: str | None = None
    requested_start: str | None = None
    requested_end: str | None = None
    actual_start: str | None = None
    actual_end: str | None = None
    start_time: str | None = None  # the seed's names for actual_start/actual_end
    end_time: str | None = None
    duration_seconds: float | None = None
    download_url: str | None = None
    # With storage.backend s3: a direct link to the object, for subscribers that never talk to the side-app.
    presigned_url: str | None = None
    presigned_expires_at: str | None = None
    video_file: str | None = None
    snapshot_url: str | None = None  # a JPEG of the incident's frame (clips.snapshot_width wide)
    file_size: int | None = None
    annotations: dict[str, str] = {}
    source_segments: list[SegmentOut] = []
    gaps: list[GapOut] = []
    trim: str | None = None
    codecs: CodecsOut | None = None
    metadata: dict[str, Any] = {}
    error: ErrorOut | None = None
    warnings: list[str] = []  # e.g. the snapshot could not be made; the clip is fine
    created_at: str | None = None
    completed_at: str | None = None


FOLDERS: dict[FileKind, str] = {
    "video": "videos",
    "json": "annotations",
    "yaml": "annotations",
    "txt": "annotations",
    "jpg": "snapshots",
}


class Links(Protocol):
    """Where a stored file can be fetched: the side-app's URL (HTTP) or the file itself (`clipbridge clip`), and a
    direct expiring link when the file is in a bucket."""

    def url(self, file: StoredFile) -> str: ...

    def direct(self, file: StoredFile) -> Presigned | None: ...


@dataclass(frozen=True)
class HttpLinks:
    base_url: str
    presign: Callable[[StoredFile], Presigned | None] | None = None  # the clip storage's, when it has links
    signing_key: bytes | None = None  # links carry ?exp=&sig= and open without the bearer token
    ttl_seconds: int = 604800

    def url(self, file: StoredFile) -> str:
        path = f"/{FOLDERS[file.kind]}/{file.name}"
        if self.signing_key is None:
            return self.base_url.rstrip("/") + path
        query = signed_query(path, now=time.time(), ttl=self.ttl_seconds, key=self.signing_key)
        return f"{self.base_url.rstrip('/')}{path}?{query}"

    def direct(self, file: StoredFile) -> Presigned | None:
        return self.presign(file) if self.presign is not None else None


class FileLinks:
    def url(self, file: StoredFile) -> str:
        return Path(file.path).resolve().as_uri()

    def direct(self, file: StoredFile) -> Presigned | None:
        return None


def result_for(job: Job, files: Sequence[StoredFile], links: Links) -> ClipResult:
    """The answer for a job as it stands; an expired job keeps its record but loses its links."""
    r = job.record
    expired = job.status == "expired"
    video = None if expired else next((f for f in files if f.kind == "video"), None)
    direct = links.direct(video) if video else None
    snapshot = None if expired else next((f for f in files if f.kind == "jpg"), None)
    return ClipResult(
        clip_id=job.clip_id,
        event_id=job.event_id,
        status=job.status,
        camera_id=job.camera_id,
        timestamp=iso(job.window.incident),
        requested_start=iso(job.window.start),
        requested_end=iso(job.window.end),
        actual_start=iso(r.actual_start) if r else None,
        actual_end=iso(r.actual_end) if r else None,
        start_time=iso(r.actual_start) if r else None,
        end_time=iso(r.actual_end) if r else None,
        duration_seconds=r.duration_seconds if r else None,
        download_url=links.url(video) if video else None,
        presigned_url=direct.url if direct else None,
        presigned_expires_at=iso(direct.expires_at) if direct else None,
        video_file=r.video_file if r else None,
        snapshot_url=links.url(snapshot) if snapshot else None,
        file_size=r.file_size if r else None,
        annotations={} if expired else {f.kind: links.url(f) for f in files if f.kind not in ("video", "jpg")},
        source_segments=[
            SegmentOut(filename=s.filename, start_time=iso(s.start), end_time=iso(s.end), file_size=s.file_size)
            for s in (r.source_segments if r else ())
        ],
        gaps=[
            GapOut(start=iso(g.start), end=iso(g.end), seconds=round(g.seconds, 3), reason=g.reason)
            for g in (r.gaps if r else ())
        ],
        trim=r.trim if r else None,
        codecs=CodecsOut(**vars(r.codecs)) if r else None,
        metadata=job.metadata,
        error=ErrorOut(code=job.error.code, message=job.error.message) if job.error else None,
        warnings=list(r.warnings) if r else [],
        created_at=iso(job.created_at),
        completed_at=iso(job.completed_at) if job.completed_at else None,
    )


def rejection(error: ClipError, *, event_id: str | None = None, camera_id: str | None = None) -> ClipResult:
    now = iso(utcnow())
    return ClipResult(
        clip_id=None,
        event_id=event_id,
        status="rejected",
        camera_id=camera_id,
        error=ErrorOut(code=error.code, message=error.message),
        created_at=now,
        completed_at=now,
    )


def to_bytes(result: ClipResult) -> bytes:
    return result.model_dump_json().encode()


def annotation(job: Job, record: ClipRecord) -> dict[str, Any]:
    """The JSON annotation: the reply's fields without links, plus the seed's names (`incident_time`,
    `source_clips` with file paths and trim points, `source`), so files written by older versions still compare."""
    done = replace(job, status=record.status, record=record, completed_at=record.completed_at)
    fields = result_for(done, [], FileLinks()).model_dump(
        exclude={"download_url", "presigned_url", "presigned_expires_at", "snapshot_url", "annotations", "error"}
    )
    stored = record.to_json()
    return {
        **fields,
        "incident_time": stored["incident_time"],
        "source_clips": stored["source_clips"],
        "snapshot_file": record.snapshot_file,
        "source": job.source,
    }


@dataclass(frozen=True)
class Routing:
    """Where answers go: the request's MQTT v5 Response Topic (Correlation Data copied verbatim), else the payload's
    `reply_to`, else the result topic (`{camera_id}` filled) for results or the error topic for rejections."""

    result_topic: str
    error_topic: str

    def result_target(
        self, response_topic: str | None, correlation: bytes | None, reply_to: str | None, camera_id: str
    ) -> ReplyTarget:
        topic = Topic.parse(response_topic) or Topic.parse(reply_to)
        return ReplyTarget(str(topic) if topic else self.result_topic.format(camera_id=camera_id), correlation or b"")

    def error_target(self, response_topic: str | None, correlation: bytes | None, reply_to: object) -> ReplyTarget:
        topic = Topic.parse(response_topic) or (
            Topic.parse(reply_to) if isinstance(reply_to, str) and len(reply_to) <= 512 else None
        )
        return ReplyTarget(str(topic) if topic else self.error_topic, correlation or b"")
