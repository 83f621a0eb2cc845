"""The first-run commands as a user runs them: simulate-camera, publish, demo."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from clipbridge.handlers.layout import Layout
from clipbridge.handlers.probe import probe_file
from tests.conftest import config_env
from tests.harness import LogWatcher, Service, broker_for_tests, free_port

ROOT = Path(__file__).resolve().parent.parent


def _no_ffmpeg_left(marker: str) -> bool:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False).stdout
    return out.strip() == ""


@pytest.mark.parametrize(
    ("layout", "pattern"),
    [("seed", "{camera_id}/{camera_id}_%Y%m%d_%H%M%S"), ("mediamtx", "{camera_id}/%Y-%m-%d_%H-%M-%S-%f")],
)
def test_simulate_camera_writes_real_time_segments_named_like_the_recorder(tmp_path, layout, pattern):
    camera = f"sim-{layout}"
    env = {**os.environ, "CLIPBRIDGE__RECORDINGS__SOURCES": json.dumps([{"root": str(tmp_path / "rec")}])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "clipbridge", "simulate-camera", "--camera", camera, "--segment-seconds", "1",
         "--layout", layout, "--size", "160x120"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log = LogWatcher(proc.stdout)
    try:
        second = log.wait_for("closed ", timeout=60, start=log.wait_for("closed ", timeout=60) + 1)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        log.join()
    names = [line.split()[1] for line in log.lines[: second + 1] if line.startswith("closed ")]
    parsed = [Layout.create(pattern).parse(n) for n in names]
    assert all(p is not None and p[0] == camera for p in parsed), names
    starts = [p[1] for p in parsed if p]
    # Names carry the start to their resolution: microseconds (MediaMTX) or whole seconds (seed), so two
    # segments ~1 s apart are named 1 s +- that resolution apart.
    resolution = 1.0 if layout == "seed" else 0.000001
    assert abs((starts[1] - starts[0]).total_seconds() - 1.0) <= resolution + 0.1
    info = probe_file(tmp_path / "rec" / names[0])
    assert 0.9 < info.duration < 1.2 and info.params.video_codec == "h264"
    assert not (tmp_path / "rec" / f".clipbridge-sim-{camera}").exists()  # the staging folder is cleaned up
    assert _no_ffmpeg_left(f".clipbridge-sim-{camera}")


def test_publish_command_waits_for_and_prints_the_reply(tmp_path, footage):
    for broker in broker_for_tests(tmp_path / "broker"):
        port = free_port()
        env = config_env(tmp_path, footage.sources(), mqtt__port=broker.port, http__port=port,
                         http__public_base_url=f"http://127.0.0.1:{port}")  # fmt: skip
        service = Service(env, tmp_path)
        service.start()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "clipbridge", "publish", "--camera", "camera1", "--timestamp",
                 "2025-08-29T14:30:15", "--duration", "20", "--event-id", "cli-1"],
                cwd=tmp_path, env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
        finally:
            service.kill9()
        assert proc.returncode == 0, proc.stderr
        reply = json.loads(proc.stdout)
        assert (reply["status"], reply["event_id"]) == ("done", "cli-1")
        assert "waiting for the reply on replies/cli/" in proc.stderr


def test_demo_prints_a_done_reply_for_a_live_incident_and_stops_cleanly(tmp_path):
    """`make demo` on a machine with no broker running on the configured port: it starts its own."""
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    (tmp_path / "mosquitto").mkdir()
    shutil.copy(ROOT / "mosquitto" / "dev.conf", tmp_path / "mosquitto" / "dev.conf")
    # A past run's logs (they are appended to): the demo must wait for this run's camera and service.
    (tmp_path / "data" / "demo").mkdir(parents=True)
    (tmp_path / "data" / "demo" / "camera.log").write_text("closed camera1/camera1_20250101_000000.mp4\n")
    (tmp_path / "data" / "demo" / "service.log").write_text("... MQTT subscribed to cameras/+/incidents\n")
    http = free_port()
    env = {
        **os.environ,
        "CLIPBRIDGE__MQTT__PORT": str(free_port()),
        "CLIPBRIDGE__HTTP__PORT": str(http),
        "CLIPBRIDGE__HTTP__PUBLIC_BASE_URL": f"http://127.0.0.1:{http}",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "clipbridge", "--config", str(tmp_path / "config.yaml"), "demo"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    log = LogWatcher(proc.stdout)
    try:
        log.wait_for(f"[done] the page (clips, cameras, this clip playing): http://127.0.0.1:{http}/", timeout=120)
        page = httpx.get(f"http://127.0.0.1:{http}/", timeout=30)
        assert page.status_code == 200 and "/ui/app.js" in page.text
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group, as in a terminal
        code = proc.wait(timeout=60)
        log.join()
    text = "\n".join(log.lines)
    assert code == 0, text
    assert "[1/5] broker: starting" in text and "[4/5] waiting for 15 s of footage" in text
    assert "[done] status done; download: " in text, text
    reply = json.loads(text[text.index("\n{") + 1 : text.index("\n}") + 2])
    assert reply["status"] == "done" and reply["gaps"] == []
    assert reply["metadata"] == {"source": "make demo"}
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["clips"]["pre_seconds"] == 15
    assert _no_ffmpeg_left(str(tmp_path))
    assert _no_ffmpeg_left(f"--config {tmp_path / 'config.yaml'}")
