"""A JPEG of the frame shown at the incident time, scaled for lists and previews.

Which source frame is pure (`incident_frame`); the picture is made in-process with PyAV (`take_snapshot`): seek to
the keyframe at or before the time, decode forward to the frame shown then, scale, encode one JPEG. Measured on
1080p H.264 (1 s GOP) it took about half of one FFmpeg run doing the same (`snapshot_argv`, kept for the bench:
most of an FFmpeg run is starting the process and probing the file). It reads the source segment, not the clip, so
the clipper runs it beside the cut.
"""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction
from pathlib import Path

import av

from clipbridge.errors import ClipError
from clipbridge.handlers.planner import Plan


def incident_frame(plan: Plan, incident: datetime) -> tuple[Path, float] | None:
    """(source file, time in its own timeline) holding the incident; the nearest copied moment when the incident fell
    in a gap or outside the footage; None for an empty plan."""
    best: tuple[float, Path, float] | None = None
    for item in plan.items:
        info = item.footage.info
        if info is None:
            continue
        first = item.inpoint if item.inpoint is not None else info.start
        last = item.outpoint if item.outpoint is not None else info.end
        offset = info.start + (incident - item.footage.start).total_seconds()
        clamped = min(max(offset, first), max(first, last - 0.001))
        distance = abs(offset - clamped)
        if best is None or distance < best[0]:
            best = (distance, item.footage.path, clamped)
    return None if best is None else (best[1], round(best[2], 3))


def snapshot_argv(ffmpeg: str, source: Path, offset: float, out: Path, width: int) -> list[str]:
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-ss", f"{offset:.3f}", "-i", str(source),
        "-frames:v", "1", "-an", "-vf", f"scale={width}:-2", "-q:v", "4", "-f", "mjpeg", str(out),
    ]  # fmt: skip


def take_snapshot(source: Path, at: float, out: Path, width: int) -> None:
    """Write the frame shown at `at` (seconds in the file's timeline) as a JPEG `width` wide; raises ClipError."""
    try:
        with av.open(str(source)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "SLICE"  # frame threads would decode frames ahead before giving the first
            base = stream.time_base or Fraction(1, 90000)
            container.seek(int(at / base), stream=stream, backward=True)
            shown = None
            for frame in container.decode(stream):
                if shown is not None and frame.time is not None and frame.time > at + 1e-6:
                    break
                shown = frame
            if shown is None:
                raise ClipError("segment_unreadable", f"{source.name} has no frame at {at:.3f} s")
            height = max(2, round(width * shown.height / shown.width / 2) * 2)
            picture = shown.reformat(width=width, height=height, format="yuvj420p")
            encoder = av.CodecContext.create("mjpeg", "w")
            encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuvj420p"
            encoder.time_base = base
            encoder.options = {"q:v": "4"}
            packets = [*encoder.encode(picture), *encoder.encode(None)]
    except av.FFmpegError as exc:
        raise ClipError("segment_unreadable", f"{source.name}: {exc}") from exc
    out.write_bytes(b"".join(bytes(p) for p in packets))
