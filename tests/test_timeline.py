"""Coverage timeline and ad-hoc export (#13): a pure merge (a table), then the REST routes on a real service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from clipbridge.handlers.timeline import Span, coverage, usual_spacing
from clipbridge.model import Gap

T = datetime(2025, 8, 29, 14, 0, 0, tzinfo=UTC)


def at(s: float) -> datetime:
    return T + timedelta(seconds=s)


@pytest.mark.parametrize(
    ("starts", "ends", "window", "spans", "gaps"),
    [
        # Contiguous 5 s segments: one span; the last one's end is its start + the usual spacing.
        ([0, 5, 10], [None] * 3, (0, 15), [(0, 15)], []),
        # A missing segment: a gap where it was.
        ([0, 5, 15], [None] * 3, (0, 20), [(0, 10), (15, 20)], [(10, 15)]),
        # Naming jitter below the tolerance (0.5 s) is not a gap.
        ([0, 5.3, 10.6], [None] * 3, (0, 15.6), [(0, 15.6)], []),
        # Nothing before the first segment or after the last: gaps at both edges.
        ([10, 15], [None] * 2, (0, 30), [(10, 20)], [(0, 10), (20, 30)]),
        # A probed end shorter than the spacing (the recorder stopped mid-segment).
        ([0, 5], [None, at(7)], (0, 10), [(0, 7)], [(7, 10)]),
        # The range cuts spans at its edges.
        ([0, 5, 10], [None] * 3, (2, 12), [(2, 12)], []),
        # No footage at all: one gap, the whole range.
        ([], [], (0, 10), [], [(0, 10)]),
    ],
)
def test_coverage(starts, ends, window, spans, gaps):
    begin, end = window
    found_spans, found_gaps = coverage([at(s) for s in starts], ends, start=at(begin), end=at(end), tolerance=0.5,
                                       spacing=usual_spacing([at(s) for s in starts]))  # fmt: skip
    assert found_spans == [Span(at(a), at(b)) for a, b in spans]
    assert found_gaps == [Gap(at(a), at(b), "missing") for a, b in gaps]


def test_a_day_of_segments_merges_into_one_span_with_the_deleted_hour_as_a_gap():
    starts = [at(5 * i) for i in range(17280) if not 720 <= i < 1440]  # hour 1 deleted
    spans, gaps = coverage(starts, [None] * len(starts), start=at(0), end=at(86400), tolerance=0.5,
                           spacing=usual_spacing(starts))  # fmt: skip
    assert spans == [Span(at(0), at(3600)), Span(at(7200), at(86400))]
    assert gaps == [Gap(at(3600), at(7200), "missing")]


# -- REST ----------------------------------------------------------------------------------------------------------


def test_timeline_shows_the_deleted_segment_as_a_gap(own_service):
    service = own_service()
    answer = httpx.get(f"{service.base_url}/cameras/camgap/timeline",
                       params={"start": "2025-08-29T14:29:50", "end": "2025-08-29T14:30:30"}, timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["spans"] == [
        {"start": "2025-08-29T14:29:50.000Z", "end": "2025-08-29T14:30:05.000Z"},
        {"start": "2025-08-29T14:30:10.000Z", "end": "2025-08-29T14:30:30.000Z"},
    ]
    assert body["gaps"] == [
        {"start": "2025-08-29T14:30:05.000Z", "end": "2025-08-29T14:30:10.000Z", "seconds": 5.0, "reason": "missing"}
    ]
    for params, code in (
        ({"start": "2025-08-29T14:31:00", "end": "2025-08-29T14:30:00"}, "invalid_request"),
        ({"start": "yesterday"}, "invalid_request"),
        ({"start": "2025-08-01T00:00:00", "end": "2025-09-15T00:00:00"}, "window_too_long"),
    ):
        bad = httpx.get(f"{service.base_url}/cameras/camgap/timeline", params=params, timeout=30)
        assert (bad.status_code, bad.json()["error"]["code"]) == (422, code), params
    unknown = httpx.get(f"{service.base_url}/cameras/nosuch/timeline", timeout=30)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (422, "unknown_camera")


def test_ad_hoc_export_cuts_the_range_serves_ranges_and_reuses_the_cut(own_service, tmp_path):
    service = own_service()
    url = f"{service.base_url}/cameras/camera1/clip.mp4"
    params = {"start": "2025-08-29T14:30:00", "duration": "10"}
    first = httpx.get(url, params=params, timeout=60)
    assert first.status_code == 200 and first.headers["content-type"] == "video/mp4"
    assert int(first.headers["content-length"]) == len(first.content) and first.content[4:8] == b"ftyp"
    assert first.headers["x-clipbridge-gaps"] == "0"
    part = httpx.get(url, params=params, headers={"Range": "bytes=0-99"}, timeout=60)
    assert part.status_code == 206 and part.content == first.content[:100]
    again = httpx.get(url, params={"start": "2025-08-29T14:30:00", "end": "2025-08-29T14:30:10"}, timeout=60)
    assert again.content == first.content
    assert len(list((tmp_path / "videos" / "exports").glob("*.mp4"))) == 1  # the same range: one cut
    gappy = httpx.get(f"{service.base_url}/cameras/camgap/clip.mp4", params=params, timeout=60)
    assert gappy.status_code == 200 and gappy.headers["x-clipbridge-gaps"] == "1"
    for params_, code in (
        ({"start": "2025-08-29T14:30:00", "duration": "400"}, "window_too_long"),
        ({"start": "2025-08-29T14:30:10", "end": "2025-08-29T14:30:00"}, "invalid_request"),
        ({"start": "2025-08-29T14:30:00", "duration": "-5"}, "invalid_request"),
        ({"start": "2030-01-01T00:00:00", "duration": "10"}, "no_footage"),
    ):
        bad = httpx.get(url, params=params_, timeout=60)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == code, (params_, bad.text)


def test_timeline_and_export_need_the_token(own_service):
    service = own_service(http__api_token="s3cret")
    assert httpx.get(f"{service.base_url}/cameras/camera1/timeline", timeout=30).status_code == 401
    assert httpx.get(f"{service.base_url}/cameras/camera1/clip.mp4", timeout=30).status_code == 401
    ok = httpx.get(f"{service.base_url}/cameras/camera1/timeline", headers={"Authorization": "Bearer s3cret"},
                   params={"start": "2025-08-29T14:30:00", "duration": "60"}, timeout=30)  # fmt: skip
    assert ok.status_code == 200 and ok.json()["segments"] >= 1
