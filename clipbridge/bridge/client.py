"""A thin paho-mqtt 2.x adapter: callbacks translate and hand off to asyncio; nothing slow runs on paho's thread.

The bridge owns its queues (as aiomqtt's client owns `messages`): `messages` holds received incidents for the
intake, `acks` the broker's acknowledgements of what we publish and of our connection (CONNACK, disconnects) for
the outbox. Nothing else is called back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from clipbridge.bridge.topic import Wildcard
from clipbridge.config import MqttConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Incoming:
    """One received PUBLISH. `generation` is the connection it arrived on: its mid means nothing on another."""

    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes
    response_topic: str | None
    correlation: bytes | None
    dup: bool


@dataclass(frozen=True)
class PubAck:
    """The broker acknowledged (or refused) the publish with this mid."""

    mid: int
    ok: bool


@dataclass(frozen=True)
class Connection:
    connected: bool


class MqttBridge:
    """Construct, then `start()` (connects in the background, paho reconnects with backoff), `stop()` at the end."""

    def __init__(self, *, config: MqttConfig, loop: asyncio.AbstractEventLoop) -> None:
        self._config = config
        self._loop = loop
        self.messages: asyncio.Queue[Incoming] = asyncio.Queue()
        self.acks: asyncio.Queue[PubAck | Connection] = asyncio.Queue()
        self._generation = 0
        self._connected = False
        self._client = self._build()

    @property
    def connected(self) -> bool:
        return self._connected

    def subscriptions(self) -> list[str]:
        return [Wildcard(t).shared(self._config.shared_group).value for t in self._config.topic_filters]

    def _build(self) -> mqtt.Client:
        c = self._config
        # manual_ack: the PUBACK for an incident goes out only after its job is committed to the store.
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=c.client_id, protocol=mqtt.MQTTv5, manual_ack=True)
        client.suppress_exceptions = True  # an exception in a callback must not kill the network thread
        apply_credentials(client, c)
        client.will_set(c.status_topic, b"offline", qos=1, retain=True)
        client.reconnect_delay_set(c.reconnect_min_seconds, c.reconnect_max_seconds)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.on_publish = self._handle_publish
        client.on_subscribe = self._handle_subscribe
        client.on_connect_fail = self._handle_connect_fail
        client.on_socket_open = _no_delay
        return client

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self._config.session_expiry_seconds
        props.ReceiveMaximum = self._config.receive_maximum  # the prefetch window of unacknowledged incidents
        # clean_start=False on every connect: paho's default (MQTT_CLEAN_START_FIRST_ONLY) wipes the broker-side
        # session at each process start, and with it every incident queued while the service was down.
        self._client.connect_async(
            self._config.host, self._config.port, keepalive=self._config.keepalive, clean_start=False, properties=props
        )
        self._client.loop_start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish `offline` (retained), disconnect, stop the network thread."""
        if self._connected:
            info = self._client.publish(self._config.status_topic, b"offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=timeout)
        self._client.disconnect()
        self._client.loop_stop()

    def ack(self, msg: Incoming) -> None:
        """PUBACK, unless the message came on an earlier connection (the broker redelivers it; acking would hit
        whatever message now has that id)."""
        if msg.qos > 0 and msg.generation == self._generation and self._connected:
            self._client.ack(msg.mid, msg.qos)

    def publish(self, topic: str, payload: bytes, correlation: bytes = b"", *, retain: bool = False) -> int:
        """QoS 1 publish; returns the mid that `on_puback` will report. Queued by paho while offline."""
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = "application/json"
        if correlation:
            props.CorrelationData = correlation
        return self._client.publish(topic, payload, qos=1, retain=retain, properties=props).mid

    # -- paho's thread: translate and hand off ----------------------------------------------------------------

    def _handle_connect(
        self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags, rc: ReasonCode, props: Properties | None
    ) -> None:
        if rc.is_failure:
            logger.warning("MQTT connect to %s:%d refused: %s", self._config.host, self._config.port, rc)
            return
        self._generation += 1
        self._connected = True
        logger.info(
            "MQTT connected to %s:%d (session present: %s)", self._config.host, self._config.port, flags.session_present
        )
        client.subscribe([(t, 1) for t in self.subscriptions()])
        client.publish(self._config.status_topic, b"online", qos=1, retain=True)
        self._loop.call_soon_threadsafe(self.acks.put_nowait, Connection(True))

    def _handle_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        # paho retries by itself; without this line a refused TLS handshake or a dead broker is silent.
        logger.warning("MQTT connection to %s:%d failed; retrying", self._config.host, self._config.port)

    def _handle_subscribe(
        self, client: mqtt.Client, userdata: object, mid: int, codes: list[ReasonCode], props: Properties | None
    ) -> None:
        topics = self.subscriptions()
        refused = [t for t, rc in zip(topics, codes, strict=False) if rc.is_failure]
        if refused:
            logger.error("MQTT broker refused the subscription to %s (check the ACL)", ", ".join(refused))
        else:
            logger.info("MQTT subscribed to %s", ", ".join(topics))

    def _handle_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        rc: ReasonCode,
        props: Properties | None,
    ) -> None:
        self._connected = False
        logger.warning("MQTT disconnected: %s", rc)
        self._loop.call_soon_threadsafe(self.acks.put_nowait, Connection(False))

    def _handle_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        props = getattr(message, "properties", None)
        incoming = Incoming(
            generation=self._generation,
            mid=message.mid,
            qos=message.qos,
            topic=message.topic,
            payload=bytes(message.payload),
            response_topic=getattr(props, "ResponseTopic", None),
            correlation=getattr(props, "CorrelationData", None),
            dup=bool(message.dup),
        )
        self._loop.call_soon_threadsafe(self.messages.put_nowait, incoming)

    def _handle_publish(
        self, client: mqtt.Client, userdata: object, mid: int, rc: ReasonCode, props: Properties | None
    ) -> None:
        self._loop.call_soon_threadsafe(self.acks.put_nowait, PubAck(mid, not rc.is_failure))


def apply_credentials(client: mqtt.Client, config: MqttConfig) -> None:
    """Username/password and TLS (CA, client certificate) from the config; shared with `clipbridge publish`."""
    if config.username is not None:
        client.username_pw_set(config.username, config.password)
    if config.tls is not None:
        client.tls_set(
            ca_certs=str(config.tls.ca_file) if config.tls.ca_file else None,
            certfile=str(config.tls.cert_file) if config.tls.cert_file else None,
            keyfile=str(config.tls.key_file) if config.tls.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        client.tls_insecure_set(config.tls.insecure)


def _no_delay(client: mqtt.Client, userdata: object, sock: socket.socket | Any) -> None:
    """A reply right after a PUBACK would otherwise wait ~40 ms for a delayed ACK (Nagle): measured by make bench."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
