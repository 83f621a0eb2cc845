"""A bounded soak: live footage from simulated cameras, incidents at a steady rate, resources watched.

SOAK_SECONDS sets the length (30 in `make test`, 300 in `make soak`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.conftest import SEED_LAYOUT
from tests.harness import LogWatcher, TestClient

SECONDS = float(os.environ.get("SOAK_SECONDS", "30"))
CAMERAS = ("soak1", "soak2", "soak3")
RATE = 2.0  # incidents per second


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_soak_steady_live_incidents_exactly_one_clip_each_and_flat_resources(start_service, broker, prefix, tmp_path):
    root = tmp_path / "soak"
    env = {**os.environ, "CLIPBRIDGE__RECORDINGS__SOURCES": json.dumps([{"root": str(root), "layout": SEED_LAYOUT}])}
    cameras = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "clipbridge",
                "simulate-camera",
                "--camera",
                cam,
                "--segment-seconds",
                "2",
                "--size",
                "160x120",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for cam in CAMERAS
    ]
    logs = [LogWatcher(c.stdout) for c in cameras]
    try:
        for log in logs:
            log.wait_for("closed ", timeout=60)
        service = start_service(
            recordings__sources=[{"root": str(root), "layout": SEED_LAYOUT}], clips__max_wait_seconds=30
        )
        assert service.proc is not None
        pid = service.proc.pid
        client = TestClient(broker.port, subscribe=[f"{prefix}/soak/#"])
        samples: list[tuple[float, int, int, int]] = []  # (elapsed, rss kB, open fds, queue depth)
        sent = 0
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < SECONDS:
            now = datetime.now(UTC)
            event = {
                "camera_id": CAMERAS[sent % len(CAMERAS)],
                "timestamp": (now - timedelta(seconds=1)).isoformat(),
                "pre_seconds": 2,
                "post_seconds": 1,
                "event_id": f"soak-{sent}",
            }
            client.publish(f"{prefix}/clips/requests", event, response_topic=f"{prefix}/soak/{sent}")
            sent += 1
            if sent % int(RATE * 5) == 0:
                depth = httpx.get(f"{service.base_url}/health", timeout=10).json()["components"]["queue"]["depth"]
                samples.append((elapsed, _rss_kb(pid), len(os.listdir(f"/proc/{pid}/fd")), depth))
            time.sleep(max(0.0, sent / RATE - (time.monotonic() - started)))  # sleep-ok: pacing the publish rate
        replies: dict[str, dict] = {}
        for _ in range(sent):
            msg = client.expect(timeout=90)
            replies[msg.topic] = json.loads(msg.payload)
        final = (SECONDS, _rss_kb(pid), len(os.listdir(f"/proc/{pid}/fd")), 0)
        assert service.stop() == 0
    finally:
        for cam in cameras:
            cam.terminate()
        for cam, log in zip(cameras, logs, strict=True):
            cam.wait(timeout=30)
            log.join()

    assert len(replies) == sent, "every incident answered"
    statuses = [r["status"] for r in replies.values()]
    assert set(statuses) <= {"done", "partial"}, statuses
    assert statuses.count("done") >= sent * 0.9, statuses  # partial only at a camera's very first seconds
    clip_ids = {r["clip_id"] for r in replies.values()}
    assert len(clip_ids) == sent, "exactly one clip per incident"
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == sent
    # Resources: compare the second half of the run with its first quarter (after warm-up).
    warm = [s for s in samples if s[0] >= SECONDS / 4] or samples
    base_rss, base_fds = warm[0][1], warm[0][2]
    assert final[1] - base_rss < 40_000, f"RSS grew from {base_rss} kB to {final[1]} kB: {samples}"
    assert final[2] - base_fds < 15, f"open files grew from {base_fds} to {final[2]}: {samples}"
    assert max(s[3] for s in samples) <= RATE * 15, f"the queue kept growing: {samples}"
