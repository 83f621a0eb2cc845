"""Home Assistant MQTT discovery against a real mosquitto and the real `clipbridge run`."""

from __future__ import annotations

import json
from typing import Any

import paho.mqtt.client as mqtt

from clipbridge.bridge.homeassistant import Topics, camera_configs, service_configs
from clipbridge.config import HomeAssistantConfig
from tests.harness import TestClient

SEED_EVENT = {"timestamp": "2025-08-29T14:30:15", "duration": 20}


def ha_settings(prefix: str) -> dict[str, Any]:
    return {"homeassistant__discovery": True, "homeassistant__prefix": f"{prefix}/ha", "homeassistant__node_id": prefix}


def collect(client: TestClient, n: int, timeout: float = 30) -> dict[str, mqtt.MQTTMessage]:
    """The next `n` messages on distinct topics (a topic seen again keeps its latest message)."""
    got: dict[str, mqtt.MQTTMessage] = {}
    while len(got) < n:
        msg = client.expect(timeout=timeout)
        got[msg.topic] = msg
    return got


def test_discovery_configs_are_retained_valid_json_naming_states_and_availability():
    topics = Topics(HomeAssistantConfig(discovery=True, prefix="homeassistant", node_id="cb"))
    configs = dict(camera_configs(topics, "front", "clipbridge/cb-1/status") + service_configs(topics, "s"))
    assert set(configs) == {
        "homeassistant/sensor/cb/front_last_clip/config",
        "homeassistant/binary_sensor/cb/front_recorder/config",
        "homeassistant/sensor/cb/queue_depth/config",
    }
    last = json.loads(configs["homeassistant/sensor/cb/front_last_clip/config"])
    assert last["state_topic"] == last["json_attributes_topic"] == "clipbridge/cb/cameras/front/last_clip"
    assert (last["device_class"], last["value_template"]) == ("timestamp", "{{ value_json.completed_at }}")
    assert last["availability_topic"] == "clipbridge/cb-1/status"
    assert last["device"]["identifiers"] == ["cb_front"] and last["device"]["via_device"] == "cb"
    alive = json.loads(configs["homeassistant/binary_sensor/cb/front_recorder/config"])
    assert (alive["device_class"], alive["payload_on"], alive["payload_off"]) == ("connectivity", "ON", "OFF")
    assert len({json.loads(p)["unique_id"] for p in configs.values()}) == 3


def test_cameras_appear_states_follow_clips_and_availability_follows_the_service(
    start_service, broker, prefix, footage
):
    service = start_service(**ha_settings(prefix))
    cameras = 11  # the session footage's cameras and live1
    watcher = TestClient(broker.port, subscribe=[f"{prefix}/ha/#"])
    collect(watcher, 2 * cameras + 1)  # published (a subscriber present at the time gets them live)
    late = TestClient(broker.port, subscribe=[f"{prefix}/ha/#"])
    configs = collect(late, 2 * cameras + 1)  # a Home Assistant started later gets them from the broker
    assert all(m.retain for m in configs.values()), "discovery configs are retained"
    parsed = {t: json.loads(m.payload) for t, m in configs.items()}
    status_topic = f"clipbridge/clipbridge-{prefix}/status"
    assert {p["availability_topic"] for p in parsed.values()} == {status_topic}
    assert f"{prefix}/ha/sensor/{prefix}/camera1_last_clip/config" in parsed
    assert f"{prefix}/ha/binary_sensor/{prefix}/live1_recorder/config" in parsed

    states = TestClient(broker.port, subscribe=[f"clipbridge/{prefix}/#", status_topic])
    seen = collect(states, 1 + cameras + 1)  # the status, every camera's recorder state, the queue depth
    assert seen[status_topic].payload == b"online"
    assert seen[f"clipbridge/{prefix}/cameras/live1/recorder"].payload == b"ON"  # written just now
    assert seen[f"clipbridge/{prefix}/cameras/camera1/recorder"].payload == b"OFF"  # footage of 2025

    client = TestClient(broker.port, subscribe=[f"{prefix}/results/#"])
    client.publish(f"{prefix}/cameras/camera1/incidents", SEED_EVENT)
    reply = json.loads(client.expect(timeout=60).payload)
    last = states.expect(timeout=30, where=lambda m: m.topic == f"clipbridge/{prefix}/cameras/camera1/last_clip")
    state = json.loads(last.payload)
    assert (state["status"], state["clip_id"], state["clip_url"]) == ("done", reply["clip_id"], reply["download_url"])
    assert state["completed_at"] == reply["completed_at"] and state["gaps"] == []

    assert service.stop() == 0
    offline = states.expect(timeout=30, where=lambda m: m.topic == status_topic)
    assert offline.payload == b"offline"


def test_a_camera_gone_from_the_recordings_has_its_entities_removed_across_a_restart(
    start_service, broker, prefix, footage
):
    first = start_service(**ha_settings(prefix))
    watcher = TestClient(broker.port, subscribe=[f"{prefix}/ha/#"])
    collect(watcher, 2 * 11 + 1)
    assert first.stop() == 0
    # Restarted without the MediaMTX source: camera cam3 is no longer recorded.
    seed_only = [s for s in footage.sources() if "mediamtx" not in s["root"]]
    start_service(recordings__sources=seed_only, **ha_settings(prefix))
    cleared = {
        watcher.expect(timeout=30, where=lambda m: m.payload == b"" and "/cam3_" in m.topic).topic for _ in range(2)
    }
    assert cleared == {
        f"{prefix}/ha/sensor/{prefix}/cam3_last_clip/config",
        f"{prefix}/ha/binary_sensor/{prefix}/cam3_recorder/config",
    }
    fresh = TestClient(broker.port, subscribe=[f"{prefix}/ha/#"])
    remaining = collect(fresh, 2 * 9 + 1)  # the seed root's 9 cameras (no live1 either), and the service
    assert not any("/cam3_" in t for t in remaining)
