"""FFmpeg commands as plain values, and the one function that runs a subprocess."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from clipbridge.errors import ClipError
from clipbridge.handlers.planner import PlanItem

logger = logging.getLogger(__name__)

# Audio codecs an MP4 file can carry; anything else (pcm_alaw, pcm_mulaw, ...) is converted to AAC.
MP4_AUDIO = frozenset({"aac", "mp3", "mp2", "ac3", "eac3", "opus", "flac", "alac"})


def resolve_ffmpeg(setting: str) -> str:
    """`auto` is imageio-ffmpeg's bundled static binary; otherwise a path or a name on PATH."""
    if setting == "auto":
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    found = shutil.which(setting)
    if found is None:
        raise ClipError("config_error", f"clips.ffmpeg: {setting!r} is not an executable file")
    return found


def _quote(path: Path) -> str:
    # The concat demuxer's quoting: single quotes, with ' written as '\''.
    return "'" + str(path).replace("'", "'\\''") + "'"


def concat_playlist(items: Sequence[PlanItem]) -> str:
    """An ffconcat playlist; inpoint/outpoint are floats in each file's own timeline.

    With stream copy the demuxer starts at the keyframe before `inpoint`, so the planner puts inpoint exactly on a
    keyframe; `outpoint` drops packets whose dts is at or past it.
    """
    lines = ["ffconcat version 1.0"]
    for item in items:
        lines.append(f"file {_quote(item.footage.path.resolve())}")
        if item.inpoint is not None:
            lines.append(f"inpoint {item.inpoint:.6f}")
        if item.outpoint is not None:
            lines.append(f"outpoint {item.outpoint:.6f}")
    return "\n".join(lines) + "\n"


def clip_argv(ffmpeg: str, playlist: Path, output: Path, *, video_codec: str, audio_codec: str | None) -> list[str]:
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    argv += ["-f", "concat", "-safe", "0", "-i", str(playlist)]
    argv += ["-map", "0:v:0", "-map", "0:a:0?", "-c", "copy"]
    if audio_codec is not None and audio_codec not in MP4_AUDIO:
        argv += ["-c:a", "aac", "-b:a", "64k"]
    if video_codec == "hevc":
        argv += ["-tag:v", "hvc1"]  # Safari/iOS only play HEVC in MP4 tagged hvc1
    argv += ["-avoid_negative_ts", "make_zero", "-movflags", "+faststart", "-f", "mp4", str(output)]
    return argv


@dataclass(frozen=True)
class RunResult:
    returncode: int
    seconds: float
    stderr_tail: str


def run_command(
    argv: Sequence[str], *, timeout: float, running: set[subprocess.Popen[bytes]] | None = None
) -> RunResult:
    """Run argv (never through a shell); kill it past `timeout`; keep the last 2 kB of stderr.

    While it runs, the process is in `running`, so a shutdown can kill what is still in flight.
    """
    started = time.monotonic()
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        raise ClipError("ffmpeg_failed", f"cannot start {argv[0]}: {exc.strerror}") from exc
    if running is not None:
        running.add(proc)
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        _, stderr = proc.communicate()
        tail = stderr[-2048:].decode("utf-8", "replace").strip()
        raise ClipError(
            "ffmpeg_timeout",
            f"{Path(argv[0]).name} did not finish within {timeout:g} s and was killed. {tail}".strip(),
            retryable=True,
        ) from exc
    finally:
        if running is not None:
            running.discard(proc)
    tail = stderr[-2048:].decode("utf-8", "replace").strip()
    return RunResult(proc.returncode, time.monotonic() - started, tail)
