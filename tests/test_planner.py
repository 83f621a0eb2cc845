"""The window planner as a table of cases: pure inputs, no files, no clock."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clipbridge.errors import ClipError
from clipbridge.handlers.media import ProbeInfo, StreamParams
from clipbridge.handlers.planner import Footage, Window, plan_clip, request_window

T = datetime(2025, 8, 29, 14, 30, 0, tzinfo=UTC)
H264 = StreamParams("h264", 320, 240, "aac", 48000, 1)
OTHER = StreamParams("h264", 352, 288, "aac", 48000, 1)


def seg(
    offset: float,
    duration: float = 5.0,
    gop: float = 1.0,
    params: StreamParams = H264,
    start_pts: float = 0.0,
    exact_seek: bool = True,
):
    info = ProbeInfo(
        start=start_pts,
        duration=duration,
        keyframes=tuple(start_pts + k * gop for k in range(int(duration / gop + 0.999))),
        params=params,
        exact_seek=exact_seek,
    )
    return Footage(Path(f"/rec/s{offset:+.2f}.mp4"), T + timedelta(seconds=offset), info)


def bad(offset: float) -> Footage:
    return Footage(Path(f"/rec/bad{offset}.mp4"), T + timedelta(seconds=offset), None)


def window(start: float, end: float, incident: float | None = None) -> Window:
    return Window(
        T + timedelta(seconds=incident if incident is not None else end - 5),
        T + timedelta(seconds=start),
        T + timedelta(seconds=end),
    )


def rel(t: datetime) -> float:
    return round((t - T).total_seconds(), 6)


# (name, window, segments, trim, expected items as (segment offset, inpoint, outpoint), expected gaps, actual span)
CASES = [
    (
        "seed example: four whole segments",
        window(0, 20),
        [seg(o) for o in (-10, -5, 0, 5, 10, 15, 20)],
        "keyframe",
        [(0, None, None), (5, None, None), (10, None, None), (15, None, None)],
        [],
        (0, 20),
    ),
    (
        "unaligned start snaps back to the keyframe at or before it",
        window(7.3, 17.5),
        [seg(o) for o in (0, 5, 10, 15, 20)],
        "keyframe",
        [(5, 2.0, None), (10, None, None), (15, None, 2.5)],
        [],
        (7.0, 17.5),
    ),
    (
        "start exactly on a keyframe is not moved",
        window(8.0, 12.0),
        [seg(o) for o in (5, 10)],
        "keyframe",
        [(5, 3.0, None), (10, None, 2.0)],
        [],
        (8.0, 12.0),
    ),
    (
        "2 s GOP with 6 s/4 s segments",
        window(7.0, 13.0),
        [seg(0, 6, 2), seg(6, 4, 2), seg(10, 6, 2)],
        "keyframe",
        [(6, None, None), (10, None, 3.0)],
        [],
        (6.0, 13.0),
    ),
    (
        "segments mode keeps whole files",
        window(7.3, 17.5),
        [seg(o) for o in (0, 5, 10, 15, 20)],
        "segments",
        [(5, None, None), (10, None, None), (15, None, None)],
        [],
        (5.0, 20.0),
    ),
    (
        "a missing segment inside the window is a gap",
        window(0, 20),
        [seg(0), seg(5), seg(15)],
        "keyframe",
        [(0, None, None), (5, None, None), (15, None, None)],
        [(10.0, 15.0, "missing")],
        (0, 20),
    ),
    (
        "an unreadable segment is a gap with its reason",
        window(0, 15),
        [seg(0), bad(5), seg(10)],
        "keyframe",
        [(0, None, None), (10, None, None)],
        [(5.0, 10.0, "unreadable")],
        (0, 15),
    ),
    (
        "footage ends early: the tail is a gap",
        window(0, 20),
        [seg(0), seg(5)],
        "keyframe",
        [(0, None, None), (5, None, None)],
        [(10.0, 20.0, "missing")],
        (0, 10),
    ),
    (
        "footage starts late: the head is a gap",
        window(0, 10),
        [seg(3), seg(8)],
        "keyframe",
        [(3, None, None), (8, None, 2.0)],
        [(0.0, 3.0, "missing")],
        (3, 10),
    ),
    (
        "holes below the tolerance are not gaps (MediaMTX name jitter)",
        window(1, 14),
        [seg(0, 4.8), seg(5.1, 4.9), seg(10.2)],
        "keyframe",
        [(0, 1.0, None), (5.1, None, None), (10.2, None, 3.8)],
        [],
        (1, 14),
    ),
    (
        "resolution change: the run holding the incident is kept",
        window(0, 20, incident=15),
        [seg(0), seg(5), seg(10, params=OTHER), seg(15, params=OTHER)],
        "keyframe",
        [(10, None, None), (15, None, None)],
        [(0.0, 10.0, "incompatible")],
        (10, 20),
    ),
    (
        "file timeline not starting at zero (MPEG-TS)",
        window(2.5, 4.0),
        [seg(0, start_pts=1.4)],
        "keyframe",
        [(0, 3.4, 5.4)],
        [],
        (2.0, 4.0),
    ),
    (
        "no exact seek in the container (MPEG-TS): the head segment is kept whole",
        window(7.3, 12.0),
        [seg(5, start_pts=1.4, exact_seek=False), seg(10, start_pts=1.4, exact_seek=False)],
        "keyframe",
        [(5, None, None), (10, None, 3.4)],
        [],
        (5.0, 12.0),
    ),
]


@pytest.mark.parametrize(("name", "win", "segs", "trim", "items", "gaps", "span"), CASES, ids=[c[0] for c in CASES])
def test_plan(name, win, segs, trim, items, gaps, span):
    plan = plan_clip(win, segs, trim=trim, gap_tolerance=0.5)
    got = [(rel(i.footage.start), i.inpoint, None if i.outpoint is None else round(i.outpoint, 6)) for i in plan.items]
    assert got == [(float(o), i, out) for o, i, out in items]
    assert [(rel(g.start), rel(g.end), g.reason) for g in plan.gaps] == gaps
    assert (rel(plan.actual_start), rel(plan.actual_end)) == span
    # Wherever footage exists, the plan covers the requested window.
    if not gaps:
        assert plan.actual_start <= win.start and plan.actual_end >= win.end


def test_no_footage_in_window():
    with pytest.raises(ClipError) as err:
        plan_clip(window(100, 120), [seg(0), seg(5)], trim="keyframe", gap_tolerance=0.5)
    assert err.value.code == "no_footage"


def test_only_unreadable_footage_is_no_footage():
    with pytest.raises(ClipError) as err:
        plan_clip(window(0, 5), [bad(0)], trim="keyframe", gap_tolerance=0.5)
    assert err.value.code == "no_footage"


INCIDENT = datetime(2025, 8, 29, 14, 30, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "pre", "post"),
    [
        ({"duration": 20}, 15, 5),  # the seed's example
        ({}, 15, 5),  # config defaults
        ({"pre_seconds": 10, "post_seconds": 2}, 10, 2),
        ({"duration": 30, "post_seconds": 10}, 20, 10),
        ({"duration": 30, "pre_seconds": 25}, 25, 5),
        ({"duration": 3}, 0, 3),  # shorter than the default post part: all after
        ({"duration": 12, "pre_seconds": 7, "post_seconds": 5}, 7, 5),
    ],
)
def test_request_window(kwargs, pre, post):
    args = {"duration": None, "pre_seconds": None, "post_seconds": None, **kwargs}
    w = request_window(INCIDENT, default_pre=15, default_post=5, max_duration=300, **args)
    assert w.start == INCIDENT - timedelta(seconds=pre)
    assert w.end == INCIDENT + timedelta(seconds=post)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"duration": 301}, "window_too_long"),
        ({"pre_seconds": 200, "post_seconds": 101}, "window_too_long"),
        ({"duration": 0}, "invalid_request"),
        ({"duration": float("nan")}, "invalid_request"),
        ({"pre_seconds": -1}, "invalid_request"),
        ({"duration": 10, "pre_seconds": 3, "post_seconds": 3}, "invalid_request"),
    ],
)
def test_request_window_rejects(kwargs, code):
    args = {"duration": None, "pre_seconds": None, "post_seconds": None, **kwargs}
    with pytest.raises(ClipError) as err:
        request_window(INCIDENT, default_pre=15, default_post=5, max_duration=300, **args)
    assert err.value.code == code


def test_window_at_the_end_of_time_is_a_clear_error():
    with pytest.raises(ClipError) as err:
        request_window(
            datetime(9999, 12, 31, 23, 59, 58, tzinfo=UTC),
            duration=None,
            pre_seconds=None,
            post_seconds=None,
            default_pre=15,
            default_post=5,
            max_duration=300,
        )
    assert err.value.code == "invalid_request"
