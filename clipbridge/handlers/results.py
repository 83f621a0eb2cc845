"""The clip result as replies and REST show it, built from a job in the store."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from clipbridge.errors import ClipError
from clipbridge.handlers.store import Job, StoredFile, now_iso

Status = Literal["pending", "waiting", "processing", "done", "partial", "failed", "rejected", "expired"]


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
    status: Status
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
    video_file: str | None = None
    file_size: int | None = None
    annotations: dict[str, str] = {}
    source_segments: list[SegmentOut] = []
    gaps: list[GapOut] = []
    trim: str | None = None
    metadata: dict[str, Any] = {}
    error: ErrorOut | None = None
    created_at: str | None = None
    completed_at: str | None = None


def _iso(dt: Any) -> str:
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def result_for(job: Job, files: list[StoredFile], base_url: str) -> ClipResult:
    base = base_url.rstrip("/")
    r = job.result or {}
    video = next((f for f in files if f.kind == "video"), None)
    expired = job.status == "expired"
    return ClipResult(
        clip_id=job.clip_id,
        event_id=job.event_id,
        status=job.status,  # type: ignore[arg-type]
        camera_id=job.camera_id,
        timestamp=_iso(job.incident),
        requested_start=_iso(job.window_start),
        requested_end=_iso(job.window_end),
        actual_start=r.get("actual_start"),
        actual_end=r.get("actual_end"),
        start_time=r.get("actual_start"),
        end_time=r.get("actual_end"),
        duration_seconds=r.get("duration_seconds"),
        download_url=f"{base}/videos/{video.name}" if video and not expired else None,
        video_file=r.get("video_file"),
        file_size=r.get("file_size"),
        annotations={} if expired else {f.kind: f"{base}/annotations/{f.name}" for f in files if f.kind != "video"},
        source_segments=[
            SegmentOut(
                filename=s["filename"], start_time=s["start_time"], end_time=s["end_time"], file_size=s["file_size"]
            )
            for s in r.get("source_clips", [])
        ],
        gaps=[GapOut(**g) for g in r.get("gaps", [])],
        trim=r.get("trim"),
        metadata=job.metadata,
        error=ErrorOut(code=job.error_code, message=job.error_message or "") if job.error_code else None,
        created_at=job.created_at,
        completed_at=job.completed_at,
    )


def rejection(error: ClipError, *, event_id: str | None = None, camera_id: str | None = None) -> ClipResult:
    return ClipResult(
        clip_id=None,
        event_id=event_id,
        status="rejected",
        camera_id=camera_id,
        error=ErrorOut(code=error.code, message=error.message),
        created_at=now_iso(),
        completed_at=now_iso(),
    )


def to_bytes(result: ClipResult) -> bytes:
    return result.model_dump_json().encode()
