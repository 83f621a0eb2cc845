"""Home Assistant MQTT discovery: each camera a device with a "last clip" sensor and a "recorder alive" binary
sensor, the service a device with a "queue depth" sensor, all available while the service's status topic says
`online`.

Discovery configs are retained on `<prefix>/<component>/<node_id>/<object_id>/config`; states are retained on
`clipbridge/<node_id>/...`. A camera that leaves the recordings index has its configs cleared (an empty retained
payload), also across restarts: at start the configs already on the broker are read back. The last-clip states
come from the store (so clips another instance cut, or cut before a restart, show too) and at once when a clip
finishes here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from clipbridge import __version__
from clipbridge.bridge.client import MqttBridge, apply_credentials
from clipbridge.config import HomeAssistantConfig, MqttConfig
from clipbridge.errors import ClipError
from clipbridge.handlers.index import RecordingsIndex
from clipbridge.handlers.store import Store
from clipbridge.model import Job

logger = logging.getLogger(__name__)
REFRESH_SECONDS = 30.0  # liveness, queue depth and last clips from the store are published this often

Message = tuple[str, bytes]


class Topics:
    """Where each entity's config and state live."""

    def __init__(self, config: HomeAssistantConfig) -> None:
        self.prefix = config.prefix.rstrip("/")
        self.node = config.node_id
        self.base = f"clipbridge/{self.node}"

    def config(self, component: str, object_id: str) -> str:
        return f"{self.prefix}/{component}/{self.node}/{object_id}/config"

    def last_clip(self, camera: str) -> str:
        return f"{self.base}/cameras/{camera}/last_clip"

    def recorder(self, camera: str) -> str:
        return f"{self.base}/cameras/{camera}/recorder"

    @property
    def queue_depth(self) -> str:
        return f"{self.base}/queue_depth"

    @property
    def discovery_filter(self) -> str:
        return f"{self.prefix}/+/{self.node}/+/config"


def camera_configs(topics: Topics, camera: str, availability: str) -> list[Message]:
    """The retained discovery configs of one camera's entities."""
    device = {
        "identifiers": [f"{topics.node}_{camera}"],
        "name": camera,
        "manufacturer": "clipbridge",
        "model": "camera clips",
        "via_device": topics.node,
    }
    common = _available(availability) | {"device": device}
    last_clip = common | {
        "name": "Last clip",
        "unique_id": f"{topics.node}_{camera}_last_clip",
        "object_id": f"{topics.node}_{camera}_last_clip",
        "state_topic": topics.last_clip(camera),
        "value_template": "{{ value_json.completed_at }}",
        "json_attributes_topic": topics.last_clip(camera),
        "device_class": "timestamp",
        "icon": "mdi:filmstrip",
    }
    recorder = common | {
        "name": "Recorder alive",
        "unique_id": f"{topics.node}_{camera}_recorder",
        "object_id": f"{topics.node}_{camera}_recorder",
        "state_topic": topics.recorder(camera),
        "payload_on": "ON",
        "payload_off": "OFF",
        "device_class": "connectivity",
    }
    return [
        (topics.config("sensor", f"{camera}_last_clip"), _json(last_clip)),
        (topics.config("binary_sensor", f"{camera}_recorder"), _json(recorder)),
    ]


def service_configs(topics: Topics, availability: str) -> list[Message]:
    device = {
        "identifiers": [topics.node],
        "name": "clipbridge",
        "manufacturer": "clipbridge",
        "sw_version": __version__,
    }
    queue = _available(availability) | {
        "name": "Queue depth",
        "unique_id": f"{topics.node}_queue_depth",
        "object_id": f"{topics.node}_queue_depth",
        "state_topic": topics.queue_depth,
        "unit_of_measurement": "jobs",
        "state_class": "measurement",
        "icon": "mdi:tray-full",
        "device": device,
    }
    return [(topics.config("sensor", "queue_depth"), _json(queue))]


def last_clip_state(reply: dict[str, Any]) -> bytes:
    """The last-clip sensor's state: completed_at is its value, the rest its attributes."""
    return _json(
        {
            "completed_at": reply.get("completed_at"),
            "status": reply.get("status"),
            "clip_id": reply.get("clip_id"),
            "event_id": reply.get("event_id"),
            "clip_url": reply.get("download_url"),
            "snapshot_url": reply.get("snapshot_url"),
            "gaps": reply.get("gaps", []),
            "incident": reply.get("timestamp"),
        }
    )


class HomeAssistant:
    def __init__(
        self,
        *,
        config: HomeAssistantConfig,
        mqtt_config: MqttConfig,
        bridge: MqttBridge,
        store: Store,
        cameras: Callable[[], list[str]],
        alive: Callable[[str, datetime], bool],
        result: Callable[[Job], Awaitable[bytes]],
    ) -> None:
        self._config = config
        self._mqtt = mqtt_config
        self._bridge = bridge
        self._store = store
        self._cameras = cameras
        self._alive = alive
        self._result = result  # a job's reply payload, as the store has it
        self._topics = Topics(config)
        self._announced: set[str] = set()
        self._last: dict[str, bytes] = {}  # camera -> the last-clip state published

    def clip_finished(self, camera_id: str, payload: bytes) -> None:
        """Publish a camera's new last clip at once (called when a job of this instance finishes)."""
        with contextlib.suppress(ValueError):
            self._publish_last(camera_id, last_clip_state(json.loads(payload)))

    async def run(self, stop: asyncio.Event) -> None:
        availability = self._mqtt.status_topic
        stale = await asyncio.to_thread(read_retained, self._mqtt, self._topics.discovery_filter)
        for topic, payload in service_configs(self._topics, availability):
            self._publish(topic, payload)
        known_before = {_camera_of(t) for t, p in stale.items() if p and _camera_of(t)}
        self._announced = {c for c in known_before if c is not None}
        while not stop.is_set():
            try:
                await self._refresh(availability)
            except ClipError as exc:
                logger.warning("Home Assistant states not refreshed: %s", exc.message)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=REFRESH_SECONDS)

    async def _refresh(self, availability: str) -> None:
        cameras = set(self._cameras())
        for camera in sorted(cameras - self._announced):
            for topic, payload in camera_configs(self._topics, camera, availability):
                self._publish(topic, payload)
        for camera in sorted(self._announced - cameras):
            logger.info("Home Assistant: camera %s has no recordings any more; its entities are removed", camera)
            for topic, _ in camera_configs(self._topics, camera, availability):
                self._publish(topic, b"")
            for state in (self._topics.last_clip(camera), self._topics.recorder(camera)):
                self._publish(state, b"")
            self._last.pop(camera, None)
        self._announced = cameras
        now = datetime.now(UTC)
        for camera in sorted(cameras):
            self._publish(self._topics.recorder(camera), b"ON" if self._alive(camera, now) else b"OFF")
            jobs, _ = await self._store.list_jobs(camera_id=camera, limit=10)
            finished = [j for j in jobs if j.completed_at is not None]
            if finished:
                newest = max(finished, key=lambda j: j.completed_at or now)
                self._publish_last(camera, last_clip_state(json.loads(await self._result(newest))))
        self._publish(self._topics.queue_depth, str(await self._store.count_unfinished()).encode())

    def _publish_last(self, camera: str, state: bytes) -> None:
        if self._last.get(camera) != state:
            self._last[camera] = state
            self._publish(self._topics.last_clip(camera), state)

    def _publish(self, topic: str, payload: bytes) -> None:
        self._bridge.publish(topic, payload, retain=True)


def read_retained(config: MqttConfig, topic_filter: str, timeout: float = 10.0) -> dict[str, bytes]:
    """The retained messages on `topic_filter`, read with a short-lived client. The broker sends them right after
    the SUBACK; a marker published afterwards to our own topic arrives after all of them."""
    found: dict[str, bytes] = {}
    marker = f"clipbridge/sync/{uuid.uuid4().hex}"
    done = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == marker:
            done.set()
        elif msg.retain:
            found[msg.topic] = bytes(msg.payload)

    def on_subscribe(client: mqtt.Client, userdata: object, *args: object) -> None:
        client.publish(marker, b"x", qos=1)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{config.client_id}-sync-{uuid.uuid4().hex[:6]}",
                         protocol=mqtt.MQTTv5)  # fmt: skip
    apply_credentials(client, config)
    client.on_message = on_message
    client.on_subscribe = on_subscribe
    try:
        client.connect(config.host, config.port, 30)
    except OSError as exc:
        logger.warning("Home Assistant: cannot read the retained discovery configs (%s); stale ones stay", exc)
        return {}
    client.loop_start()
    try:
        client.subscribe([(topic_filter, 0), (marker, 0)])
        if not done.wait(timeout):
            logger.warning("Home Assistant: the retained discovery configs were not all read within %.0f s", timeout)
        return dict(found)
    finally:
        client.disconnect()
        client.loop_stop()


def recorder_alive(index: RecordingsIndex, stale_seconds: float) -> Callable[[str, datetime], bool]:
    """A camera's recorder is alive while its newest segment was written within `stale_seconds`."""

    def alive(camera: str, now: datetime) -> bool:
        summary = index.summary(camera)
        if summary is None:
            return False
        newest = summary.newest
        last_write = index.last_write(newest)
        return (now - last_write).total_seconds() <= stale_seconds

    return alive


def _camera_of(topic: str) -> str | None:
    """The camera of one of our discovery config topics (`.../<camera>_last_clip/config`), else None."""
    object_id = topic.rsplit("/", 2)[-2]
    for suffix in ("_last_clip", "_recorder"):
        if object_id.endswith(suffix):
            return object_id[: -len(suffix)]
    return None


def _available(topic: str) -> dict[str, Any]:
    return {"availability_topic": topic, "payload_available": "online", "payload_not_available": "offline"}


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
