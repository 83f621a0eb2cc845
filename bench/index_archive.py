"""Section 6, the recordings index at archive scale (#11).

- cold walks of 1M empty files (seed layout, 200 camera folders; Frigate's hourly folders), each in a fresh process
  against the `os.scandir` + `stat` floor of the same tree, measured in the same run (dentry cache warm for both);
- 10M segments built from names in memory (no files): RSS per segment and `candidates()` lookups;
- the steady state of `clipbridge run` over 1M indexed segments while 200 cameras each add a segment every 5 s and
  lose their oldest: the service's CPU over 60 s, then live incidents on a real camera, with events and with polling.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import REPO, SEGMENT_SECONDS, T0, Client, Footage, Sizes, _pct, cpu_seconds, http_json, vmrss_kb
from bench.common import start_service as start_bench_service
from bench.live import section_live
from clipbridge.config import RecordingsConfig, SourceConfig
from clipbridge.handlers.index import RecordingsIndex
from clipbridge.handlers.index.camera import CameraSegments
from tests.harness import Broker, Service, poll

SEED = "{camera_id}/{camera_id}_%Y%m%d_%H%M%S"
FRIGATE = "%Y-%m-%d/%H/{camera_id}/%M.%S"
CAMERAS = 200
TARGET_WALK_S = 3.0
TARGET_WALK_VS_FLOOR = 1.5
TARGET_BYTES_PER_SEGMENT = 48
TARGET_LOOKUP_P95_US = 20.0
TARGET_CPU_SHARE = 0.05
TARGET_LIVE_S = 1.0


def _name(layout: str, camera: str, t: int) -> str:
    g = time.gmtime(t)
    if layout == SEED:
        return f"{camera}/{camera}_{time.strftime('%Y%m%d_%H%M%S', g)}.mp4"
    return f"{time.strftime('%Y-%m-%d/%H', g)}/{camera}/{time.strftime('%M.%S', g)}.mp4"


def create_tree(root: Path, layout: str, per_camera: int) -> float:
    """Empty segment files (mknod: one syscall each), 5 s apart; returns seconds taken."""
    started = time.perf_counter()
    t0 = int(T0.timestamp())
    made: set[str] = set()
    for c in range(CAMERAS):
        camera = f"idx{c:03d}"
        for j in range(per_camera):
            path = f"{root}/{_name(layout, camera, t0 + SEGMENT_SECONDS * j)}"
            folder = path.rpartition("/")[0]
            if folder not in made:
                os.makedirs(folder, exist_ok=True)
                made.add(folder)
            os.mknod(path)
    return time.perf_counter() - started


# -- children: each measurement in a fresh process ------------------------------------------------------------------


def child_floor(root: str) -> dict[str, Any]:
    """The floor: list every folder with os.scandir, then again with a stat per entry."""
    out: dict[str, Any] = {}
    for label, stat in (("list_s", False), ("scandir_stat_s", True)):
        started = time.perf_counter()
        stack, files = [root], 0
        while stack:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    if entry.is_dir():
                        stack.append(entry.path)
                    else:
                        files += 1
                        if stat:
                            entry.stat()
        out[label] = round(time.perf_counter() - started, 3)
        out["files"] = files
    return out


def child_walk(root: str, layout: str) -> dict[str, Any]:
    config = RecordingsConfig(sources=[SourceConfig(root=Path(root), layout=layout)])
    before = vmrss_kb()
    index = RecordingsIndex(config=config)
    started = time.perf_counter()
    count = index.scan()
    took = time.perf_counter() - started
    after = vmrss_kb()
    return {"segments": count, "walk_s": round(took, 3), "rss_delta_mb": round((after - before) / 1024, 1),
            "bytes_per_segment": round((after - before) * 1024 / max(1, count), 1)}  # fmt: skip


def child_memory(segments: int, lookups: int) -> dict[str, Any]:
    """Segments built from names in memory (parsed as a walk would), then random 20 s windows looked up."""
    config = RecordingsConfig(sources=[SourceConfig(root=Path("/nonexistent"), layout=SEED)])
    index = RecordingsIndex(config=config)
    codec = index._sources[0].codec  # the bench fills the index without files: names go through the same parser
    per_camera = segments // CAMERAS
    t0 = int(T0.timestamp())
    before = vmrss_kb()
    started = time.perf_counter()
    cameras: dict[str, CameraSegments] = {}
    for c in range(CAMERAS):
        camera = f"idx{c:03d}"
        cam = cameras[camera] = CameraSegments(0, ".mp4")
        for j in range(per_camera):
            relpath = _name(SEED, camera, t0 + SEGMENT_SECONDS * j)
            parsed = codec.parse(relpath)
            assert parsed is not None
            _, start_us, exact = parsed
            cam.append(start_us, 0, relpath, cam.is_plain(0, relpath, exact))
        cam.finish()
    built = time.perf_counter() - started
    index._cameras = cameras
    after = vmrss_kb()
    rng = random.Random(7)
    names = sorted(cameras)
    times, hits = [], 0
    for _ in range(lookups):
        start = T0 + timedelta(seconds=rng.random() * SEGMENT_SECONDS * per_camera)
        camera = rng.choice(names)
        t = time.perf_counter_ns()
        found = index.candidates(camera, start, start + timedelta(seconds=20))
        times.append(time.perf_counter_ns() - t)
        hits += len(found)
    times.sort()
    count = per_camera * CAMERAS
    return {"segments": count, "build_s": round(built, 1), "rss_delta_mb": round((after - before) / 1024, 1),
            "bytes_per_segment": round((after - before) * 1024 / count, 1), "lookups": lookups,
            "segments_per_lookup": round(hits / lookups, 2),
            "lookup_median_us": round(statistics.median(times) / 1000, 2),
            "lookup_p95_us": round(_pct(times, 95) / 1000, 2)}  # fmt: skip


def _child(*args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "bench.index_archive", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=1800, check=True)  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the steady state -------------------------------------------------------------------------------------------------


class Churn(threading.Thread):
    """200 cameras, each adding a segment every 5 s and deleting its oldest, spread evenly over the 5 s."""

    def __init__(self, root: Path, starts: dict[str, deque[int]]) -> None:
        super().__init__(name="churn", daemon=True)
        self.root = root
        self.starts = starts  # camera -> the starts on disk, oldest first (shared by the runs over one tree)
        self.stop_event = threading.Event()
        self.changes = 0

    def run(self) -> None:
        step = SEGMENT_SECONDS / CAMERAS
        due = time.monotonic()
        while not self.stop_event.is_set():
            for camera, starts in self.starts.items():
                due += step
                if self.stop_event.wait(max(0.0, due - time.monotonic())):  # sleep-ok: the recorders' pacing
                    return
                starts.append(starts[-1] + SEGMENT_SECONDS)
                os.mknod(f"{self.root}/{_name(SEED, camera, starts[-1])}")
                os.unlink(f"{self.root}/{_name(SEED, camera, starts.popleft())}")
                self.changes += 2


def steady_state(base: Path, broker: Broker, fx: Footage, tree: Path, starts: dict[str, deque[int]], watch: str,
                 sizes: Sizes) -> dict[str, Any]:  # fmt: skip
    sources = [{"root": str(tree), "layout": SEED, "timezone": "UTC"},
               {"root": str(fx.live_root), "layout": SEED, "timezone": "UTC"}]  # fmt: skip
    service: Service | None = None
    client: Client | None = None
    churn = Churn(tree, starts)
    try:
        started = time.monotonic()
        service = start_bench_service(base, broker, fx, f"steady-{watch}", recordings__sources=sources,
                                      recordings__watch=watch)  # fmt: skip
        up = time.monotonic() - started
        health = http_json(f"{service.base_url}/health")["components"]["index"]
        poll(lambda: http_json(f"{service.base_url}/health")["components"]["index"]["state"] == "ready",
             timeout=600, interval=0.2)  # fmt: skip
        walk = http_json(f"{service.base_url}/health")["components"]["index"]
        churn.start()
        time.sleep(5)  # sleep-ok: the churn reaches its pace before the CPU is measured
        assert service.proc is not None
        cpu0, wall0 = cpu_seconds(service.proc.pid)[0], time.monotonic()
        time.sleep(sizes.steady_seconds)  # sleep-ok: the measurement window
        cpu1, wall1 = cpu_seconds(service.proc.pid)[0], time.monotonic()
        share = (cpu1 - cpu0) / (wall1 - wall0)
        client = Client(broker.port, ["bench/r/#"])
        live = section_live(service, client, fx, base, dataclasses.replace(sizes, live=min(sizes.live, 8)))
        counts = http_json(f"{service.base_url}/health")["components"]["index"]
        text = httpx.get(f"{service.base_url}/metrics", timeout=30).text
        metrics = {k: float(v) for k, v in (line.split() for line in text.splitlines()
                                            if line.startswith("recordings_") and "{" not in line)}  # fmt: skip
    finally:
        churn.stop_event.set()
        churn.join(timeout=30)
        if client is not None:
            client.close()
        if service is not None:
            service.stop()
    p95 = live["latency_from_last_segment_complete"]["p95_ms"] / 1000
    return {"watch": watch, "started_s": round(up, 2), "health_at_start": health, "walk": walk,
            "cpu_seconds": round(cpu1 - cpu0, 2), "window_s": round(wall1 - wall0, 1),
            "cpu_share_of_one_core": round(share, 4), "files_changed": churn.changes, "index_after": counts,
            "metrics": metrics, "live": live, "live_p95_s": round(p95, 3),
            "met": share <= TARGET_CPU_SHARE and p95 <= TARGET_LIVE_S}  # fmt: skip


def section_archive(base: Path, broker: Broker, fx: Footage, sizes: Sizes) -> dict[str, Any]:
    per_camera = sizes.archive // CAMERAS
    out: dict[str, Any] = {"cameras": CAMERAS, "note": "dentry cache warm (not dropped) for floor and walk alike"}
    trees = {"seed": (base / "archive-seed", SEED), "frigate": (base / "archive-frigate", FRIGATE)}
    try:
        for label, (root, layout) in trees.items():
            created = create_tree(root, layout, per_camera)
            runs = [(_child("floor", str(root)), _child("walk", str(root), layout)) for _ in range(2)]
            floor = min(r[0]["scandir_stat_s"] for r in runs)
            walk = min(r[1]["walk_s"] for r in runs)
            memory = max(r[1]["bytes_per_segment"] for r in runs)
            out[label] = {"files": runs[0][0]["files"], "create_s": round(created, 1), "runs": runs,
                          "floor_scandir_stat_s": floor, "floor_list_s": min(r[0]["list_s"] for r in runs),
                          "walk_s": walk, "walk_vs_floor": round(walk / floor, 2), "bytes_per_segment": memory,
                          "met": walk <= TARGET_WALK_S and walk / floor <= TARGET_WALK_VS_FLOOR
                          and memory <= TARGET_BYTES_PER_SEGMENT}  # fmt: skip
            if label == "frigate":
                shutil.rmtree(root, ignore_errors=True)
        memory = _child("memory", str(sizes.in_memory), str(sizes.lookups * 100))
        memory["met"] = (
            memory["bytes_per_segment"] <= TARGET_BYTES_PER_SEGMENT and memory["lookup_p95_us"] < TARGET_LOOKUP_P95_US
        )
        out["in_memory"] = memory
        t0 = int(T0.timestamp())
        starts = {f"idx{c:03d}": deque(t0 + SEGMENT_SECONDS * j for j in range(per_camera)) for c in range(CAMERAS)}
        for watch in ("events", "poll"):
            out[f"steady_{watch}"] = steady_state(base, broker, fx, trees["seed"][0], starts, watch, sizes)
    finally:
        for root, _ in trees.values():
            shutil.rmtree(root, ignore_errors=True)
    out["targets"] = {"walk_s": TARGET_WALK_S, "walk_vs_floor": TARGET_WALK_VS_FLOOR,
                      "bytes_per_segment": TARGET_BYTES_PER_SEGMENT, "lookup_p95_us": TARGET_LOOKUP_P95_US,
                      "cpu_share": TARGET_CPU_SHARE, "live_s": TARGET_LIVE_S}  # fmt: skip
    return out


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "floor":
        result = child_floor(rest[0])
    elif mode == "walk":
        result = child_walk(rest[0], rest[1])
    else:
        result = child_memory(int(rest[0]), int(rest[1]))
    print(json.dumps(result))
