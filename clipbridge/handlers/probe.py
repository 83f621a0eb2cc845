"""In-process probing of segment files with PyAV: real duration, keyframe times and codec parameters."""

from __future__ import annotations

import itertools
import logging
import threading
from fractions import Fraction
from pathlib import Path

import av

from clipbridge.errors import ClipError
from clipbridge.handlers.media import ProbeInfo, StreamParams

logger = logging.getLogger(__name__)


def probe_file(path: Path, *, max_duration: float = 3600.0) -> ProbeInfo:
    """Scan the video packets of one file (no decoding); raises ClipError(segment_unreadable)."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise ClipError("segment_unreadable", f"{path.name}: no video stream")
            exact_seek = any(n in container.format.name.split(",") for n in ("mp4", "mov", "matroska"))
            vs = container.streams.video[0]
            audio = container.streams.audio[0] if container.streams.audio else None
            tb = vs.time_base or Fraction(1, 90000)
            pts_list: list[int] = []
            end = None
            keyframes: list[int] = []
            for packet in container.demux(vs):
                if packet.pts is None or packet.size == 0:
                    continue
                pts_list.append(packet.pts)
                if packet.is_keyframe:
                    keyframes.append(packet.pts)
                if packet.duration:
                    tail = packet.pts + packet.duration
                    end = tail if end is None else max(end, tail)
            params = StreamParams(
                video_codec=vs.codec_context.name,
                width=vs.codec_context.width,
                height=vs.codec_context.height,
                audio_codec=audio.codec_context.name if audio else None,
                sample_rate=audio.codec_context.sample_rate if audio else None,
                channels=audio.codec_context.channels if audio else None,
            )
    except ClipError:
        raise
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise ClipError("segment_unreadable", f"{path.name}: cannot be read ({exc})") from exc
    if not pts_list or not keyframes:
        raise ClipError("segment_unreadable", f"{path.name}: no video frames or no keyframe")
    pts_list.sort()
    first = pts_list[0]
    gaps = [b - a for a, b in itertools.pairwise(pts_list) if b > a]
    frame = sorted(gaps)[len(gaps) // 2] if gaps else 0
    last_end = max(end or 0, pts_list[-1] + frame)
    duration = float((last_end - first) * tb)
    if not 0 < duration <= max_duration:
        raise ClipError("segment_unreadable", f"{path.name}: implausible duration {duration:.3f} s")
    return ProbeInfo(
        start=float(first * tb),
        duration=duration,
        keyframes=tuple(float(k * tb) for k in sorted(keyframes)),
        params=params,
        exact_seek=exact_seek,
    )


def clip_duration(path: Path) -> float:
    """The duration of a clip FFmpeg just wrote, from its header (no packet scan: a clip is probed right after
    every cut); raises ClipError(segment_unreadable) if the file has no readable video."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ClipError("segment_unreadable", f"{path.name}: no video stream")
            vs = container.streams.video[0]
            if vs.duration and vs.time_base:
                return float(vs.duration * vs.time_base)
            if container.duration:
                return container.duration / 1_000_000
    except ClipError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise ClipError("segment_unreadable", f"{path.name}: cannot be read ({exc})") from exc
    raise ClipError("segment_unreadable", f"{path.name}: no duration in the header")


class ProbeCache:
    """Probe results keyed by (path, size, mtime): a file that grows or is replaced is probed again."""

    def __init__(self, *, max_duration: float = 3600.0, max_entries: int = 20000) -> None:
        self._max_duration = max_duration
        self._max_entries = max_entries
        self._entries: dict[tuple[str, int, int], ProbeInfo] = {}
        self._lock = threading.Lock()
        self.probes = 0  # how many real probes ran (tests and metrics read it)

    def get(self, path: Path, size: int, mtime_ns: int) -> ProbeInfo:
        key = (str(path), size, mtime_ns)
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None:
            return hit
        info = probe_file(path, max_duration=self._max_duration)
        with self._lock:
            self.probes += 1
            if len(self._entries) >= self._max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = info
        return info
