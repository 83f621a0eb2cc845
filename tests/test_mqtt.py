"""The MQTT consumer end to end: a real mosquitto, the real `clipbridge run` process, real footage and HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from clipbridge.handlers.layout import Layout
from clipbridge.synth import record_segments
from tests.conftest import SEED_LAYOUT
from tests.harness import TestClient, correlation_of

SEED_EVENT = {"timestamp": "2025-08-29T14:30:15", "duration": 20}


def test_done_reply_on_response_topic_with_correlation_and_a_download_that_serves_the_clip(
    start_service, broker, prefix
):
    service = start_service()
    client = TestClient(broker.port, subscribe=[f"{prefix}/r/1"])
    client.publish(
        f"{prefix}/cameras/camera1/incidents", SEED_EVENT, response_topic=f"{prefix}/r/1", correlation=b"abc"
    )
    msg = client.expect(timeout=60)
    reply = json.loads(msg.payload)
    assert correlation_of(msg) == b"abc"
    assert msg.properties.ContentType == "application/json"
    assert reply["status"] == "done", reply
    assert reply["camera_id"] == "camera1"
    assert (reply["actual_start"], reply["actual_end"]) == ("2025-08-29T14:30:00.000Z", "2025-08-29T14:30:20.000Z")
    assert reply["error"] is None and reply["gaps"] == []
    assert next(s["filename"] for s in reply["source_segments"]) == "camera1_20250829_143000.mp4"
    download = httpx.get(reply["download_url"], timeout=30)
    assert download.status_code == 200
    assert download.headers["content-type"] == "video/mp4"
    assert len(download.content) == reply["file_size"]
    for url in reply["annotations"].values():
        assert httpx.get(url, timeout=30).status_code == 200
    assert service.stop() == 0


def test_v311_publisher_gets_its_reply_on_reply_to(start_service, broker, prefix):
    start_service()
    client = TestClient(broker.port, v5=False, subscribe=[f"{prefix}/answers/#"])
    client.publish(
        f"{prefix}/clips/requests", {**SEED_EVENT, "camera_id": "camera1", "reply_to": f"{prefix}/answers/x"}
    )
    msg = client.expect(timeout=60)
    assert msg.topic == f"{prefix}/answers/x"
    assert json.loads(msg.payload)["status"] == "done"


def test_without_reply_routing_the_result_goes_to_the_result_topic(start_service, broker, prefix):
    start_service()
    client = TestClient(broker.port, subscribe=[f"{prefix}/results/#"])
    client.publish(f"{prefix}/cameras/camera1/incidents", {**SEED_EVENT, "metadata": {"label": "person"}})
    msg = client.expect(timeout=60)
    assert msg.topic == f"{prefix}/results/camera1"
    reply = json.loads(msg.payload)
    assert reply["metadata"] == {"label": "person"}


def test_duplicate_event_id_gives_one_clip_and_the_same_clip_id(start_service, broker, prefix, tmp_path):
    start_service()
    client = TestClient(broker.port, subscribe=[f"{prefix}/dup"])
    event = {**SEED_EVENT, "event_id": "evt-1"}
    client.publish(f"{prefix}/cameras/camera1/incidents", event, response_topic=f"{prefix}/dup", correlation=b"1")
    first = json.loads(client.expect(timeout=60).payload)
    client.publish(f"{prefix}/cameras/camera1/incidents", event, response_topic=f"{prefix}/dup", correlation=b"2")
    second_msg = client.expect(timeout=60)
    second = json.loads(second_msg.payload)
    assert correlation_of(second_msg) == b"2"
    assert first["status"] == second["status"] == "done"
    assert first["clip_id"] == second["clip_id"]
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == 1


BAD_INPUTS = [
    (b"{not json", "invalid_json"),
    (b"\xff\xfe not utf-8", "invalid_json"),
    (b"[1, 2, 3]", "invalid_request"),
    (json.dumps({"camera_id": "camera1", "timestamp": True}).encode(), "invalid_request"),
    (json.dumps({"camera_id": "camera1", "timestamp": "yesterday"}).encode(), "invalid_request"),
    (
        json.dumps({"camera_id": "camera1", "timestamp": "2025-08-29T14:30:15", "duration": "long"}).encode(),
        "invalid_request",
    ),
    (json.dumps({"camera_id": "../../etc", "timestamp": "2025-08-29T14:30:15"}).encode(), "unsafe_camera_id"),
    (json.dumps({"camera_id": "..", "timestamp": "2025-08-29T14:30:15"}).encode(), "unsafe_camera_id"),
    (
        json.dumps({"camera_id": "camera1", "timestamp": "2025-08-29T14:30:15", "duration": 1000}).encode(),
        "window_too_long",
    ),
    (json.dumps({"camera_id": "nosuchcam", "timestamp": "2025-08-29T14:30:15"}).encode(), "unknown_camera"),
    (
        json.dumps({"camera_id": "camera1", "timestamp": "2025-08-29T14:30:15", "reply_to": "a/#"}).encode(),
        "invalid_request",
    ),
    (json.dumps({"timestamp": "2025-08-29T14:30:15"}).encode(), "invalid_request"),  # no camera anywhere
    (
        b'{"camera_id": "camera1", "timestamp": "2025-08-29T14:30:15", "pad": "' + b"x" * 70_000 + b'"}',
        "payload_too_large",
    ),
]


def test_bad_input_is_rejected_with_a_code_and_the_next_valid_event_still_works(start_service, broker, prefix):
    service = start_service()
    client = TestClient(broker.port, subscribe=[f"{prefix}/bad/#", f"{prefix}/errors"])
    for i, (payload, _) in enumerate(BAD_INPUTS):
        client.publish(
            f"{prefix}/clips/requests", payload, response_topic=f"{prefix}/bad/{i}", correlation=str(i).encode()
        )
    codes = {}
    for _ in BAD_INPUTS:
        msg = client.expect(timeout=30)
        body = json.loads(msg.payload)
        assert body["status"] == "rejected" and body["clip_id"] is None
        codes[int(correlation_of(msg) or b"-1")] = body["error"]["code"]
    assert codes == {i: code for i, (_, code) in enumerate(BAD_INPUTS)}
    # Without a response topic a rejection goes to the error topic; a topic/camera mismatch is caught.
    client.publish(f"{prefix}/cameras/camera1/incidents", {"camera_id": "camera2", "timestamp": "2025-08-29T14:30:15"})
    msg = client.expect(timeout=30)
    assert msg.topic == f"{prefix}/errors"
    assert "disagrees" in json.loads(msg.payload)["error"]["message"]
    # The consumer is alive: a valid event gets its clip.
    client.publish(f"{prefix}/cameras/camera1/incidents", SEED_EVENT, response_topic=f"{prefix}/bad/ok")
    assert client.expect_json(timeout=60)["status"] == "done"
    metrics = httpx.get(f"{service.base_url}/metrics", timeout=10).text
    assert 'mqtt_messages_total{result="rejected"} 14.0' in metrics


def _live_event(now: datetime, **extra: object) -> dict[str, object]:
    return {"camera_id": "live1", "timestamp": now.isoformat(), "pre_seconds": 4, "post_seconds": 2, **extra}


def _record_live(ffmpeg: str, root: Path, start: datetime, seconds: int) -> list[Path]:
    return record_segments(
        ffmpeg,
        root=root,
        layout=Layout.create(SEED_LAYOUT),
        camera_id="live1",
        start=start,
        cut_points=[5.0 * (i + 1) for i in range(seconds // 5)],
    )


def test_live_incident_waits_for_footage_and_completes_once_it_exists(start_service, broker, prefix, live_root, ffmpeg):
    service = start_service(mqtt__publish_accepted=True)
    client = TestClient(broker.port, subscribe=[f"{prefix}/live"])
    now = datetime.now(UTC).replace(microsecond=0)
    client.publish(f"{prefix}/clips/requests", _live_event(now), response_topic=f"{prefix}/live")
    accepted = client.expect_json(timeout=30)
    assert accepted["status"] == "waiting"  # the window ends in the future: no footage can be complete yet
    assert service.log is not None
    service.log.wait_for(f"job {accepted['clip_id']} waiting for footage", timeout=30)
    # The recorder closes segments covering the window (and one beyond its end).
    _record_live(ffmpeg, live_root, now - timedelta(seconds=10), 20)
    done = client.expect_json(timeout=60)
    assert done["clip_id"] == accepted["clip_id"]
    assert done["status"] == "done", done
    assert done["gaps"] == []
    assert done["actual_start"] <= done["requested_start"] and done["actual_end"] >= done["requested_end"]


def test_deadline_clips_what_exists_and_reports_the_gap(start_service, broker, prefix, live_root, ffmpeg):
    now = datetime.now(UTC).replace(microsecond=0)
    # Footage ends 5 s before the incident; the window runs to 2 s after it and nothing more will come.
    _record_live(ffmpeg, live_root, now - timedelta(seconds=15), 10)
    start_service(clips__max_wait_seconds=1)
    client = TestClient(broker.port, subscribe=[f"{prefix}/partial"])
    client.publish(f"{prefix}/clips/requests", _live_event(now, pre_seconds=8), response_topic=f"{prefix}/partial")
    reply = client.expect_json(timeout=60)
    assert reply["status"] == "partial", reply
    assert [g["reason"] for g in reply["gaps"]] == ["missing"]
    assert reply["gaps"][0]["end"] == reply["requested_end"]
    assert reply["download_url"]


def test_events_published_while_the_service_is_down_are_processed_after_it_starts(start_service, broker, prefix):
    service = start_service()
    assert service.stop() == 0  # the broker keeps the session (clean_start=False, session expiry)
    client = TestClient(broker.port, subscribe=[f"{prefix}/later"])
    client.publish(
        f"{prefix}/cameras/camera1/incidents", SEED_EVENT, response_topic=f"{prefix}/later", correlation=b"z"
    )
    service.start()
    msg = client.expect(timeout=60)
    assert json.loads(msg.payload)["status"] == "done" and correlation_of(msg) == b"z"


def test_kill_9_after_intake_resumes_the_job_after_restart(start_service, broker, prefix, live_root, ffmpeg, tmp_path):
    service = start_service(mqtt__publish_accepted=True)
    client = TestClient(broker.port, subscribe=[f"{prefix}/k9"])
    now = datetime.now(UTC).replace(microsecond=0)
    client.publish(f"{prefix}/clips/requests", _live_event(now, event_id="k9"), response_topic=f"{prefix}/k9")
    accepted = client.expect_json(timeout=30)
    assert service.log is not None
    service.log.wait_for(f"job {accepted['clip_id']} waiting", timeout=30)
    service.kill9()
    _record_live(ffmpeg, live_root, now - timedelta(seconds=10), 20)
    service.start()
    done = client.expect_json(timeout=60, where=lambda r: r["status"] not in ("pending", "waiting"))
    assert (done["clip_id"], done["status"]) == (accepted["clip_id"], "done")
    clips = httpx.get(f"{service.base_url}/clips", timeout=10).json()
    assert clips["total"] == 1
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == 1


def test_broker_restart_loses_no_job_and_no_reply(start_service, broker, prefix, live_root, ffmpeg):
    service = start_service()
    client = TestClient(broker.port, persistent=True, client_id=f"sub-{prefix}", subscribe=[f"{prefix}/br/#"])
    now = datetime.now(UTC).replace(microsecond=0)
    for i in range(3):
        client.publish(
            f"{prefix}/clips/requests", _live_event(now, event_id=f"br-{i}"), response_topic=f"{prefix}/br/{i}"
        )
    assert service.log is not None
    line = -1
    for _ in range(3):
        line = service.log.wait_for("waiting for footage", timeout=30, start=line + 1)
    broker.stop()
    # While the broker is down the footage arrives: the jobs finish and their replies wait in the outbox.
    _record_live(ffmpeg, live_root, now - timedelta(seconds=10), 20)
    line = -1
    for _ in range(3):
        line = service.log.wait_for(" done: ", timeout=60, start=line + 1)
    broker.start()
    replies = {}
    for _ in range(3):
        msg = client.expect(timeout=60)
        replies[msg.topic] = json.loads(msg.payload)
    assert sorted(replies) == [f"{prefix}/br/{i}" for i in range(3)]
    assert all(r["status"] == "done" for r in replies.values())
    assert len({r["clip_id"] for r in replies.values()}) == 3
    health = httpx.get(f"{service.base_url}/health", timeout=10).json()
    assert health["components"]["outbox"]["pending"] == 0


def test_testcontainers_mosquitto_when_a_docker_engine_exists(tmp_path):
    """The fallback broker for machines without mosquitto; needs a Docker engine."""
    from tests.harness import docker_engine_available

    if not docker_engine_available():
        pytest.skip("no Docker engine on this machine: the testcontainers broker path cannot run here")
    from testcontainers.mqtt import MosquittoContainer

    with MosquittoContainer() as container:
        port = int(container.get_exposed_port(container.MQTT_PORT))
        client = TestClient(port, host=container.get_container_host_ip(), subscribe=["tc/#"])
        client.publish("tc/ping", b"pong")
        assert client.expect(timeout=30).payload == b"pong"


def test_recordings_root_created_after_start_is_watched(start_service, broker, prefix, tmp_path, ffmpeg):
    late = tmp_path / "late"  # the recorder has not started yet: its folder does not exist
    service = start_service(
        recordings__sources=[{"root": str(late), "layout": SEED_LAYOUT, "timezone": "UTC"}],
    )
    now = datetime.now(UTC).replace(microsecond=0)
    record_segments(
        ffmpeg,
        root=late,
        layout=Layout.create(SEED_LAYOUT),
        camera_id="late1",
        start=now - timedelta(seconds=20),
        cut_points=[5.0, 10.0, 15.0, 20.0],
    )
    assert service.log is not None
    service.log.wait_for("a recordings root appeared: walked", timeout=30)  # logged once the walk is done
    client = TestClient(broker.port, subscribe=[f"{prefix}/late"])
    event = {"camera_id": "late1", "timestamp": (now - timedelta(seconds=8)).isoformat(), "duration": 10}
    client.publish(f"{prefix}/clips/requests", event, response_topic=f"{prefix}/late")
    assert client.expect_json(timeout=60)["status"] == "done"
