"""Section 6, index scale: cold scan, candidates() lookups and RSS over many empty segment files."""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import REPO, SEGMENT_SECONDS, T0, Sizes, _pct, vmrss_kb
from clipbridge.config import RecordingsConfig, SourceConfig
from clipbridge.handlers.index import RecordingsIndex
from tests.conftest import SEED_LAYOUT

# -- section 6: index scale ---------------------------------------------------------------------------------------


def create_empty(root: Path, cameras: int, first: int, last: int) -> None:
    """Empty segment files `first`..`last`-1 of every camera, 5 s apart (mknod: one syscall each)."""
    t0 = int(T0.timestamp())
    for c in range(cameras):
        camera = f"idx{c:03d}"
        folder = root / camera
        folder.mkdir(parents=True, exist_ok=True)
        prefix = f"{folder}/{camera}_"
        for j in range(first, last):
            os.mknod(prefix + time.strftime("%Y%m%d_%H%M%S", time.gmtime(t0 + SEGMENT_SECONDS * j)) + ".mp4")


def index_child(root: Path, lookups: int) -> None:
    """Run in a fresh process: cold scan, RSS before/after, candidates() timing. Prints one JSON line."""
    config = RecordingsConfig(sources=[SourceConfig(root=root, layout=SEED_LAYOUT)])
    rss_before = vmrss_kb()
    index = RecordingsIndex(config=config)
    started = time.perf_counter()
    count = index.scan()
    scan = time.perf_counter() - started
    rss_after = vmrss_kb()
    rng = random.Random(7)
    cameras = index.cameras()
    spans = {}
    for camera in cameras:
        found = index.summary(camera)
        assert found is not None
        spans[camera] = (found.first_start, (found.newest.start - found.first_start).total_seconds())
    times = []
    hits = 0
    for _ in range(lookups):
        camera = rng.choice(cameras)
        first, span = spans[camera]
        start = first + timedelta(seconds=rng.random() * span)
        t = time.perf_counter_ns()
        found_segments = index.candidates(camera, start, start + timedelta(seconds=20))
        times.append(time.perf_counter_ns() - t)
        hits += len(found_segments)
    times.sort()
    print(
        json.dumps(
            {
                "segments": count,
                "cameras": len(cameras),
                "scan_s": round(scan, 3),
                "lookup_median_us": round(statistics.median(times) / 1000, 2),
                "lookup_p95_us": round(_pct(times, 95) / 1000, 2),
                "lookups": lookups,
                "segments_per_lookup": round(hits / lookups, 2),
                "rss_before_mb": round(rss_before / 1024, 1),
                "rss_after_mb": round(rss_after / 1024, 1),
                "rss_delta_mb": round((rss_after - rss_before) / 1024, 1),
                "bytes_per_segment": round((rss_after - rss_before) * 1024 / max(1, count)),
            }
        )
    )


def section_index(base: Path, sizes: Sizes, deadline: float) -> dict[str, Any]:
    root = base / "index"
    cameras = 200
    done = 0
    rows: list[dict[str, Any]] = []
    rates: tuple[float, float] | None = None  # seconds per file created, per file scanned (first scale)
    try:
        for files in sizes.index_scales:
            per_camera = files // cameras
            more = per_camera * cameras - done
            if rates is not None:
                # create the new files, scan them all, remove them all (about as fast as creating)
                estimate = 1.3 * (2 * more * rates[0] + per_camera * cameras * (rates[1] + rates[0])) + 5
                left = deadline - time.monotonic()
                if estimate > left:
                    rows.append(
                        {
                            "files": files,
                            "skipped": f"creating and scanning {more} more files would take ~{estimate:.0f} s;"
                            f" {max(0.0, left):.0f} s of the time budget were left",
                        }
                    )
                    continue
            started = time.perf_counter()
            create_empty(root, cameras, done // cameras, per_camera)
            created = time.perf_counter() - started
            done = per_camera * cameras
            child = subprocess.run(
                [sys.executable, "-m", "bench.run", "--index-child", str(root), "--lookups", str(sizes.lookups)],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=900,
                check=True,
            )
            data = json.loads(child.stdout.strip().splitlines()[-1])
            rows.append(
                {
                    "files": done,
                    "create_s": round(created, 2),
                    "create_per_s": round(more / created),
                    "created_now": more,
                    **data,
                }
            )
            rates = (created / max(1, more), data["scan_s"] / max(1, done))
    finally:
        started = time.perf_counter()
        shutil.rmtree(root, ignore_errors=True)
        removed = time.perf_counter() - started
    return {
        "cameras": cameras,
        "scales": rows,
        "remove_s": round(removed, 2),
        "note": "dentry cache warm (not dropped)",
    }
