"""What probing a segment tells: plain values the pure planner works with (the PyAV probing is in probe.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StreamParams:
    """What must match for two segments to be joined by stream copy."""

    video_codec: str
    width: int
    height: int
    audio_codec: str | None
    sample_rate: int | None
    channels: int | None


@dataclass(frozen=True)
class ProbeInfo:
    """Timings are seconds in the file's own timeline (what FFmpeg's concat inpoint/outpoint use)."""

    start: float  # pts of the earliest video frame
    duration: float  # from the first video frame to the end of the last one
    keyframes: tuple[float, ...]  # pts of keyframes, ascending
    params: StreamParams
    # MP4 and Matroska carry an index, so FFmpeg's concat inpoint lands exactly on the keyframe asked for. MPEG-TS and
    # AVI are seeked by PCR or bytes and land a GOP or more late: a clip must then keep that segment whole.
    exact_seek: bool = True

    @property
    def end(self) -> float:
        return self.start + self.duration
