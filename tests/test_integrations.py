"""Other publishers' payloads end to end: a real mosquitto, the real `clipbridge run`, real footage."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from clipbridge.handlers.layout import Layout
from clipbridge.synth import record_segments
from tests.conftest import T0, _settle
from tests.harness import Service, TestClient

FRIGATE = Path(__file__).parent / "fixtures" / "frigate"
FRIGATE_LAYOUT = "%Y-%m-%d/%H/{camera_id}/%M.%S"


def frigate(name: str, *, camera: str, start: datetime, end: datetime | None = None, **after: Any) -> dict[str, Any]:
    payload = json.loads((FRIGATE / name).read_text())
    payload["after"].update({"camera": camera, "start_time": start.timestamp(), **after})
    if end is not None:
        payload["after"]["end_time"] = end.timestamp()
    return payload


def metric(service: Service, name: str, **labels: str) -> float:
    text = httpx.get(f"{service.base_url}/metrics", timeout=10).text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    series = f"{name}{{{want}}}" if labels else name
    for line in text.splitlines():
        if re.fullmatch(rf"{re.escape(series)} \S+", line):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{want}}} not in /metrics")


def clips_of(service: Service, camera: str) -> list[dict[str, Any]]:
    page = httpx.get(f"{service.base_url}/clips", params={"camera_id": camera}, timeout=10).json()
    return page["items"]


def test_frigate_new_update_end_gives_one_clip_from_start_minus_pre_to_end_plus_post(
    start_service, broker, prefix, tmp_path
):
    topics = [{"topic": f"{prefix}/frigate/events", "format": "frigate-events"}]
    service = start_service(mqtt__request_topics=topics)
    client = TestClient(broker.port, subscribe=[f"{prefix}/results/#", f"{prefix}/errors"])
    start, end = T0 + timedelta(seconds=20), T0 + timedelta(seconds=25)  # 14:30:10 .. 14:30:15
    for name in ("event_new.json", "event_update.json", "event_end.json"):
        client.publish(f"{prefix}/frigate/events", frigate(name, camera="camera1", start=start, end=end), qos=0)
    reply = client.expect_json(timeout=60)
    assert reply["status"] == "done", reply
    assert reply["event_id"] == "1607123955.475377-mxklsc"
    assert (reply["requested_start"], reply["requested_end"]) == (
        "2025-08-29T14:29:55.000Z",
        "2025-08-29T14:30:20.000Z",
    )
    assert reply["actual_start"] <= "2025-08-29T14:29:55.000Z" and reply["actual_end"] >= "2025-08-29T14:30:20.000Z"
    assert reply["metadata"]["label"] == "person" and reply["metadata"]["zones"] == ["yard", "driveway"]
    assert metric(service, "mqtt_messages_total", result="ignored") == 2  # new and update ask for no clip
    assert len(clips_of(service, "camera1")) == 1

    # A repeated `end` (Frigate restarts, QoS 0 duplicates) is the same clip: answered again, not cut again.
    client.publish(f"{prefix}/frigate/events", frigate("event_end.json", camera="camera1", start=start, end=end))
    again = client.expect_json(timeout=60)
    assert again["clip_id"] == reply["clip_id"]
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == 1


def test_frigate_on_new_and_end_cuts_two_clips_and_filters_hold(start_service, broker, prefix):
    topics = [
        {"topic": f"{prefix}/frigate/events", "format": "frigate-events", "on": ["new", "end"], "labels": ["person"]},
        {"topic": f"{prefix}/frigate/reviews", "format": "frigate-reviews", "severity": ["alert"]},
    ]
    service = start_service(mqtt__request_topics=topics)
    client = TestClient(broker.port, subscribe=[f"{prefix}/results/#"])
    start, end = T0 + timedelta(seconds=20), T0 + timedelta(seconds=25)
    car = frigate("event_end.json", camera="camera1", start=start, end=end, label="car", id="car-1")
    client.publish(f"{prefix}/frigate/events", car)  # filtered: not a person
    detection = frigate("review_end.json", camera="camera1", start=start, end=end, severity="detection", id="rv-d")
    client.publish(f"{prefix}/frigate/reviews", detection)  # filtered: a detection, not an alert
    for name in ("event_new.json", "event_end.json"):
        client.publish(f"{prefix}/frigate/events", frigate(name, camera="camera1", start=start, end=end))
    alert = frigate("review_end.json", camera="camera1", start=start, end=end, id="rv-a")
    client.publish(f"{prefix}/frigate/reviews", alert)
    replies = {r["event_id"]: r for r in (client.expect_json(timeout=60) for _ in range(3))}
    assert set(replies) == {"1607123955.475377-mxklsc:new", "1607123955.475377-mxklsc", "rv-a"}
    assert all(r["status"] == "done" for r in replies.values()), replies
    early = replies["1607123955.475377-mxklsc:new"]
    assert (early["requested_start"], early["requested_end"]) == (
        "2025-08-29T14:29:55.000Z",
        "2025-08-29T14:30:15.000Z",
    )
    assert replies["rv-a"]["metadata"]["severity"] == "alert"
    assert metric(service, "mqtt_messages_total", result="ignored") == 2
    assert len(clips_of(service, "camera1")) == 3


def test_mapped_payloads_and_a_missing_field_rejected_naming_the_pointer(start_service, broker, prefix):
    topics = [
        {
            "topic": f"{prefix}/ds/+",
            "format": "mapped",
            "fields": {
                "timestamp": "/event/ts_ms",
                "camera_id": "/sensor/id",
                "event_id": "/id",
                "metadata": "/object",
            },
            "timestamp_format": "epoch_ms",
        }
    ]
    start_service(mqtt__request_topics=topics)
    client = TestClient(broker.port, subscribe=[f"{prefix}/results/#", f"{prefix}/errors"])
    ts_ms = int((T0 + timedelta(seconds=25)).timestamp() * 1000)
    event = {"id": 77, "event": {"ts_ms": ts_ms}, "sensor": {"id": "camera1"}, "object": {"label": "person"}}
    client.publish(f"{prefix}/ds/site1", event)
    done = client.expect_json(timeout=60)
    assert done["status"] == "done", done
    assert (done["event_id"], done["camera_id"], done["timestamp"]) == ("77", "camera1", "2025-08-29T14:30:15.000Z")
    assert done["metadata"] == {"label": "person"}
    client.publish(f"{prefix}/ds/site1", {"id": 78, "sensor": {"id": "camera1"}, "object": {}})
    rejected = client.expect_json(timeout=30)
    assert rejected["status"] == "rejected"
    assert rejected["event_id"] == "78"
    assert rejected["error"]["code"] == "invalid_request"
    assert "'/event/ts_ms'" in rejected["error"]["message"]


def test_frigate_layout_across_an_hour_folder_and_the_gaps_frigate_leaves(
    start_service, broker, prefix, tmp_path, ffmpeg
):
    root = tmp_path / "frigate-recordings"
    layout = Layout.create(FRIGATE_LAYOUT)
    begin = datetime(2025, 8, 29, 14, 59, 30, tzinfo=UTC)
    tens = [10.0 * i for i in range(1, 7)]  # 10 s segments, 14:59:30 .. 15:00:30, as Frigate records
    for camera in ("front", "motiononly"):
        files = record_segments(ffmpeg, root=root, layout=layout, camera_id=camera, start=begin, cut_points=tens)
        if camera == "motiononly":
            files[3].unlink()  # 15:00:00: no motion, so Frigate's `motion` retention did not keep it
        _settle([f for f in files if f.exists()])
    assert (root / "2025-08-29" / "14" / "front" / "59.50.mp4").exists()
    assert (root / "2025-08-29" / "15" / "front" / "00.00.mp4").exists()
    service = start_service(
        recordings__sources=[{"root": str(root), "layout": FRIGATE_LAYOUT, "timezone": "UTC"}],
        mqtt__request_topics=[{"topic": f"{prefix}/frigate/events", "format": "frigate-events"}],
    )
    client = TestClient(broker.port, subscribe=[f"{prefix}/results/#"])
    start, end = datetime(2025, 8, 29, 14, 59, 52, tzinfo=UTC), datetime(2025, 8, 29, 15, 0, 3, tzinfo=UTC)
    for camera in ("front", "motiononly"):
        client.publish(f"{prefix}/frigate/events", frigate("event_end.json", camera=camera, start=start, end=end,
                                                           id=f"ev-{camera}"))  # fmt: skip
    replies = {r["camera_id"]: r for r in (client.expect_json(timeout=60) for _ in range(2))}
    front = replies["front"]
    assert front["status"] == "done", front
    assert front["gaps"] == []
    names = [s["filename"] for s in front["source_segments"]]
    assert names == ["59.30.mp4", "59.40.mp4", "59.50.mp4", "00.00.mp4"]
    gap = replies["motiononly"]
    assert gap["status"] == "partial", gap
    assert [(g["start"], g["end"]) for g in gap["gaps"]] == [
        ("2025-08-29T15:00:00.000Z", "2025-08-29T15:00:08.000Z")
    ]  # to the window end
    assert service.stop() == 0


def test_plain_string_topics_keep_the_native_schema(start_service, broker, prefix):
    # The default entries are strings; a mixed list keeps them meaning clipbridge's schema.
    topics = [f"{prefix}/cameras/+/incidents", {"topic": f"{prefix}/frigate/events", "format": "frigate-events"}]
    start_service(mqtt__request_topics=topics)
    client = TestClient(broker.port, subscribe=[f"{prefix}/results/#"])
    client.publish(f"{prefix}/cameras/camera1/incidents", {"timestamp": "2025-08-29T14:30:15", "duration": 20})
    assert client.expect_json(timeout=60)["status"] == "done"
