"""`clipbridge publish`: send one incident over MQTT v5 and wait for its reply, the way an analytics system would."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from clipbridge.bridge.client import apply_credentials
from clipbridge.config import MqttConfig
from clipbridge.errors import ClipError


def publish_and_wait(
    config: MqttConfig,
    *,
    topic: str,
    event: dict[str, Any],
    reply_topic: str,
    timeout: float,
    progress: Callable[[float], None] = lambda elapsed: None,
) -> dict[str, Any]:
    """Publish `event` (QoS 1) with a response topic and correlation data; return the first final reply."""
    replies: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    subscribed = threading.Event()
    correlation = uuid.uuid4().hex.encode()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"clipbridge-cli-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5)  # fmt: skip
    apply_credentials(client, config)
    client.on_message = lambda c, u, m: replies.put(m)
    client.on_subscribe = lambda *args: subscribed.set()
    try:
        client.connect(config.host, config.port, 30)
    except OSError as exc:
        raise ClipError("mqtt_unavailable", f"cannot reach the broker at {config.host}:{config.port}: {exc}") from exc
    client.loop_start()
    try:
        client.subscribe(reply_topic, qos=1)
        if not subscribed.wait(15):
            raise ClipError("mqtt_unavailable", f"the broker did not confirm the subscription to {reply_topic}")
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = reply_topic
        props.CorrelationData = correlation
        info = client.publish(topic, json.dumps(event), qos=1, properties=props)
        info.wait_for_publish(timeout=15)
        started = time.monotonic()
        while True:
            elapsed = time.monotonic() - started
            if elapsed > timeout:
                raise ClipError("timeout", f"no reply on {reply_topic} within {timeout:g} s")
            try:
                msg = replies.get(timeout=1.0)
            except queue.Empty:
                progress(elapsed)
                continue
            if getattr(msg.properties, "CorrelationData", None) != correlation:
                continue
            reply = json.loads(msg.payload)
            if reply.get("status") in ("pending", "waiting", "processing"):
                continue  # the optional `accepted` message
            return dict(reply)
    finally:
        client.disconnect()
        client.loop_stop()
