"""Why a clip is not cut at the box level: a small fixed set, so the metric's `reason` label stays bounded."""

from __future__ import annotations

from typing import Literal

Reason = Literal[
    "not_mp4",  # Matroska, MPEG-TS, AVI, ...: FFmpeg demuxes them
    "unparseable",  # a box we cannot read (truncated, inconsistent tables)
    "sample_description",  # codec, parameters or timescale differ between the segments, or several per track
    "tracks",  # segments disagree on having audio
    "codec",  # a codec MP4 cannot carry as is (G.711) or one we do not cut (hev1 without parameter sets)
    "edit_list",  # empty or multi-part edits, or start offsets that differ between segments
    "keyframe",  # the planner's keyframe is not a sync sample of the file, or a segment starts on a non-keyframe
    "timing",  # audio that does not line up with the video within a frame
]
REASONS: tuple[str, ...] = Reason.__args__  # type: ignore[attr-defined]


class Unsupported(Exception):
    """This clip is not for the box-level cutter; `reason` is counted, `detail` logged at debug level."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: Reason = reason
        self.detail = detail
