"""Cut a clip at the MP4 box level, in-process: sample tables rewritten, packets copied file to file untouched.

`cut(items, output)` writes the clip or raises `Unsupported(reason)`, and the caller uses FFmpeg instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from clipbridge.handlers.mp4cut.boxes import read_movie
from clipbridge.handlers.mp4cut.reasons import REASONS, Reason, Unsupported
from clipbridge.handlers.mp4cut.select import Source, select
from clipbridge.handlers.mp4cut.write import write_clip

__all__ = ["REASONS", "Cut", "Reason", "Unsupported", "cut"]


@dataclass(frozen=True)
class Cut:
    size: int  # bytes written
    video_seconds: float  # presented length of the video track, from the tables written


def cut(items: Sequence[tuple[Path, float | None, float | None]], output: Path, tail: Path | None = None) -> Cut:
    """(path, inpoint, outpoint) per segment, as the planner gives them for the concat demuxer; `tail`, the segment
    that follows the last one (if any), lends the audio stored at its start that belongs before it."""
    sources = [Source(path, read_movie(path), inpoint, outpoint) for path, inpoint, outpoint in items]
    following = None
    if tail is not None:
        try:
            following = Source(tail, read_movie(tail), None, None)
        except (Unsupported, OSError):
            following = None  # still being written, or gone: the clip ends with the last segment's own audio
    selection = select(sources, following)
    return Cut(write_clip(selection, output), selection.video_seconds)
