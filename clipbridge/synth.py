"""Synthetic footage: real H.264/AAC segment files made with FFmpeg's test sources, named like a recorder would."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from clipbridge.errors import ClipError
from clipbridge.handlers.ffmpeg import run_command
from clipbridge.handlers.layout import Layout


def source_argv(
    ffmpeg: str,
    *,
    seconds: float,
    size: str = "320x240",
    fps: int = 25,
    gop_seconds: float = 1.0,
    video_codec: str = "libx264",
    audio_codec: str | None = "aac",
    bitrate: str | None = None,
) -> list[str]:
    """Input and encoder options for `seconds` of test pattern with a sine tone and a fixed GOP."""
    gop = max(1, round(fps * gop_seconds))
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    argv += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}"]
    if audio_codec:
        argv += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
    argv += ["-c:v", video_codec, "-pix_fmt", "yuv420p", "-g", str(gop), "-keyint_min", str(gop)]
    if video_codec == "libx264":
        # B-frames on purpose: cut points must survive frame reordering.
        argv += ["-preset", "ultrafast", "-bf", "2", "-sc_threshold", "0"]
    elif video_codec == "libx265":
        argv += ["-preset", "ultrafast", "-x265-params", f"keyint={gop}:min-keyint={gop}:scenecut=0:log-level=error"]
    if bitrate:
        argv += ["-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate]
    if audio_codec:
        argv += ["-c:a", audio_codec]
        if audio_codec in ("pcm_alaw", "pcm_mulaw"):
            argv += ["-ar", "8000", "-ac", "1"]
    return argv


def record_segments(
    ffmpeg: str,
    *,
    root: Path,
    layout: Layout,
    camera_id: str,
    start: datetime,
    cut_points: Sequence[float],
    ext: str = ".mp4",
    **source: object,
) -> list[Path]:
    """Encode one continuous stream and cut it at `cut_points` (seconds, ascending, last = total length).

    Cuts land on keyframes, so cut points must be multiples of the GOP. Each piece is named by its start time.
    """
    total = cut_points[-1]
    with tempfile.TemporaryDirectory(prefix="clipbridge-synth-") as tmp:
        pattern = Path(tmp) / f"seg%05d{ext}"
        argv = source_argv(ffmpeg, seconds=total, **source)  # type: ignore[arg-type]
        times = ",".join(f"{t:g}" for t in cut_points[:-1])
        fmt = "mpegts" if ext == ".ts" else ("matroska" if ext == ".mkv" else "mp4")
        argv += ["-f", "segment", "-segment_format", fmt, "-reset_timestamps", "1"]
        if times:
            argv += ["-segment_times", times]
        else:
            argv += ["-segment_time", str(total + 1)]
        argv.append(str(pattern))
        run = run_command(argv, timeout=600)
        if run.returncode != 0:
            raise ClipError("ffmpeg_failed", f"making synthetic footage failed: {run.stderr_tail}")
        pieces = sorted(Path(tmp).glob(f"seg*{ext}"))
        bounds = [0.0, *cut_points]
        if len(pieces) != len(cut_points):
            raise ClipError("ffmpeg_failed", f"expected {len(cut_points)} segments, FFmpeg made {len(pieces)}")
        written = []
        for piece, offset in zip(pieces, bounds, strict=False):
            target = root / layout.render(camera_id, start + timedelta(seconds=offset), ext)
            target.parent.mkdir(parents=True, exist_ok=True)
            piece.replace(target)
            written.append(target)
        return written
