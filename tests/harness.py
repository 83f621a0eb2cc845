"""Real parts for tests: a mosquitto process of our own, the real `clipbridge run` process, a paho test client.

Everything waits on the event it needs (a log line, a message, a file) with a timeout; nothing sleeps to synchronise.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LogWatcher:
    """Reads a process's output in a thread; `wait_for(text)` blocks until a line contains it."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: Any) -> None:
        for raw in iter(stream.readline, b""):
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip())
                self._cond.notify_all()
        stream.close()
        with self._cond:
            self.lines.append("<eof>")
            self._cond.notify_all()

    def join(self, timeout: float = 15.0) -> None:
        """Wait until the process's output is drained and its pipe closed."""
        self._thread.join(timeout)

    def wait_for(self, text: str, timeout: float = 30.0, start: int = 0) -> int:
        """Index of the first line at or after `start` containing `text`."""

        def found() -> int | None:
            for i in range(start, len(self.lines)):
                if text in self.lines[i]:
                    return i
            return None

        with self._cond:
            ok = self._cond.wait_for(lambda: found() is not None or "<eof>" in self.lines, timeout=timeout)
            index = found()
        if not ok or index is None:
            raise AssertionError(f"no log line with {text!r} within {timeout} s; last lines:\n" + self.tail())
        return index

    def tail(self, n: int = 40) -> str:
        with self._cond:
            return "\n".join(self.lines[-n:])


@dataclass
class Broker:
    """A mosquitto process on a free loopback port, with persistence in its own folder.

    `external=True` wraps a broker this test does not control (MQTT_TEST_URL, a testcontainer): tests that must
    stop or restart it are skipped there, with the reason printed.
    """

    workdir: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    external: bool = False
    extra_config: str = ""
    proc: subprocess.Popen[bytes] | None = None
    log: LogWatcher | None = None

    @property
    def conf(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def _control(self) -> None:
        if self.external:
            pytest.skip(f"the broker at {self.host}:{self.port} is not ours to stop or restart")

    def start(self) -> None:
        self._control()
        assert MOSQUITTO, "mosquitto is not installed (make test installs it)"
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        # Started as root, mosquitto switches to the `mosquitto` user, which cannot enter pytest's 0700 folders:
        # it would log an error and run without persistence. The test broker stays root.
        stay = "user root\n" if os.geteuid() == 0 else ""
        self.conf.write_text(
            stay + f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.workdir / 'data'}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 100000\n"
            "set_tcp_nodelay true\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n" + self.extra_config
        )
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.log = LogWatcher(self.proc.stderr)
        # "Opening ... socket" comes before listen(); "running" after it.
        self.log.wait_for(
            " running", timeout=15, start=self.log.wait_for(f"listen socket on port {self.port}", timeout=15)
        )

    def stop(self) -> None:
        """Graceful stop: mosquitto saves its persistence file."""
        self._control()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=15)
        if self.log:
            self.log.join()
            assert not any("Error saving" in line for line in self.log.lines), "the broker could not persist:\n" + (
                self.log.tail()
            )

    def kill(self) -> None:
        self._control()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=15)
        if self.log:
            self.log.join()

    def restart(self) -> None:
        self.stop()
        self.start()


def docker_engine_available() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    probe = subprocess.run([docker, "info"], capture_output=True, timeout=20, check=False)
    return probe.returncode == 0


def broker_for_tests(workdir: Path) -> Iterator[Broker]:
    """Our own mosquitto when installed; else MQTT_TEST_URL (mqtt://host:port); else a testcontainer."""
    url = os.environ.get("MQTT_TEST_URL")
    if url:
        parsed = urlparse(url)
        yield Broker(workdir, port=parsed.port or 1883, host=parsed.hostname or "127.0.0.1", external=True)
        return
    if MOSQUITTO is not None:
        broker = Broker(workdir)
        broker.start()
        try:
            yield broker
        finally:
            broker.kill()
        return
    if not docker_engine_available():
        pytest.fail("no broker: install mosquitto (make test does), set MQTT_TEST_URL, or run a Docker engine")
    from testcontainers.mqtt import MosquittoContainer

    with MosquittoContainer() as container:
        yield Broker(
            workdir,
            port=int(container.get_exposed_port(container.MQTT_PORT)),
            host=container.get_container_host_ip(),
            external=True,
        )


class Service:
    """`python -m clipbridge run` with a given environment; stdout/stderr watched for readiness."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = env
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: LogWatcher | None = None
        self.http_port = int(env["CLIPBRIDGE__HTTP__PORT"])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, *, wait_mqtt: bool = True, wait_index: bool = True) -> None:
        env = {**os.environ, **self.env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "clipbridge", "run"],
            cwd=self.workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.log = LogWatcher(self.proc.stderr)
        self.log.wait_for("clipbridge running", timeout=60)  # the HTTP socket is listening by then
        if wait_mqtt:
            self.log.wait_for("MQTT subscribed", timeout=30)  # before SUBACK an event would find no subscriber
        if wait_index:
            # The start-up walk runs beside intake: until it is done an unknown camera's event waits for it (and
            # then fails) instead of being rejected at once. Tests start from the settled state.
            self.log.wait_for("recordings index:", timeout=60)

    def stop(self) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        if self.log:
            self.log.join()
        return self.proc.returncode if self.proc else 0

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=15)
        if self.log:
            self.log.join()

    def dump_log(self) -> None:
        """Write the service's log tail to stdout: pytest shows it for a failed test only."""
        if self.log:
            sys.stdout.write(f"--- clipbridge log (port {self.http_port}) ---\n{self.log.tail(80)}\n")


class TestClient:
    """A paho client for tests: subscribes, publishes, and collects messages to wait on."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        port: int,
        *,
        v5: bool = True,
        client_id: str | None = None,
        persistent: bool = False,
        subscribe: list[str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._subscribed = threading.Event()
        self._connected = threading.Event()
        self._topics = subscribe or []
        self.v5 = v5
        cid = client_id or f"test-{uuid.uuid4().hex[:8]}"
        if v5:
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
        else:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv311, clean_session=not persistent
            )
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_disconnect = lambda *a: self._connected.clear()
        self.client.reconnect_delay_set(1, 2)
        props = None
        kwargs: dict[str, Any] = {}
        if v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600 if persistent else 0
            kwargs = {"clean_start": not persistent, "properties": props}
        self.client.connect(host, port, 30, **kwargs)
        self.client.loop_start()
        assert self._connected.wait(15), "test client could not connect"
        if self._topics:
            assert self._subscribed.wait(15), "test client could not subscribe"

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: Any, rc: Any, props: Any) -> None:
        if self._topics:
            client.subscribe([(t, 1) for t in self._topics])
        self._connected.set()

    def wait_connected(self, timeout: float = 30.0) -> None:
        """After the broker restarted: paho reconnects by itself; wait until it has."""
        assert self._connected.wait(timeout), f"test client not reconnected within {timeout} s"

    def publish(
        self,
        topic: str,
        payload: bytes | str | dict[str, Any],
        *,
        response_topic: str | None = None,
        correlation: bytes | None = None,
        qos: int = 1,
    ) -> None:
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        props = None
        if self.v5 and (response_topic or correlation):
            props = Properties(PacketTypes.PUBLISH)
            if response_topic:
                props.ResponseTopic = response_topic
            if correlation:
                props.CorrelationData = correlation
        info = self.client.publish(topic, payload, qos=qos, properties=props)
        info.wait_for_publish(timeout=15)
        assert info.is_published()

    def expect(
        self, timeout: float = 30.0, where: Callable[[mqtt.MQTTMessage], bool] | None = None
    ) -> mqtt.MQTTMessage:
        """The next message (matching `where`), or AssertionError after `timeout` seconds."""
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            while not deadline.is_set():
                try:
                    msg = self.messages.get(timeout=0.2)
                except queue.Empty:
                    continue
                if where is None or where(msg):
                    return msg
        finally:
            timer.cancel()
        raise AssertionError(f"no message within {timeout} s")

    def expect_json(
        self, timeout: float = 30.0, where: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, Any]:
        msg = self.expect(timeout, (lambda m: where(json.loads(m.payload))) if where else None)
        return json.loads(msg.payload)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def correlation_of(msg: mqtt.MQTTMessage) -> bytes | None:
    props = getattr(msg, "properties", None)
    return getattr(props, "CorrelationData", None)


def poll(fn: Callable[[], Any], *, timeout: float, interval: float = 0.1) -> Any:
    """Call `fn` until it returns something truthy, as a REST client polling for a result does."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value {value!r})")
        time.sleep(interval)  # sleep-ok: the polling interval of a REST client, bounded by a deadline
