"""The typed contracts every part shares: job statuses, error codes, the window, the clip record, the job.

Plain frozen dataclasses and Literals, no I/O: pydantic stays at the edges (config, events, replies, REST bodies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

JobStatus = Literal["pending", "waiting", "processing", "done", "partial", "failed", "expired"]
ReplyStatus = Literal["pending", "waiting", "processing", "done", "partial", "failed", "expired", "rejected"]

UNFINISHED: tuple[JobStatus, ...] = ("pending", "waiting", "processing")
BUSY: tuple[JobStatus, ...] = ("pending", "processing")  # need a worker now; waiting jobs hold none
WITH_FILES: tuple[JobStatus, ...] = ("done", "partial")
FINISHED: tuple[JobStatus, ...] = ("done", "partial", "failed", "expired")
OUTCOMES: tuple[JobStatus, ...] = ("done", "partial", "failed")  # how a job ends (clip_requests_total's labels)

ErrorCode = Literal[
    # the event itself (rejections)
    "invalid_json",
    "invalid_request",
    "payload_too_large",
    "unsafe_camera_id",
    "window_too_long",
    "unknown_camera",
    # cutting the clip (failed jobs)
    "no_footage",
    "segment_missing",
    "segment_unreadable",
    "ffmpeg_failed",
    "ffmpeg_timeout",
    "storage_error",
    "internal_error",
    # the service
    "config_error",
    "shutting_down",
    # REST only
    "not_found",
    "unauthorized",
    "index_scanning",
    "link_invalid",
    "link_expired",
    # `clipbridge publish` only
    "mqtt_unavailable",
    "timeout",
]
ERROR_CODES: tuple[ErrorCode, ...] = get_args(ErrorCode)
# What a job or an event can end with: clip_errors_total's label set, created at zero.
JOB_ERROR_CODES: tuple[ErrorCode, ...] = ERROR_CODES[: ERROR_CODES.index("internal_error") + 1]

GapReason = Literal["missing", "unreadable", "incompatible"]


def iso(t: datetime) -> str:
    """UTC, milliseconds, `Z`: every time clipbridge reports looks like 2025-08-29T14:30:15.000Z."""
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Window:
    """The requested span around an incident; times are aware UTC, `end` exclusive."""

    incident: datetime
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class Gap:
    start: datetime
    end: datetime
    reason: GapReason

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class SourceSegment:
    """A recorder file a clip was cut from, with the trim points used in its own timeline."""

    path: str
    start: datetime
    end: datetime
    file_size: int | None
    inpoint: float | None = None
    outpoint: float | None = None

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Codecs:
    video: str
    audio: str | None
    audio_transcoded: bool
    width: int
    height: int


@dataclass(frozen=True)
class ClipRecord:
    """What the clipper made: produced by the clipper, consumed by annotations, replies and the store."""

    clip_id: str
    camera_id: str
    status: Literal["done", "partial"]
    window: Window
    actual_start: datetime
    actual_end: datetime
    duration_seconds: float
    trim: str
    video_file: str
    file_size: int
    source_segments: tuple[SourceSegment, ...]
    gaps: tuple[Gap, ...]
    codecs: Codecs
    completed_at: datetime
    snapshot_file: str | None = None  # the JPEG at the incident (clips.snapshot_width), None when off or failed
    warnings: tuple[str, ...] = ()  # what went wrong without failing the clip (a snapshot that could not be made)

    def to_json(self) -> dict[str, Any]:
        """The stored form (the job row's `result`); the seed's annotation names, so old rows still read."""
        return {
            "clip_id": self.clip_id,
            "camera_id": self.camera_id,
            "status": self.status,
            "incident_time": iso(self.window.incident),
            "requested_start": iso(self.window.start),
            "requested_end": iso(self.window.end),
            "actual_start": iso(self.actual_start),
            "actual_end": iso(self.actual_end),
            "duration_seconds": self.duration_seconds,
            "trim": self.trim,
            "video_file": self.video_file,
            "file_size": self.file_size,
            "source_clips": [
                {
                    "file_path": s.path,
                    "filename": s.filename,
                    "start_time": iso(s.start),
                    "end_time": iso(s.end),
                    "file_size": s.file_size,
                    "inpoint": s.inpoint,
                    "outpoint": s.outpoint,
                }
                for s in self.source_segments
            ],
            "gaps": [
                {"start": iso(g.start), "end": iso(g.end), "seconds": round(g.seconds, 3), "reason": g.reason}
                for g in self.gaps
            ],
            "codecs": {
                "video": self.codecs.video,
                "audio": self.codecs.audio,
                "audio_transcoded": self.codecs.audio_transcoded,
                "width": self.codecs.width,
                "height": self.codecs.height,
            },
            "created_at": iso(self.completed_at),
            "snapshot_file": self.snapshot_file,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ClipRecord:
        c = d.get("codecs") or {}
        return cls(
            clip_id=d["clip_id"],
            camera_id=d["camera_id"],
            status=d["status"],
            window=Window(
                parse_iso(d["incident_time"]), parse_iso(d["requested_start"]), parse_iso(d["requested_end"])
            ),
            actual_start=parse_iso(d["actual_start"]),
            actual_end=parse_iso(d["actual_end"]),
            duration_seconds=float(d["duration_seconds"]),
            trim=d["trim"],
            video_file=d["video_file"],
            file_size=int(d["file_size"]),
            source_segments=tuple(
                SourceSegment(
                    path=s.get("file_path") or s["filename"],
                    start=parse_iso(s["start_time"]),
                    end=parse_iso(s["end_time"]),
                    file_size=s.get("file_size"),
                    inpoint=s.get("inpoint"),
                    outpoint=s.get("outpoint"),
                )
                for s in d.get("source_clips", [])
            ),
            gaps=tuple(Gap(parse_iso(g["start"]), parse_iso(g["end"]), g["reason"]) for g in d.get("gaps", [])),
            codecs=Codecs(
                video=c.get("video", ""),
                audio=c.get("audio"),
                audio_transcoded=bool(c.get("audio_transcoded", False)),
                width=int(c.get("width", 0)),
                height=int(c.get("height", 0)),
            ),
            completed_at=parse_iso(d.get("created_at") or d["actual_end"]),
            snapshot_file=d.get("snapshot_file"),
            warnings=tuple(d.get("warnings") or ()),
        )


@dataclass(frozen=True)
class ErrorInfo:
    code: str
    message: str


@dataclass(frozen=True)
class NewJob:
    """A job as intake decides it, before the store has seen it."""

    clip_id: str
    dedupe_key: str
    event_id: str | None
    camera_id: str
    window: Window
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = "mqtt"
    status: JobStatus = "pending"  # "waiting" when the window ends in the future: no worker needs to see it yet


@dataclass(frozen=True)
class Job:
    clip_id: str
    dedupe_key: str
    event_id: str | None
    camera_id: str
    window: Window
    metadata: dict[str, Any]
    source: str
    status: JobStatus
    attempts: int
    record: ClipRecord | None
    error: ErrorInfo | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    claimed_by: str | None = None  # the instance cutting it (processing) or holding its files (finished)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @classmethod
    def adhoc(
        cls,
        clip_id: str,
        camera_id: str,
        window: Window,
        *,
        event_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        source: str = "cli",
    ) -> Job:
        """A job that lives outside the store (`clipbridge clip`, tests of the clipper)."""
        now = utcnow()
        return cls(clip_id, "", event_id, camera_id, window, metadata or {}, source, "processing", 0, None, None,
                   now, now, None)  # fmt: skip


@dataclass(frozen=True)
class ReplyTarget:
    topic: str
    correlation: bytes = b""


@dataclass(frozen=True)
class OutboxRow:
    id: int
    clip_id: str | None
    topic: str
    payload: bytes
    correlation: bytes


FileKind = Literal["video", "json", "yaml", "txt", "jpg"]


@dataclass(frozen=True)
class StoredFile:
    """A file the service made, found by its name; a name from a request is only ever a key into this table."""

    name: str
    clip_id: str
    kind: FileKind
    path: Path
    size: int
    instance_id: str | None = None  # the instance whose disk holds it (None: this one, before scale-out)
    object_key: str | None = None  # its key in the bucket when storage is S3 (then any instance serves it)
