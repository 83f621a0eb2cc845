"""Section 3, live: windows ending in the future while a writer renames 5 s segments into place in real time."""

from __future__ import annotations

import math
import os
import shutil
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    LAYOUT,
    LIVE_CAMERA,
    RUN,
    SEGMENT_SECONDS,
    TARGET_LIVE_P95_MS,
    Client,
    Footage,
    Sizes,
    http_json,
    remove_clip,
    summary,
)
from tests.harness import Service, poll

# -- section 3: live ----------------------------------------------------------------------------------------------


class LiveWriter(threading.Thread):
    """A recorder closing 5 s segments: each is copied to a staging folder ahead of time, then renamed into the
    recordings root (atomic) at the moment its wall-clock end passes, with that moment as its mtime. Segments whose
    end is already past when the writer starts (the history) are placed at once."""

    def __init__(self, sources: list[Path], root: Path, staging: Path, base: int, camera: str) -> None:
        super().__init__(name="live-writer", daemon=True)
        self.sources, self.root, self.staging, self.base = sources, root, staging, base
        self.camera = camera
        self.renamed: dict[int, float] = {}
        self.cond = threading.Condition()
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def start_of(self, k: int) -> int:
        return self.base + SEGMENT_SECONDS * k

    def run(self) -> None:
        try:
            self.staging.mkdir(parents=True, exist_ok=True)
            k = 0
            while not self.stop_event.is_set():
                staged = self.staging / f"seg{k:05d}.mp4"
                shutil.copyfile(self.sources[k % len(self.sources)], staged)
                due = self.start_of(k) + SEGMENT_SECONDS
                delay = due - time.time()
                # A recorder closes a segment when its wall-clock end passes (interruptible by stop_event).
                if delay > 0 and self.stop_event.wait(delay):  # sleep-ok: the real-time writer's pacing
                    staged.unlink()
                    break
                os.utime(staged, (due, due))
                target = self.root / LAYOUT.render(self.camera, datetime.fromtimestamp(self.start_of(k), UTC))
                os.rename(staged, target)
                renamed_at = time.time()
                with self.cond:
                    self.renamed[k] = renamed_at
                    self.cond.notify_all()
                k += 1
        except BaseException as exc:
            with self.cond:
                self.error = exc
                self.cond.notify_all()

    def wait_renamed(self, k: int, timeout: float) -> float:
        with self.cond:
            if not self.cond.wait_for(lambda: k in self.renamed or self.error is not None, timeout=timeout):
                raise TimeoutError(f"segment {k} was not written within {timeout} s")
            if self.error is not None:
                raise RuntimeError("the live writer failed") from self.error
            return self.renamed[k]


def watcher_live(service: Service, fx: Footage, base: Path, camera: str) -> dict[str, Any]:
    """Wait until the service's file watcher sees a segment renamed into the live root (GET /cameras). A file renamed
    in before the watch exists is only found by the periodic rescan (recordings.rescan_seconds, 60 s), so the
    history the writer places at once must not come earlier. Each try renames another segment two hours old (outside
    every window) and waits 2 s for it."""

    def known() -> int:
        cameras = http_json(f"{service.base_url}/cameras")
        return next((c["segments"] for c in cameras if c["camera_id"] == camera), 0)

    before = known()
    started = time.monotonic()
    base_time = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    for attempt in range(1, 31):
        staged = base / f"marker-{camera}-{attempt}.mp4"
        shutil.copyfile(fx.segments[0], staged)
        when = base_time - timedelta(seconds=SEGMENT_SECONDS * attempt)
        os.utime(staged, (when.timestamp() + SEGMENT_SECONDS,) * 2)
        os.rename(staged, fx.live_root / LAYOUT.render(camera, when))
        try:
            poll(lambda: known() > before, timeout=2.0, interval=0.05)
        except AssertionError:
            continue
        return {"attempts": attempt, "seconds": round(time.monotonic() - started, 3)}
    raise RuntimeError(f"the service's watcher did not see a new segment of {camera} within 30 tries")


def section_live(
    service: Service, client: Client, fx: Footage, base: Path, sizes: Sizes, camera: str = LIVE_CAMERA
) -> dict[str, Any]:
    watcher = watcher_live(service, fx, base, camera)
    history = 6  # 30 s of footage exist when the first live incident comes (its window starts 15 s back)
    start = math.floor(time.time()) - SEGMENT_SECONDS * history
    writer = LiveWriter(fx.segments, fx.live_root, base / f"staging-{camera}", start, camera)
    writer.start()
    phis = [0.35, 2.85, 1.6, 4.1, 0.95, 3.45, 2.2, 4.6]  # seconds between detection and the segment close
    per_step = 2
    incidents: list[tuple[bytes, float, float]] = []  # correlation, incident time, publish time
    try:
        for step in range(math.ceil(sizes.live / per_step)):
            closed = writer.wait_renamed(history + step, timeout=SEGMENT_SECONDS * 3)
            for j in range(per_step):
                i = step * per_step + j
                if i >= sizes.live:
                    break
                # Detected phi s ago: the window ends 5 - phi s from now, inside the segment being recorded.
                ts = round(closed - phis[i % len(phis)], 3)
                corr = f"{camera}-{i}".encode()
                client.publish(
                    f"cameras/{camera}/incidents",
                    {"timestamp": ts, "duration": 20, "event_id": f"{RUN}-{camera}-{i}"},
                    response_topic="bench/r/live",
                    corr=corr,
                )
                incidents.append((corr, ts, time.time()))
        arrivals = client.wait({c for c, _, _ in incidents}, timeout=90)
    finally:
        writer.stop_event.set()
        writer.join(timeout=30)
    output_dir = service.workdir / "videos"
    latencies, after_end, statuses, rows = [], [], Counter[str](), []
    for corr, ts, published in incidents:
        arrival = arrivals[corr]
        statuses[arrival.payload["status"]] += 1
        remove_clip(output_dir, arrival.payload)
        end = ts + 5.0  # window end: post_seconds 5
        last = math.ceil(round((end - start) / SEGMENT_SECONDS, 6)) - 1  # the segment holding the window end
        complete_at = writer.renamed[last]
        latencies.append(arrival.wall - complete_at)
        after_end.append(arrival.wall - end)
        rows.append(
            {
                "window_end_after_publish_s": round(end - published, 3),
                "window_end_to_last_segment_complete_s": round(complete_at - end, 3),
                "last_segment_complete_to_reply_ms": round((arrival.wall - complete_at) * 1000, 1),
                "status": arrival.payload["status"],
            }
        )
    stats = summary(latencies)
    return {
        "latency_from_last_segment_complete": stats,
        "latency_from_window_end": summary(after_end),
        "statuses": dict(statuses),
        "incidents": rows,
        "watcher_ready": watcher,
        "target_ms": TARGET_LIVE_P95_MS,
        "met": stats["p95_ms"] <= TARGET_LIVE_P95_MS,
    }
