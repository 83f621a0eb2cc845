"""Per camera: what footage exists over a range (timeline), and any range cut on demand (ad-hoc export)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict

from clipbridge.errors import ClipError
from clipbridge.handlers.clipper import Clipper
from clipbridge.handlers.incident import parse_timestamp
from clipbridge.handlers.replies import GapOut
from clipbridge.handlers.timeline import by_name
from clipbridge.http.deps import Parts, PartsDep
from clipbridge.http.models import ERRORS
from clipbridge.model import Job, Window, iso

router = APIRouter()
EXPORTS = "exports"  # under clips.output_dir
EXPORTS_KEPT = timedelta(hours=6)  # a repeated request within this reuses the cut


class SpanOut(BaseModel):
    start: str
    end: str


class Timeline(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "camera_id": "camera1",
                    "start": "2025-08-29T14:00:00.000Z",
                    "end": "2025-08-29T15:00:00.000Z",
                    "segments": 700,
                    "spans": [{"start": "2025-08-29T14:00:00.000Z", "end": "2025-08-29T14:41:05.000Z"},
                              {"start": "2025-08-29T14:43:00.000Z", "end": "2025-08-29T15:00:00.000Z"}],
                    "gaps": [{"start": "2025-08-29T14:41:05.000Z", "end": "2025-08-29T14:43:00.000Z",
                              "seconds": 115.0, "reason": "missing"}],
                }
            ]
        }
    )  # fmt: skip

    camera_id: str
    start: str
    end: str
    segments: int
    spans: list[SpanOut]
    gaps: list[GapOut]


Instant = Annotated[str | None, Query(description="ISO-8601 (naive: the camera's time zone) or epoch seconds")]


def _range(parts: Parts, camera_id: str, start: str | None, end: str | None, duration: float | None,
           default: timedelta) -> tuple[datetime, datetime]:  # fmt: skip
    if not parts.index.has_camera(camera_id):
        if not parts.index.ready:
            raise ClipError("index_scanning", "the recordings index is still being built at start-up; retry shortly")
        raise ClipError("unknown_camera", f"no recordings are known for camera {camera_id[:80]!r}")
    zone = parts.index.timezone_of(camera_id)
    if duration is not None and not (0 < duration < 1e7):
        raise ClipError("invalid_request", f"duration must be a number of seconds > 0, got {duration!r}")
    length = timedelta(seconds=duration) if duration is not None else default
    if start is None and end is None:
        until = datetime.now(UTC)
        return until - length, until
    if start is None:
        until = parse_timestamp(end, zone)  # type: ignore[arg-type]  # one of them is given
        begin = until - length
    else:
        begin = parse_timestamp(start, zone)
        until = parse_timestamp(end, zone) if end is not None else begin + length
    if until <= begin:
        raise ClipError("invalid_request", f"end {iso(until)} is not after start {iso(begin)}")
    return begin, until


@router.get("/cameras/{camera_id}/timeline", response_model=Timeline, responses=ERRORS)
async def timeline(
    camera_id: str, parts: PartsDep, start: Instant = None, end: Instant = None, duration: float | None = None
) -> Timeline:
    """Footage of a camera over [start, end) (default: the last 24 h), merged into spans, and the gaps between them.
    Found by the segments' names: no file is opened."""
    begin, until = _range(parts, camera_id, start, end, duration, timedelta(days=1))
    if until - begin > timedelta(days=31):
        raise ClipError("window_too_long", "a timeline covers at most 31 days; ask for a shorter range")
    segments = parts.index.candidates(camera_id, begin, until)
    starts = [s.start for s in segments]
    spans, gaps = by_name(starts, start=begin, end=until, tolerance=parts.config.recordings.gap_tolerance_seconds)
    return Timeline(
        camera_id=camera_id,
        start=iso(begin),
        end=iso(until),
        segments=len(segments),
        spans=[SpanOut(start=iso(s.start), end=iso(s.end)) for s in spans],
        gaps=[GapOut(start=iso(g.start), end=iso(g.end), seconds=round(g.seconds, 3), reason=g.reason) for g in gaps],
    )


@router.get(
    "/cameras/{camera_id}/clip.mp4",
    response_class=Response,
    responses={
        **ERRORS,
        200: {"description": "the range cut as one MP4 (Range requests work)", "content": {"video/mp4": {}}},
        206: {"description": "the requested byte range"},
    },
)
async def export(
    camera_id: str, parts: PartsDep, start: Instant = None, end: Instant = None, duration: float | None = None
) -> Response:
    """Any range of a camera's footage as one clip, cut by the same engine and limits as incidents (keyframe start,
    gaps reported in `X-Clipbridge-Gaps`); an identical request within 6 h reuses the cut. Example:
    `/cameras/camera1/clip.mp4?start=2025-08-29T14:30:00&duration=20`."""
    limit = parts.config.clips.max_duration_seconds
    begin, until = _range(parts, camera_id, start, end, duration, timedelta(seconds=20))
    if (until - begin).total_seconds() > limit:
        raise ClipError("window_too_long", f"the range is {(until - begin).total_seconds():g} s; at most {limit:g} s "
                        "(clips.max_duration_seconds)")  # fmt: skip
    outcome = await asyncio.to_thread(_cut, parts, camera_id, begin, until)
    return FileResponse(outcome[0], media_type="video/mp4", filename=outcome[0].name, content_disposition_type="inline",
                        headers={"X-Clipbridge-Gaps": str(outcome[1])})  # fmt: skip


def _cut(parts: Parts, camera_id: str, begin: datetime, until: datetime) -> tuple[Any, int]:
    folder = parts.config.clips.output_dir / EXPORTS
    key = hashlib.sha256(f"{camera_id}\n{iso(begin)}\n{iso(until)}".encode()).hexdigest()[:16]
    done = folder / f"{camera_id}_{begin:%Y%m%d_%H%M%S}_{key}.mp4"
    gaps_note = folder / f".{done.name}.gaps"
    if done.is_file() and gaps_note.is_file():
        return done, int(gaps_note.read_text() or 0)
    _forget_old(folder)
    clips = parts.config.clips.model_copy(update={"output_dir": folder, "annotations_dir": folder / ".notes",
                                                  "snapshot_width": 0})  # fmt: skip
    clipper = Clipper(index=parts.index, clips=clips, recordings=parts.config.recordings, ffmpeg=parts.ffmpeg)
    outcome = clipper.make_clip(Job.adhoc(key, camera_id, Window(begin, begin, until), source="export"))
    for path in outcome.annotation_paths.values():
        path.unlink(missing_ok=True)
    gaps_note.write_text(str(len(outcome.record.gaps)))
    return outcome.video_path, len(outcome.record.gaps)


def _forget_old(folder: Any) -> None:
    if not folder.is_dir():
        return
    cutoff = time.time() - EXPORTS_KEPT.total_seconds()
    for entry in folder.iterdir():
        try:
            if entry.is_file() and entry.stat().st_mtime < cutoff:
                entry.unlink()
        except OSError:
            continue
