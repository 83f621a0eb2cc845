"""Several `clipbridge run` instances on one PostgreSQL and one mosquitto, for the scale-out tests: a Cluster of
instances (each its own workdir and HTTP port), recordings of many cameras as hard links, FFmpeg behind a wrapper
that logs each run (the seam that lets a test count cuts, or hang a cut as FFmpeg on a stalled mount does)."""

from __future__ import annotations

import json
import os
import re
import stat
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from clipbridge.handlers.ffmpeg import resolve_ffmpeg
from tests.conftest import SEED_LAYOUT, config_env
from tests.harness import Broker, Service, TestClient, free_port

EVENT_TIME = "2025-08-29T14:30:15"


def counting_ffmpeg(base: Path, *, hang_marker: Path | None = None) -> tuple[Path, Path]:
    """An FFmpeg wrapper logging each run's output file (the clip id is in its name); with `hang_marker`, it touches
    the marker and hangs instead, as FFmpeg on a stalled mount does."""
    runs = base / "ffmpeg-runs.log"
    script = base / ("hanging-ffmpeg" if hang_marker else "counting-ffmpeg")
    body = f'echo "${{@: -1}}" >> "{runs}"\n'
    body += f'touch "{hang_marker}"\nexec sleep 300\n' if hang_marker else f'exec "{resolve_ffmpeg("auto")}" "$@"\n'
    script.write_text("#!/bin/bash\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, runs


def cut_counts(runs: Path) -> Counter[str]:
    """Clip id -> how many FFmpeg runs cut it (from the wrapper's log)."""
    if not runs.exists():
        return Counter()
    return Counter(
        m.group(1) for line in runs.read_text().splitlines() if (m := re.search(r"_([0-9a-f]{16})\.mp4$", line))
    )


def camera_root(base: Path, footage, cameras: list[str]) -> Path:
    """Recordings of several cameras: hard links to camera1's segments under each camera's names."""
    root = base / "recordings"
    for camera in cameras:
        folder = root / camera
        folder.mkdir(parents=True, exist_ok=True)
        for seg in footage.files["camera1"]:
            target = folder / seg.name.replace("camera1", camera)
            if not target.exists():
                os.link(seg, target)
    return root


@dataclass
class Cluster:
    base: Path
    broker: Broker
    pg_url: str
    prefix: str
    started: list[Service]

    def instance(self, name: str, root: Path, *, ffmpeg: Path | None = None, wait_mqtt: bool = True,
                 env_extra: dict[str, str] | None = None, **overrides: object) -> Service:  # fmt: skip
        workdir = self.base / name
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        settings: dict[str, object] = {
            "store__url": self.pg_url,
            "instance__id": name,
            "instance__heartbeat_seconds": 1,
            "instance__lease_seconds": 6,
            "instance__poll_seconds": 0.5,
            "mqtt__port": self.broker.port,
            "mqtt__client_id": f"cb-{self.prefix}",
            "mqtt__request_topics": [f"{self.prefix}/cameras/+/incidents", f"{self.prefix}/clips/requests"],
            "mqtt__result_topic": f"{self.prefix}/results/{{camera_id}}",
            "mqtt__error_topic": f"{self.prefix}/errors",
            "mqtt__reconnect_max_seconds": 2,
            "http__port": port,
            "http__public_base_url": f"http://127.0.0.1:{port}",
            # A given FFmpeg is a fault seam: the clips must take the FFmpeg path to meet it.
            **({"clips__ffmpeg": str(ffmpeg), "clips__cutter": "ffmpeg"} if ffmpeg else {}),
            **overrides,
        }
        env = config_env(workdir, [{"root": str(root), "layout": SEED_LAYOUT, "timezone": "UTC"}], **settings)
        del env["CLIPBRIDGE__STORE__PATH"]
        service = Service({**env, **(env_extra or {})}, workdir)
        self.started.append(service)
        service.start(wait_mqtt=wait_mqtt)
        return service

    def clip_files(self) -> list[Path]:
        return sorted(self.base.glob("*/videos/*.mp4"))


def event(camera: str, event_id: str) -> dict[str, object]:
    return {"camera_id": camera, "event_id": event_id, "timestamp": EVENT_TIME, "pre_seconds": 2, "post_seconds": 2}


def collect(client: TestClient, count: int, timeout: float = 120) -> dict[str, list[dict]]:
    """`count` replies, by topic."""
    got: dict[str, list[dict]] = {}
    for _ in range(count):
        msg = client.expect(timeout=timeout)
        got.setdefault(msg.topic, []).append(json.loads(msg.payload))
    return got
