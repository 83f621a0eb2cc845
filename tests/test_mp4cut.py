"""The box-level cutter on real footage: packets untouched, playable output, fMP4 (complete and growing), fallbacks."""

from __future__ import annotations

import struct
from array import array
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clipbridge.handlers.ffmpeg import run_command
from clipbridge.handlers.layout import Layout
from clipbridge.handlers.mp4cut import Unsupported, cut
from clipbridge.handlers.mp4cut.boxes import _parse_moov, iter_boxes, read_movie
from clipbridge.handlers.mp4cut.select import OutTrack, Selection
from clipbridge.handlers.mp4cut.write import layout
from clipbridge.synth import source_argv
from tests.conftest import SEED_LAYOUT, T0
from tests.media_checks import audio_packets, check_clip_against_sources, in_order_within, video_packets
from tests.test_clipper import clipper_for, sources_of
from tests.test_clipper import cut as clip

AAC_FRAME = 1024 / 48000


def ffmpeg_ok(ffmpeg: str, argv: list[str]) -> None:
    run = run_command([ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *argv], timeout=120)
    assert run.returncode == 0, run.stderr_tail


@pytest.fixture(scope="module")
def extra_root(tmp_path_factory, footage) -> Path:
    """camfrag: camera1's segments remuxed to fragmented MP4 (1 s fragments, as MediaMTX writes);
    camprof: two segments that probe alike but whose H.264 profiles (so their sample descriptions) differ."""
    root = tmp_path_factory.mktemp("mp4cut")
    seed = Layout.create(SEED_LAYOUT)
    for src in footage.files["camera1"]:
        target = root / "camfrag" / src.name.replace("camera1", "camfrag")
        target.parent.mkdir(parents=True, exist_ok=True)
        ffmpeg_ok(
            footage.ffmpeg,
            ["-i", str(src), "-c", "copy", "-movflags", "+frag_keyframe+empty_moov+default_base_moof", str(target)],
        )
    for i, profile in enumerate(("main", "baseline")):
        target = root / seed.render("camprof", T0 + timedelta(seconds=5 * i), ".mp4")
        target.parent.mkdir(parents=True, exist_ok=True)
        argv = source_argv(footage.ffmpeg, seconds=5)[6:]  # the encoder options, without the common prefix
        ffmpeg_ok(footage.ffmpeg, [*argv, "-profile:v", profile, str(target)])
    return root


@pytest.fixture
def extra_config(make_config, footage, extra_root):
    sources = [*footage.sources(), {"root": str(extra_root), "layout": SEED_LAYOUT, "timezone": "UTC"}]
    return make_config(sources)


def decode_errors(ffmpeg: str, clip_path: Path) -> str:
    run = run_command([ffmpeg, "-nostdin", "-v", "error", "-i", str(clip_path), "-f", "null", "-"], timeout=120)
    return run.stderr_tail if run.returncode == 0 else f"exit {run.returncode}: {run.stderr_tail}"


def durations(clip_path: Path) -> dict[str, float]:
    with av.open(str(clip_path)) as c:
        return {s.type: float(s.duration * s.time_base) for s in c.streams if s.duration and s.time_base}


def top_level(path: Path) -> list[bytes]:
    data = path.read_bytes()
    return [kind for kind, _s, _e in iter_boxes(data)]


BOX_CASES = [
    # camera, incident, window: mid-segment cuts on both ends (B-frames), HEVC, MediaMTX naming, fragmented MP4
    ("camera1", datetime(2025, 8, 29, 14, 30, 17, 300000, tzinfo=UTC), {"pre_seconds": 9.55, "post_seconds": 3.21}),
    ("camhevc", datetime(2025, 8, 29, 14, 30, 12, 500000, tzinfo=UTC), {"pre_seconds": 6.2, "post_seconds": 1.3}),
    ("cam3", datetime(2025, 8, 29, 14, 30, 15, tzinfo=UTC), {"duration": 20}),
    ("camfrag", datetime(2025, 8, 29, 14, 30, 17, 300000, tzinfo=UTC), {"pre_seconds": 9.55, "post_seconds": 3.21}),
    # the seed window: it ends on a segment boundary, so the audio stored at the next file's start is needed
    ("camera1", datetime(2025, 8, 29, 14, 30, 15, tzinfo=UTC), {"duration": 20}),
]


@pytest.mark.parametrize(("camera", "incident", "window"), BOX_CASES)
def test_box_clip_copies_every_packet_plays_and_keeps_audio_with_video(extra_config, footage, camera, incident, window):
    outcome = clip(clipper_for(extra_config), camera, incident, **window)
    assert (outcome.cut_path, outcome.cut_reason) == ("box", "mp4")
    video = outcome.video_path
    # Every video packet equals its source packet, in order, from the keyframe at or before the window start.
    cov = check_clip_against_sources(video, sources_of(outcome))
    assert cov.first_wall <= outcome.record.window.start
    paths = [p for p, _ in sources_of(outcome)]
    siblings = sorted(paths[-1].parent.glob(f"*{paths[-1].suffix}"))
    following = siblings[siblings.index(paths[-1]) + 1 :][:1]  # may lend the audio stored at its start
    audio_sources = [a for p in [*paths, *following] for a in audio_packets(p)]
    assert in_order_within(audio_packets(video), audio_sources), "audio packets differ from the sources'"
    assert decode_errors(footage.ffmpeg, video) == ""
    lengths = durations(video)
    assert abs(lengths["video"] - lengths["audio"]) <= AAC_FRAME + 1e-3, lengths
    assert lengths["video"] == pytest.approx(outcome.record.duration_seconds, abs=1e-3)
    # faststart in one pass; the edit list starts presentation at the first (key)frame's composition time.
    assert top_level(video) == [b"ftyp", b"moov", b"mdat"]
    movie = read_movie(video)
    assert movie.video.sync[0] == 1 and movie.video.edit == movie.video.cts[0]
    if camera != "camhevc":
        assert any(movie.video.cts), "B-frames: composition offsets (ctts) are kept"
    with av.open(str(video)) as c:
        frame = next(c.decode(video=0))
        assert frame.key_frame and frame.time == pytest.approx(0.0, abs=1e-6)


def test_growing_fmp4_is_cut_from_its_complete_fragments(tmp_path, footage):
    whole = tmp_path / "live.mp4"
    argv = source_argv(footage.ffmpeg, seconds=6)[6:]
    ffmpeg_ok(footage.ffmpeg, [*argv, "-movflags", "+frag_keyframe+empty_moov+default_base_moof", str(whole)])
    data = whole.read_bytes()
    mdats = [(s, e) for kind, s, e in iter_boxes(data) if kind == b"mdat"]
    assert len(mdats) >= 5
    growing = tmp_path / "growing.mp4"
    growing.write_bytes(data[: (mdats[3][0] + mdats[3][1]) // 2])  # the recorder is halfway through part 4
    complete = tmp_path / "complete.mp4"
    complete.write_bytes(data[: mdats[2][1]])  # what a reader may use: three whole fragments
    out = tmp_path / "clip.mp4"
    cut([(growing, None, None)], out)
    assert [p.digest for p in video_packets(out)] == [p.digest for p in video_packets(complete)]
    assert audio_packets(out) == audio_packets(complete)[-len(audio_packets(out)) :]
    assert decode_errors(footage.ffmpeg, out) == ""


def test_sample_descriptions_that_differ_go_to_ffmpeg_with_the_reason(extra_config):
    outcome = clip(
        clipper_for(extra_config), "camprof", T0 + timedelta(seconds=7), pre_seconds=4, post_seconds=2, clip_id="p"
    )
    assert (outcome.cut_path, outcome.cut_reason) == ("ffmpeg", "sample_description")
    assert outcome.status == "done"
    check_clip_against_sources(outcome.video_path, sources_of(outcome))


@pytest.mark.parametrize(("camera", "reason"), [("camts", "not_mp4"), ("camalaw", "not_mp4")])
def test_other_containers_go_to_ffmpeg(extra_config, camera, reason):
    outcome = clip(clipper_for(extra_config), camera, T0 + timedelta(seconds=25), duration=10)
    assert (outcome.cut_path, outcome.cut_reason) == ("ffmpeg", reason)


def test_zero_byte_and_truncated_files_are_refused_not_misread(footage, tmp_path):
    for victim in (footage.files["camzero"][3], footage.files["camcorrupt"][3]):
        with pytest.raises(Unsupported):
            cut([(victim, None, None)], tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()


def test_offsets_past_4_gib_are_written_as_co64(footage):
    # Synthetic tables (no 4 GiB file needed): 3 samples, the last one 5 GiB into the mdat.
    template = read_movie(footage.files["camera1"][1]).video
    rel = [0, 1000, 5 << 30]
    track = OutTrack(
        template, template.stsd, *_arrays([512, 512, 512], [1024, 0, 0], [1000, 2000, 3000], rel), 1024, 1536
    )
    moov_and_ftyp, mdat_head = layout(Selection(track, None, (), (5 << 30) + 3000))
    assert struct.unpack(">I4sQ", mdat_head[:16])[:2] == (1, b"mdat")  # a 64-bit mdat size
    start = moov_and_ftyp.index(b"moov") - 4
    moov = moov_and_ftyp[start:]
    assert b"co64" in moov and b"stco" not in moov
    parsed = _parse_moov(moov, [], 1 << 40).video
    base = len(moov_and_ftyp) + len(mdat_head)
    assert list(parsed.offset) == [base + r for r in rel]
    assert list(parsed.size) == [1000, 2000, 3000] and list(parsed.sync) == [1, 0, 0]


def _arrays(dur, cts, size, rel):
    return array("q", dur), array("q", cts), array("q", size), array("q", rel), array("B", [1, 0, 0])


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start_ms=st.integers(0, 44_000), length_ms=st.integers(200, 15_000), camera=st.sampled_from(["camera1", "gop2"]))
def test_box_and_ffmpeg_paths_select_the_same_video_packets(make_config, start_ms, length_ms, camera):
    footage_ms = {"camera1": 50_000, "gop2": 40_000}[camera]  # windows inside the camera's footage
    start_ms %= footage_ms - 200
    start = T0 + timedelta(milliseconds=start_ms)
    window = {"pre_seconds": 0.0, "post_seconds": min(length_ms, footage_ms - start_ms) / 1000}
    box = clip(clipper_for(make_config(clips__cutter="auto")), camera, start, clip_id="box", **window)
    ref = clip(clipper_for(make_config(clips__cutter="ffmpeg")), camera, start, clip_id="ref", **window)
    assert box.cut_path == "box"
    assert [p.digest for p in video_packets(box.video_path)] == [p.digest for p in video_packets(ref.video_path)]
    assert (box.record.actual_start, box.record.gaps) == (ref.record.actual_start, ref.record.gaps)
