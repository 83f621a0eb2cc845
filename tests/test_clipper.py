"""The clip engine against real footage and the real bundled FFmpeg."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest
import yaml

from clipbridge.errors import ClipError
from clipbridge.handlers.clipper import Clipper
from clipbridge.handlers.ffmpeg import resolve_ffmpeg
from clipbridge.handlers.index import RecordingsIndex
from clipbridge.handlers.planner import request_window
from clipbridge.model import Job
from tests.conftest import SEED_INCIDENT
from tests.media_checks import check_clip_against_sources, first_frame_decodes


@pytest.fixture(params=["box", "ffmpeg"])
def cut_path(request) -> str:
    """Each clip test runs on both paths: `box` is the default (auto), `ffmpeg` forces the FFmpeg path."""
    return str(request.param)


@pytest.fixture
def config_for(make_config, cut_path):
    def make(**overrides):
        return make_config(clips__cutter="auto" if cut_path == "box" else "ffmpeg", **overrides)

    return make


def expected_path(cut_path: str, camera: str) -> str:
    return "ffmpeg" if cut_path == "ffmpeg" or camera in ("camts", "camalaw") else "box"


def clipper_for(config) -> Clipper:
    index = RecordingsIndex(config=config.recordings)
    index.scan()
    return Clipper(
        index=index, clips=config.clips, recordings=config.recordings, ffmpeg=resolve_ffmpeg(config.clips.ffmpeg)
    )


def cut(clipper: Clipper, camera: str, incident: datetime, clip_id: str = "c1", **window):
    args = {"duration": None, "pre_seconds": None, "post_seconds": None, **window}
    w = request_window(incident, default_pre=15, default_post=5, max_duration=300, **args)
    return clipper.make_clip(Job.adhoc(clip_id, camera, w, metadata={"zone": "B"}))


def sources_of(outcome) -> list[tuple[Path, datetime]]:
    return [
        (Path(s["file_path"]), datetime.fromisoformat(s["start_time"].replace("Z", "+00:00")))
        for s in outcome.record.to_json()["source_clips"]
    ]


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_seed_example_gives_20_s_from_143000_to_143020_with_annotations(config_for, cut_path):
    outcome = cut(clipper_for(config_for()), "camera1", SEED_INCIDENT, duration=20)
    r = outcome.record.to_json()
    assert outcome.status == "done"
    assert outcome.cut_path == expected_path(cut_path, "camera1")
    assert (r["requested_start"], r["requested_end"]) == ("2025-08-29T14:30:00.000Z", "2025-08-29T14:30:20.000Z")
    assert r["actual_start"] == "2025-08-29T14:30:00.000Z"
    assert r["duration_seconds"] == pytest.approx(20.0, abs=0.1)
    assert [s["filename"] for s in r["source_clips"]] == [
        "camera1_20250829_143000.mp4",
        "camera1_20250829_143005.mp4",
        "camera1_20250829_143010.mp4",
        "camera1_20250829_143015.mp4",
    ]
    assert outcome.video_path.name == "camera1_20250829_143015_c1.mp4"
    assert outcome.video_path.stat().st_size == r["file_size"]
    cov = check_clip_against_sources(outcome.video_path, sources_of(outcome))
    assert cov.packets == 500  # 20 s at 25 fps, every frame
    assert cov.first_wall == ts(r["requested_start"]) and cov.end_wall == ts(r["requested_end"])
    # The three annotation files say the same thing.
    data = json.loads(outcome.annotation_paths["json"].read_text())
    assert yaml.safe_load(outcome.annotation_paths["yaml"].read_text()) == data
    txt = outcome.annotation_paths["txt"].read_text()
    assert "camera1_20250829_143015_c1.mp4" in txt and "Gaps:            none" in txt
    for key in (
        "clip_id",
        "camera_id",
        "requested_start",
        "requested_end",
        "actual_start",
        "actual_end",
        "duration_seconds",
        "source_clips",
        "created_at",
        "source",
        "gaps",
        "trim",
        "metadata",
        "codecs",
    ):
        assert key in data
    assert data["metadata"] == {"zone": "B"}
    assert set(data["source_clips"][0]) >= {"file_path", "filename", "start_time", "end_time", "file_size"}


COVERAGE_CASES = [
    # camera, incident, window, the most the clip may start early (one GOP; a whole segment for MPEG-TS)
    (
        "camera1",
        datetime(2025, 8, 29, 14, 30, 17, 300000, tzinfo=UTC),
        {"pre_seconds": 9.55, "post_seconds": 3.21},
        1.0,
    ),
    ("camera1", datetime(2025, 8, 29, 14, 30, 4, 990000, tzinfo=UTC), {"pre_seconds": 0.5, "post_seconds": 0.5}, 1.0),
    ("gop2", datetime(2025, 8, 29, 14, 30, 13, 100000, tzinfo=UTC), {"pre_seconds": 11.7, "post_seconds": 9.4}, 2.0),
    ("gop2", datetime(2025, 8, 29, 14, 30, 11, tzinfo=UTC), {"pre_seconds": 1.0, "post_seconds": 0.04}, 2.0),
    ("cam3", datetime(2025, 8, 29, 14, 30, 15, tzinfo=UTC), {"duration": 20}, 1.0),
    ("camts", datetime(2025, 8, 29, 14, 30, 12, 500000, tzinfo=UTC), {"pre_seconds": 6.3, "post_seconds": 4.1}, 5.0),
]


@pytest.mark.parametrize(("camera", "incident", "window", "early"), COVERAGE_CASES)
def test_clip_covers_window_starts_on_keyframe_and_copies_packets_untouched(
    config_for, cut_path, camera, incident, window, early
):
    outcome = cut(clipper_for(config_for()), camera, incident, **window)
    assert (outcome.cut_path, outcome.cut_reason) == (
        (expected_path(cut_path, camera), "mp4")
        if expected_path(cut_path, camera) == "box"
        else (("ffmpeg", "config") if cut_path == "ffmpeg" else ("ffmpeg", "not_mp4"))
    )
    r = outcome.record.to_json()
    assert outcome.status == "done", r["gaps"]
    cov = check_clip_against_sources(outcome.video_path, sources_of(outcome))
    requested_start, requested_end = ts(r["requested_start"]), ts(r["requested_end"])
    assert cov.first_wall <= requested_start
    assert cov.end_wall >= requested_end
    assert (requested_start - cov.first_wall).total_seconds() <= early + 1e-6
    assert ts(r["actual_start"]) == cov.first_wall.replace(microsecond=cov.first_wall.microsecond // 1000 * 1000)
    assert first_frame_decodes(outcome.video_path)


def test_missing_segment_is_reported_as_a_gap(config_for):
    outcome = cut(clipper_for(config_for()), "camgap", SEED_INCIDENT, duration=20)
    assert outcome.status == "partial"
    assert outcome.record.to_json()["gaps"] == [
        {"start": "2025-08-29T14:30:05.000Z", "end": "2025-08-29T14:30:10.000Z", "seconds": 5.0, "reason": "missing"}
    ]
    assert len(outcome.record.to_json()["source_clips"]) == 3
    check_clip_against_sources(outcome.video_path, sources_of(outcome))


@pytest.mark.parametrize("camera", ["camcorrupt", "camzero"])
def test_corrupt_or_empty_segment_is_a_reported_gap_not_a_crash(config_for, cut_path, camera):
    outcome = cut(clipper_for(config_for()), camera, SEED_INCIDENT, duration=20)
    assert outcome.status == "partial"
    assert outcome.cut_path == expected_path(cut_path, camera)
    check_clip_against_sources(outcome.video_path, sources_of(outcome))
    assert [(g["start"], g["end"], g["reason"]) for g in outcome.record.to_json()["gaps"]] == [
        ("2025-08-29T14:30:05.000Z", "2025-08-29T14:30:10.000Z", "unreadable")
    ]


def test_window_with_only_a_corrupt_segment_is_no_footage(config_for):
    with pytest.raises(ClipError) as err:
        cut(
            clipper_for(config_for()),
            "camcorrupt",
            datetime(2025, 8, 29, 14, 30, 7, tzinfo=UTC),
            pre_seconds=1,
            post_seconds=1,
        )
    assert err.value.code == "no_footage"


def test_unknown_camera_and_no_footage_have_codes(config_for):
    clipper = clipper_for(config_for())
    with pytest.raises(ClipError) as err:
        cut(clipper, "camera9", SEED_INCIDENT, duration=20)
    assert err.value.code == "unknown_camera" and "camera9" in err.value.message
    with pytest.raises(ClipError) as err:
        cut(clipper, "camera1", datetime(2025, 8, 29, 9, 0, tzinfo=UTC), duration=20)
    assert err.value.code == "no_footage"


def test_hevc_is_tagged_hvc1(config_for, cut_path):
    outcome = cut(clipper_for(config_for()), "camhevc", datetime(2025, 8, 29, 14, 30, 10, tzinfo=UTC), duration=10)
    assert outcome.cut_path == expected_path(cut_path, "camhevc")
    check_clip_against_sources(outcome.video_path, sources_of(outcome))
    with av.open(str(outcome.video_path)) as c:
        assert c.streams.video[0].codec_context.name == "hevc"
        assert c.streams.video[0].codec_tag == "hvc1"
    assert outcome.record.to_json()["codecs"]["video"] == "hevc"


def test_alaw_audio_becomes_aac_while_video_is_copied(config_for):
    outcome = cut(clipper_for(config_for()), "camalaw", SEED_INCIDENT, duration=20)
    with av.open(str(outcome.video_path)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
    assert outcome.record.codecs.audio == "pcm_alaw" and outcome.record.codecs.audio_transcoded is True
    check_clip_against_sources(outcome.video_path, sources_of(outcome))


def test_resolution_change_keeps_the_incident_run_and_reports_the_rest(config_for):
    outcome = cut(
        clipper_for(config_for()),
        "camres",
        datetime(2025, 8, 29, 14, 30, 25, tzinfo=UTC),
        pre_seconds=10,
        post_seconds=5,
    )
    assert outcome.status == "partial"
    assert [s["filename"] for s in outcome.record.to_json()["source_clips"]] == [
        "camres_20250829_143020.mp4",
        "camres_20250829_143025.mp4",
    ]
    assert [(g["start"], g["end"], g["reason"]) for g in outcome.record.to_json()["gaps"]] == [
        ("2025-08-29T14:30:15.000Z", "2025-08-29T14:30:20.000Z", "incompatible")
    ]
    with av.open(str(outcome.video_path)) as c:
        assert (c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height) == (352, 288)


def test_segments_mode_copies_whole_segments(config_for):
    outcome = cut(
        clipper_for(config_for(clips__trim="segments")),
        "camera1",
        datetime(2025, 8, 29, 14, 30, 12, tzinfo=UTC),
        pre_seconds=4,
        post_seconds=2,
    )
    assert outcome.record.to_json()["trim"] == "segments"
    assert [s["filename"] for s in outcome.record.to_json()["source_clips"]] == [
        "camera1_20250829_143005.mp4",
        "camera1_20250829_143010.mp4",
    ]
    assert (outcome.record.to_json()["actual_start"], outcome.record.to_json()["duration_seconds"]) == (
        "2025-08-29T14:30:05.000Z",
        pytest.approx(10.0, abs=0.1),
    )


def test_ffmpeg_past_its_timeout_is_killed_with_a_clear_code(make_config, tmp_path):
    # Fault seam: clips.ffmpeg points at a wrapper that hangs, as FFmpeg does on a stalled network mount.
    hang = tmp_path / "hanging-ffmpeg"
    hang.write_text("#!/bin/sh\necho 'stalled reading input' >&2\nexec sleep 30\n")
    hang.chmod(hang.stat().st_mode | stat.S_IEXEC)
    config = make_config(clips__cutter="ffmpeg", clips__ffmpeg=str(hang), clips__ffmpeg_timeout_seconds=0.5)
    with pytest.raises(ClipError) as err:
        cut(clipper_for(config), "camera1", SEED_INCIDENT, duration=20)
    assert err.value.code == "ffmpeg_timeout" and err.value.retryable
    assert "0.5 s" in err.value.message
    assert not list(config.clips.output_dir.rglob("*.mp4")), "no half-written clip may remain"
    assert not list((config.clips.output_dir / ".tmp").iterdir())


def test_ffmpeg_failure_keeps_the_stderr_tail(make_config, tmp_path):
    broken = tmp_path / "broken-ffmpeg"
    broken.write_text("#!/bin/sh\necho 'Invalid data found when processing input' >&2\nexit 1\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(ClipError) as err:
        cut(
            clipper_for(make_config(clips__cutter="ffmpeg", clips__ffmpeg=str(broken))),
            "camera1",
            SEED_INCIDENT,
            duration=20,
        )
    assert err.value.code == "ffmpeg_failed"
    assert "Invalid data found" in err.value.message


def test_unwritable_output_dir_is_a_storage_error(config_for, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the output folder should be")
    with pytest.raises(ClipError) as err:
        cut(clipper_for(config_for(clips__output_dir=str(blocker / "videos"))), "camera1", SEED_INCIDENT, duration=20)
    assert err.value.code == "storage_error"


def test_second_clip_of_the_same_segments_does_not_probe_again(config_for):
    clipper = clipper_for(config_for())
    cut(clipper, "camera1", SEED_INCIDENT, duration=20, clip_id="a")
    probes = clipper._index.probes.probes
    cut(clipper, "camera1", SEED_INCIDENT + timedelta(seconds=1), duration=20, clip_id="b")
    assert clipper._index.probes.probes == probes + 1  # only the one new segment the shifted window reaches
