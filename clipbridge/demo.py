"""`clipbridge demo` (`make demo`): broker, simulated camera, service, one live incident, its clip. Ctrl-C stops."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clipbridge.config import Config
from clipbridge.errors import ClipError
from clipbridge.handlers.layout import Layout
from clipbridge.publisher import publish_and_wait

CAMERA = "camera1"
PRE, POST = 15, 5


def _say(step: str, text: str) -> None:
    print(f"[{step}] {text}", flush=True)


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _wait(what: str, until: datetime, step: str) -> None:
    """Show progress while a real-time wait runs (the footage is recorded in real time)."""
    while (left := (until - datetime.now(UTC)).total_seconds()) > 0:
        _say(step, f"{what} ... {left:.0f} s")
        time.sleep(min(left, 1.0))


def _since(log: Path, offset: int) -> str:
    """What a log (appended to by every run) got after `offset`: this run's lines only."""
    if not log.exists():
        return ""
    with log.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def _size(log: Path) -> int:
    return log.stat().st_size if log.exists() else 0


def _first_segment_start(log: Path, offset: int, layout: Layout, started: datetime) -> datetime:
    """When the simulator's first closed segment starts, from its name (as clipbridge will read it)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in _since(log, offset).splitlines():
            if line.startswith("closed "):
                parsed = layout.parse(line.split()[1])
                if parsed is not None:
                    return parsed[1]
        _say("4/5", f"waiting for the camera's first segment ... {(datetime.now(UTC) - started).total_seconds():.0f} s")
        time.sleep(1.0)
    raise ClipError("ffmpeg_failed", "the camera simulator wrote no segment within 60 s: see data/demo/camera.log")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(config: Config, config_path: Path) -> int:
    here = config_path.resolve().parent
    children: list[subprocess.Popen[bytes]] = []
    logs = here / "data" / "demo"
    logs.mkdir(parents=True, exist_ok=True)

    def spawn(args: list[str], log: Path, cwd: Path = here) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(args, cwd=cwd, stdout=log.open("ab"), stderr=subprocess.STDOUT)
        children.append(proc)
        return proc

    try:
        mq = config.mqtt
        if _listening(mq.host, mq.port):
            _say("1/5", f"broker: {mq.host}:{mq.port} is listening, using it")
        else:
            mosquitto = shutil.which("mosquitto") or (
                "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
            )
            if mosquitto is None:
                raise ClipError("config_error", "no broker and no mosquitto: sudo apt-get install mosquitto")
            conf = logs / "mosquitto.conf"
            text = (here / "mosquitto" / "dev.conf").read_text().replace("listener 1883", f"listener {mq.port}")
            conf.write_text(text)
            persist = here / "data" / "mosquitto"
            persist.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:  # as root, mosquitto runs as user `mosquitto`: it must own its persistence folder
                with contextlib.suppress(LookupError, PermissionError):
                    shutil.chown(persist, user="mosquitto", group="mosquitto")
            _say("1/5", f"broker: starting {mosquitto} -c {conf.relative_to(here)} (log: data/demo/mosquitto.log)")
            spawn([mosquitto, "-c", str(conf)], logs / "mosquitto.log")
            deadline = time.monotonic() + 10
            while not _listening(mq.host, mq.port):
                if time.monotonic() > deadline or children[-1].poll() is not None:
                    raise ClipError("config_error", "mosquitto did not start: see data/demo/mosquitto.log")
                time.sleep(0.1)

        cli = [sys.executable, "-m", "clipbridge", "--config", str(config_path)]
        source = config.recordings.sources[0]
        _say("2/5", f"camera: simulating {CAMERA}, 5 s segments in real time into {source.root} "
                    "(log: data/demo/camera.log)")  # fmt: skip
        started = datetime.now(UTC)
        camera_from, service_from = _size(logs / "camera.log"), _size(logs / "service.log")  # a past run's lines
        spawn([*cli, "simulate-camera", "--camera", CAMERA], logs / "camera.log")

        _say("3/5", f"service: clipbridge run, HTTP on {config.public_url} (log: data/demo/service.log)")
        service = spawn([*cli, "run"], logs / "service.log")
        service_log = logs / "service.log"
        deadline = time.monotonic() + 60
        while "MQTT subscribed" not in _since(service_log, service_from):
            if service.poll() is not None or time.monotonic() > deadline:
                raise ClipError("config_error", "clipbridge run did not start: see data/demo/service.log")
            time.sleep(0.2)

        layout = Layout.create(source.layout, source.timezone)
        first = _first_segment_start(logs / "camera.log", camera_from, layout, started)
        _wait(f"waiting for {PRE} s of footage before the incident", first + timedelta(seconds=PRE + 1), "4/5")

        now = datetime.now(UTC).replace(microsecond=0)
        topics = mq.native_topics
        topic = next((t for t in topics if "+" in t), topics[0]).replace("+", CAMERA, 1)
        event = {"camera_id": CAMERA, "timestamp": now.isoformat(), "pre_seconds": PRE, "post_seconds": POST,
                 "event_id": f"demo-{uuid.uuid4().hex[:8]}", "metadata": {"source": "make demo"}}  # fmt: skip
        _say("5/5", f"incident: {CAMERA} at {now:%H:%M:%S} UTC, published on {topic}: {json.dumps(event)}")
        window_end = now + timedelta(seconds=POST)

        def progress(elapsed: float) -> None:
            if datetime.now(UTC) < window_end:
                _say("5/5", f"waiting for the footage until {window_end:%H:%M:%S} ... {elapsed:.0f} s")
            else:
                _say("5/5", f"waiting for the segment holding {window_end:%H:%M:%S} to close ... {elapsed:.0f} s")

        reply = publish_and_wait(
            mq, topic=topic, event=event, reply_topic=f"replies/demo/{uuid.uuid4().hex[:8]}", timeout=120,
            progress=progress,
        )  # fmt: skip
        print(json.dumps(reply, indent=2), flush=True)
        url = reply.get("download_url")
        if reply.get("status") not in ("done", "partial") or not url:
            _say("done", f"the clip failed: {reply.get('error')}")
            return 1
        with urllib.request.urlopen(url, timeout=30) as response:
            size = len(response.read())
        _say("done", f"status {reply['status']}; download: {url} ({size} bytes)")
        _say("done", f"clipbridge keeps running: {config.public_url}/docs, /clips, /metrics. Ctrl-C stops.")
        _say("done", f"the page (clips, cameras, this clip playing): {config.public_url}/")
        signal.signal(signal.SIGTERM, _interrupt)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in reversed(children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(children):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
