"""The window planner: pure functions from an incident and the available footage to a clip plan. No I/O, no clock."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from clipbridge.errors import ClipError
from clipbridge.handlers.media import ProbeInfo
from clipbridge.model import Gap, GapReason, Window

_EPS = 1e-6


@dataclass(frozen=True)
class Footage:
    """A candidate segment: its file, its start from the name, and its probe (None if unreadable)."""

    path: Path
    start: datetime
    info: ProbeInfo | None

    @property
    def end(self) -> datetime:
        assert self.info is not None
        return self.start + timedelta(seconds=self.info.duration)


@dataclass(frozen=True)
class PlanItem:
    footage: Footage
    inpoint: float | None  # seconds in the file's timeline, for the concat demuxer
    outpoint: float | None


@dataclass(frozen=True)
class Plan:
    window: Window
    items: tuple[PlanItem, ...]
    gaps: tuple[Gap, ...]
    actual_start: datetime  # wall-clock time of the first copied frame
    actual_end: datetime  # wall-clock end of the last copied frame


def request_window(
    incident: datetime,
    *,
    duration: float | None,
    pre_seconds: float | None,
    post_seconds: float | None,
    default_pre: float,
    default_post: float,
    max_duration: float,
) -> Window:
    """Seed semantics: `duration` 20 with post 5 means 15 s before and 5 s after the incident."""
    for name, value in (("duration", duration), ("pre_seconds", pre_seconds), ("post_seconds", post_seconds)):
        if value is not None and not (value >= 0 and value < float("inf")):
            raise ClipError("invalid_request", f"{name} must be a finite number >= 0, got {value!r}")
    if duration is not None:
        if pre_seconds is not None and post_seconds is not None and abs(pre_seconds + post_seconds - duration) > _EPS:
            raise ClipError(
                "invalid_request",
                f"duration {duration:g} disagrees with pre_seconds {pre_seconds:g} + post_seconds {post_seconds:g}",
            )
        if pre_seconds is not None:
            pre = min(pre_seconds, duration)
            post = duration - pre
        else:
            post = min(default_post if post_seconds is None else post_seconds, duration)
            pre = duration - post
    else:
        pre = default_pre if pre_seconds is None else pre_seconds
        post = default_post if post_seconds is None else post_seconds
    if pre + post <= 0:
        raise ClipError("invalid_request", "the requested window is empty (pre + post = 0)")
    if pre + post > max_duration + _EPS:
        raise ClipError("window_too_long", f"the requested window is {pre + post:g} s; the limit is {max_duration:g} s")
    try:
        return Window(incident, incident - timedelta(seconds=pre), incident + timedelta(seconds=post))
    except OverflowError as exc:
        raise ClipError("invalid_request", "the requested window falls outside the supported date range") from exc


def plan_clip(
    window: Window,
    footage: Sequence[Footage],
    *,
    trim: Literal["keyframe", "segments"],
    gap_tolerance: float,
) -> Plan:
    """Choose segments and trim points covering `window`; report what is not covered as gaps."""
    ordered = sorted(footage, key=lambda f: f.start)
    usable = [f for f in ordered if f.info is not None and f.start < window.end and f.end > window.start]
    if not usable:
        raise ClipError(
            "no_footage",
            f"no readable recording covers {window.start.isoformat()} .. {window.end.isoformat()}",
        )
    run = _compatible_run(usable, window.incident)
    excluded = [(f, "incompatible") for f in usable if f not in run]
    excluded += [(f, "unreadable") for f in ordered if f.info is None]

    items: list[PlanItem] = []
    for i, f in enumerate(run):
        assert f.info is not None
        inpoint = outpoint = None
        if trim == "keyframe":
            if i == 0 and window.start > f.start and f.info.exact_seek:
                inpoint = _keyframe_at_or_before(f.info, (window.start - f.start).total_seconds())
            if i == len(run) - 1:
                rel_end = (window.end - f.start).total_seconds()
                if rel_end < f.info.duration - _EPS:
                    outpoint = f.info.start + rel_end
        items.append(PlanItem(f, inpoint, outpoint))

    first, last = items[0], items[-1]
    assert first.footage.info is not None and last.footage.info is not None
    actual_start = first.footage.start + timedelta(
        seconds=0.0 if first.inpoint is None else first.inpoint - first.footage.info.start
    )
    actual_end = last.footage.start + timedelta(
        seconds=last.footage.info.duration if last.outpoint is None else last.outpoint - last.footage.info.start
    )
    gaps = _gaps(window, run, excluded, ordered, gap_tolerance)
    return Plan(window, tuple(items), tuple(gaps), actual_start, actual_end)


def _keyframe_at_or_before(info: ProbeInfo, rel: float) -> float | None:
    """The file-timeline pts of the last keyframe at or before `rel` seconds into the file (None: from the start)."""
    target = info.start + rel + _EPS
    i = bisect.bisect_right(info.keyframes, target) - 1
    if i < 0:
        return None
    kf = info.keyframes[i]
    return None if kf <= info.start + _EPS else kf


def _compatible_run(usable: list[Footage], incident: datetime) -> list[Footage]:
    """Split into runs of equal stream parameters; keep the run holding (or nearest to) the incident."""
    runs: list[list[Footage]] = []
    for f in usable:
        assert f.info is not None
        if runs and runs[-1][-1].info is not None and runs[-1][-1].info.params == f.info.params:
            runs[-1].append(f)
        else:
            runs.append([f])

    def distance(run: list[Footage]) -> float:
        if run[0].start <= incident <= run[-1].end:
            return 0.0
        return min(abs((run[0].start - incident).total_seconds()), abs((run[-1].end - incident).total_seconds()))

    return min(runs, key=distance)


def _gaps(
    window: Window,
    run: list[Footage],
    excluded: list[tuple[Footage, str]],
    ordered: list[Footage],
    tolerance: float,
) -> list[Gap]:
    holes: list[tuple[datetime, datetime]] = []
    cursor = window.start
    for f in run:
        if (f.start - cursor).total_seconds() > tolerance:
            holes.append((cursor, min(f.start, window.end)))
        cursor = max(cursor, f.end)
    if (window.end - cursor).total_seconds() > tolerance:
        holes.append((cursor, window.end))

    gaps: list[Gap] = []
    for start, end in holes:
        reason: GapReason = "missing"
        for f, why in excluded:
            nominal_end = f.end if f.info is not None else _next_start(ordered, f) or end
            if f.start < end and nominal_end > start:
                reason = "incompatible" if why == "incompatible" else "unreadable"
                break
        gaps.append(Gap(start, end, reason))
    return gaps


def _next_start(ordered: list[Footage], f: Footage) -> datetime | None:
    later = [o.start for o in ordered if o.start > f.start]
    return min(later) if later else None
