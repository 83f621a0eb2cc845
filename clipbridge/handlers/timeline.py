"""Coverage of a camera over a time range: merged spans of footage and the gaps between them (pure).

Segments are known by their start (from their names); a segment's end is its probed end when known, else the next
segment's start when that follows within 1.5 times the camera's usual spacing, else its start plus that spacing. Spans
closer than the gap tolerance are one span (recorders' naming jitter), as the clip planner treats them.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from clipbridge.model import Gap


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime


def usual_spacing(starts: Sequence[datetime], default: float = 5.0) -> float:
    """The median distance between consecutive starts, in seconds (the recorder's segment length)."""
    steps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts) if b > a]
    return statistics.median_low(steps) if steps else default


def coverage(
    starts: Sequence[datetime],
    ends: Sequence[datetime | None],
    *,
    start: datetime,
    end: datetime,
    tolerance: float,
    spacing: float,
) -> tuple[list[Span], list[Gap]]:
    """Spans of footage within [start, end) and the gaps (reason `missing`, as the planner says) that complete them to the range.
    `starts` ascending; `ends[i]` the probed end of segment i or None."""
    step = timedelta(seconds=spacing)
    slack = timedelta(seconds=tolerance)
    spans: list[Span] = []
    for i, seg_start in enumerate(starts):
        seg_end = ends[i]
        if seg_end is None:
            following = starts[i + 1] if i + 1 < len(starts) else None
            seg_end = following if following is not None and following - seg_start <= 1.5 * step else seg_start + step
        a, b = max(seg_start, start), min(seg_end, end)
        if b <= a:
            continue
        if spans and a - spans[-1].end <= slack:
            if b > spans[-1].end:
                spans[-1] = Span(spans[-1].start, b)
        else:
            spans.append(Span(a, b))
    gaps: list[Gap] = []
    cursor = start
    for span in spans:
        if span.start - cursor > slack:
            gaps.append(Gap(cursor, span.start, "missing"))
        cursor = max(cursor, span.end)
    if end - cursor > slack:
        gaps.append(Gap(cursor, end, "missing"))
    return spans, gaps


def by_name(starts: Sequence[datetime], *, start: datetime, end: datetime, tolerance: float
            ) -> tuple[list[Span], list[Gap]]:  # fmt: skip
    """`coverage` from the segments' starts alone (no file opened): each ends at the next or after the usual spacing."""
    return coverage(starts, [None] * len(starts), start=start, end=end, tolerance=tolerance,
                    spacing=usual_spacing(starts))  # fmt: skip
