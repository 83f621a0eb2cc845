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


def cut(items: Sequence[tuple[Path, float | None, float | None]], output: Path) -> Cut:
    """(path, inpoint, outpoint) per segment, as the planner gives them for the concat demuxer."""
    sources = [Source(path, read_movie(path), inpoint, outpoint) for path, inpoint, outpoint in items]
    selection = select(sources)
    return Cut(write_clip(selection, output), selection.video_seconds)
