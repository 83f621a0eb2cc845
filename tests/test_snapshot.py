"""Snapshots (#13): a JPEG of the frame at the incident time, beside the clip; its failure never fails the clip."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest

from clipbridge.errors import ClipError
from clipbridge.handlers import clipper as clipper_module
from clipbridge.handlers.media import ProbeInfo, StreamParams
from clipbridge.handlers.planner import Footage, Plan, PlanItem
from clipbridge.handlers.snapshot import incident_frame
from clipbridge.model import Window
from tests.conftest import SEED_INCIDENT
from tests.test_clipper import clipper_for, cut

T = datetime(2025, 8, 29, 14, 30, 0, tzinfo=UTC)


def item(start_s: float, duration: float, inpoint: float | None = None, outpoint: float | None = None) -> PlanItem:
    info = ProbeInfo(0.0, duration, (0.0,), StreamParams("h264", 64, 64, None, None, None))
    return PlanItem(Footage(Path(f"/r/{start_s:g}.mp4"), T + timedelta(seconds=start_s), info), inpoint, outpoint)


@pytest.mark.parametrize(
    ("items", "incident_s", "expected"),
    [
        ([item(0, 5), item(5, 5)], 7.5, ("/r/5.mp4", 2.5)),  # inside the second file
        ([item(0, 5), item(5, 5)], 5.0, ("/r/5.mp4", 0.0)),  # on the boundary: the file that starts there
        ([item(0, 5, inpoint=2.0)], 1.0, ("/r/0.mp4", 2.0)),  # before the first copied frame: the first one
        ([item(0, 5), item(10, 5)], 6.0, ("/r/0.mp4", 4.999)),  # in a gap: the nearest moment, before it
        ([item(0, 5), item(10, 5)], 9.5, ("/r/10.mp4", 0.0)),  # ... or after it
        ([item(0, 5, outpoint=3.0)], 4.0, ("/r/0.mp4", 2.999)),  # after the last copied frame
        ([], 1.0, None),
    ],
)
def test_incident_frame(items, incident_s, expected):
    plan = Plan(Window(T, T, T), tuple(items), (), T, T)
    found = incident_frame(plan, T + timedelta(seconds=incident_s))
    assert (None if found is None else (str(found[0]), found[1])) == expected


def rgb(frame: av.VideoFrame, width: int, height: int) -> bytes:
    """The frame scaled to width x height as packed RGB bytes (rows without their padding)."""
    plane = frame.reformat(width=width, height=height, format="rgb24").planes[0]
    data = bytes(plane)
    return b"".join(data[y * plane.line_size : y * plane.line_size + width * 3] for y in range(height))


def frame_at(path: Path, seconds: float, width: int, height: int) -> bytes:
    """The source frame shown at `seconds` (the last one presented at or before it), scaled like the snapshot."""
    shown = None
    with av.open(str(path)) as container:
        for frame in sorted(container.decode(video=0), key=lambda f: f.pts):
            if frame.time is not None and frame.time > seconds + 1e-6:
                break
            shown = frame
        assert shown is not None
        return rgb(shown, width, height)


def picture(path: Path) -> tuple[bytes, int, int]:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return rgb(frame, frame.width, frame.height), frame.width, frame.height


def difference(a: bytes, b: bytes) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def test_the_snapshot_is_the_incident_frame_scaled_and_named_in_record_and_annotations(make_config):
    clipper = clipper_for(make_config(clips__snapshot_width=320))
    outcome = cut(clipper, "camera1", SEED_INCIDENT + timedelta(seconds=2.4))
    snap = outcome.snapshot_path
    assert snap is not None and snap.parent == outcome.video_path.parent and snap.suffix == ".jpg"
    assert outcome.record.snapshot_file == snap.name and outcome.record.warnings == ()
    image, width, height = picture(snap)
    [source] = [Path(s.path) for s in outcome.record.source_segments if "143015" in s.filename]
    codecs = outcome.record.codecs
    assert (width, height) == (320, round(320 * codecs.height / codecs.width / 2) * 2)  # aspect kept
    at, later = frame_at(source, 2.4, width, height), frame_at(source, 3.4, width, height)
    close, far = difference(image, at), difference(image, later)
    assert close < far / 2, (close, far)  # the incident's frame, not the one a second later
    assert json.loads(outcome.annotation_paths["json"].read_text())["snapshot_file"] == snap.name


def test_snapshot_width_0_makes_none(make_config):
    outcome = cut(clipper_for(make_config(clips__snapshot_width=0)), "camera1", SEED_INCIDENT)
    assert outcome.snapshot_path is None and outcome.record.snapshot_file is None


def test_a_failed_snapshot_is_a_warning_and_the_clip_stands(make_config, monkeypatch):
    """A decoder failure cannot be made on footage the cut still accepts: injected at the one seam, the snapshot
    function the clipper calls."""

    def broken(source: Path, at: float, out: Path, width: int) -> None:
        out.write_bytes(b"half a jpeg")  # what a failure may leave: it must not be kept
        raise ClipError("segment_unreadable", f"{source.name}: simulated decoder failure")

    monkeypatch.setattr(clipper_module, "take_snapshot", broken)
    outcome = cut(clipper_for(make_config()), "camera1", SEED_INCIDENT)
    assert outcome.status == "done" and outcome.video_path.is_file()
    assert outcome.snapshot_path is None and outcome.record.snapshot_file is None
    assert outcome.record.warnings == ("snapshot: camera1_20250829_143015.mp4: simulated decoder failure",)
    assert (
        list(outcome.video_path.parent.glob("*.jpg")) == []
        and list((outcome.video_path.parent / ".tmp").iterdir()) == []
    )
