from datetime import UTC, datetime

import pytest

from clipbridge.handlers.layout import Layout, is_safe_camera_id

SEED = "{camera_id}/{camera_id}_%Y%m%d_%H%M%S"
MTX = "{camera_id}/%Y-%m-%d_%H-%M-%S-%f"


@pytest.mark.parametrize(
    ("pattern", "tz", "relpath", "expected"),
    [
        (
            SEED,
            "UTC",
            "camera1/camera1_20250829_143010.mp4",
            ("camera1", datetime(2025, 8, 29, 14, 30, 10, tzinfo=UTC)),
        ),
        (
            MTX,
            "UTC",
            "cam3/2025-08-29_14-30-05-960000.mp4",
            ("cam3", datetime(2025, 8, 29, 14, 30, 5, 960000, tzinfo=UTC)),
        ),
        # Local names: Berlin is UTC+2 in August.
        (
            MTX,
            "Europe/Berlin",
            "cam3/2025-08-29_16-30-05-000000.ts",
            ("cam3", datetime(2025, 8, 29, 14, 30, 5, tzinfo=UTC)),
        ),
        # An explicit offset wins over the source's zone.
        (
            "{camera_id}/%Y-%m-%d_%H-%M-%S%z",
            "Asia/Tokyo",
            "c/2025-08-29_10-30-05-0400.mkv",
            ("c", datetime(2025, 8, 29, 14, 30, 5, tzinfo=UTC)),
        ),
        (
            "{camera_id}/%Y-%m-%d_%H-%M-%S%z",
            "Asia/Tokyo",
            "c/2025-08-29_14-30-05Z.mp4",
            ("c", datetime(2025, 8, 29, 14, 30, 5, tzinfo=UTC)),
        ),
        ("{camera_id}/%s", "Asia/Tokyo", "c/1756477805.avi", ("c", datetime(2025, 8, 29, 14, 30, 5, tzinfo=UTC))),
        # Folders per day, as many recorders do.
        (
            "{camera_id}/%Y/%m/%d/%H-%M-%S",
            "UTC",
            "x/2025/08/29/14-30-05.mp4",
            ("x", datetime(2025, 8, 29, 14, 30, 5, tzinfo=UTC)),
        ),
    ],
)
def test_names_parse_to_utc(pattern, tz, relpath, expected):
    assert Layout.create(pattern, tz).parse(relpath) == expected


@pytest.mark.parametrize(
    "relpath",
    [
        "camera1/camera1_20250829_143010.txt",  # not a video extension
        "camera1/camera2_20250829_143010.mp4",  # camera id in folder and name differ
        "camera1/camera1_20251329_143010.mp4",  # month 13
        "camera1/camera1_20250829_1430.mp4",  # too short
        "camera1/sub/camera1_20250829_143010.mp4",
        "camera1/camera1_20250829_143010",
    ],
)
def test_non_recordings_are_ignored(relpath):
    assert Layout.create(SEED).parse(relpath) is None


@pytest.mark.parametrize("pattern", [SEED, MTX, "{camera_id}/%Y-%m-%d_%H-%M-%S%z", "{camera_id}/%s"])
def test_render_and_parse_round_trip(pattern):
    layout = Layout.create(pattern, "America/New_York")
    start = datetime(2025, 11, 2, 4, 30, 5, tzinfo=UTC)  # 00:30 EDT on the US DST change day
    assert layout.parse(layout.render("cam", start)) == ("cam", start)


def test_repeated_dst_hour_local_names_are_ambiguous_and_offset_names_are_not():
    second_0130 = datetime(2025, 11, 2, 6, 30, 5, tzinfo=UTC)  # 01:30 EST, after the clocks went back
    local = Layout.create(SEED, "America/New_York")
    # A local name cannot say which 01:30 it was: the earlier one (EDT) is taken, as the README says.
    assert local.parse(local.render("cam", second_0130)) == ("cam", datetime(2025, 11, 2, 5, 30, 5, tzinfo=UTC))
    with_offset = Layout.create("{camera_id}/%Y-%m-%d_%H-%M-%S%z", "America/New_York")
    assert with_offset.parse(with_offset.render("cam", second_0130)) == ("cam", second_0130)


def test_unsupported_field_fails_fast():
    with pytest.raises(ValueError, match="%j"):
        Layout.create("{camera_id}/%j")


@pytest.mark.parametrize("camera_id", ["camera1", "Cam-3.front_door", "a" * 64])
def test_safe_camera_ids(camera_id):
    assert is_safe_camera_id(camera_id)


@pytest.mark.parametrize("camera_id", ["", ".", "..", "../etc", "a/b", "a\\b", "a" * 65, "cam 1", "café", "/abs"])
def test_unsafe_camera_ids(camera_id):
    assert not is_safe_camera_id(camera_id)
