"""A synthetic camera recorded in real time into the recordings root, named the way the configured recorder names.

FFmpeg encodes a test pattern with the wall-clock time drawn on it and cuts 5 s segments into a hidden staging
folder; each segment is renamed into place, under the name of its wall-clock start, when FFmpeg closes it.
"""

from __future__ import annotations

import csv
import logging
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clipbridge.errors import ClipError
from clipbridge.handlers.layout import Layout

logger = logging.getLogger(__name__)

LAYOUTS = {"seed": "{camera_id}/{camera_id}_%Y%m%d_%H%M%S", "mediamtx": "{camera_id}/%Y-%m-%d_%H-%M-%S-%f"}


def _overlay_works(ffmpeg: str) -> bool:
    """drawtext needs a font; machines without one get the plain test pattern (it has a frame counter)."""
    probe = subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
         "testsrc2=size=64x64:rate=1:duration=1,drawtext=text=x", "-f", "null", "-"],
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    return probe.returncode == 0


def camera_argv(ffmpeg: str, *, camera_id: str, staging: Path, segment_seconds: float, size: str) -> list[str]:
    video = f"testsrc2=size={size}:rate=25"
    if _overlay_works(ffmpeg):
        video += (
            f",drawtext=text='{camera_id} %{{localtime\\:%Y-%m-%d %T}}':fontsize=28:fontcolor=white"
            ":box=1:boxcolor=black@0.6:x=12:y=12"
        )
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
        "-re", "-f", "lavfi", "-i", video,
        "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25", "-keyint_min", "25",
        "-sc_threshold", "0", "-c:a", "aac",
        "-f", "segment", "-segment_time", f"{segment_seconds:g}", "-segment_format", "mp4", "-reset_timestamps", "1",
        "-segment_list", str(staging / "segments.csv"), "-segment_list_type", "csv", "-segment_list_flags", "+live",
        str(staging / "seg%06d.mp4"),
    ]  # fmt: skip


def simulate_camera(
    *,
    ffmpeg: str,
    root: Path,
    layout: Layout,
    camera_id: str,
    segment_seconds: float = 5.0,
    size: str = "640x360",
    on_segment: Callable[[Path, float], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> None:
    """Record until `should_stop()` or Ctrl-C. The segment in progress when stopping is discarded."""
    staging = root / f".clipbridge-sim-{camera_id}"
    staging.mkdir(parents=True, exist_ok=True)
    for old in staging.iterdir():
        old.unlink()
    argv = camera_argv(ffmpeg, camera_id=camera_id, staging=staging, segment_seconds=segment_seconds, size=size)
    # With -re, FFmpeg's timeline runs from (about) now. Whole seconds: names have 1 s resolution, and a fractional
    # origin would let a segment starting at 5.02 s (AAC priming) be named a second late, a false 1 s gap.
    t0 = datetime.now(UTC).replace(microsecond=0)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done = 0
    try:
        while not should_stop():
            if proc.poll() is not None:
                tail = proc.stderr.read().decode("utf-8", "replace")[-1000:] if proc.stderr else ""
                raise ClipError("ffmpeg_failed", f"the camera simulator's FFmpeg stopped: {tail.strip()}")
            listing = staging / "segments.csv"
            rows = list(csv.reader(listing.read_text().splitlines())) if listing.exists() else []
            for name, start, end in rows[done:]:
                target = root / layout.render(camera_id, t0 + timedelta(seconds=float(start)))
                target.parent.mkdir(parents=True, exist_ok=True)
                (staging / name).replace(target)  # atomic: the segment appears complete, as a recorder closes it
                done += 1
                if on_segment is not None:
                    on_segment(target, float(end) - float(start))
            time.sleep(0.1)  # tail the segment list
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
        for leftover in staging.iterdir():
            leftover.unlink()
        staging.rmdir()
