"""Section 4, burst: incidents over many cameras published at once."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from bench.common import (
    RUN,
    SEED_EVENT,
    TARGET_BURST_VS_IDEAL,
    Client,
    Footage,
    Sizes,
    cpu_seconds,
    histograms,
    mean_ms,
    remove_clip,
)
from tests.harness import Service

# -- section 4: burst ---------------------------------------------------------------------------------------------


def section_burst(
    service: Service, client: Client, fx: Footage, sizes: Sizes, bare_ms: float, nproc: int
) -> dict[str, Any]:
    output_dir = service.workdir / "videos"
    cameras = fx.burst_cameras
    n = len(cameras) * sizes.burst_per_camera
    items = [(cameras[i % len(cameras)], f"burst-{i}".encode(), f"{RUN}-burst-{i}") for i in range(n)]
    pid = service.proc.pid  # type: ignore[union-attr]
    before = histograms(service)
    own0, children0 = cpu_seconds(pid)
    started = time.monotonic()
    for camera, corr, event_id in items:
        client.publish(
            f"cameras/{camera}/incidents",
            {**SEED_EVENT, "event_id": event_id},
            response_topic="bench/r/burst",
            corr=corr,
        )
    published = time.monotonic() - started
    arrivals = client.wait({c for _, c, _ in items}, timeout=600, each=lambda a: remove_clip(output_dir, a.payload))
    last = max(a.mono for a in arrivals.values()) - started
    own1, children1 = cpu_seconds(pid)
    after = histograms(service)
    statuses = Counter(a.payload["status"] for a in arrivals.values())
    ideal = n * bare_ms / 1000 / nproc
    return {
        "incidents": n,
        "cameras": len(cameras),
        "footage": "1080p 16 Mb/s, hard links to the same six segment files per camera",
        "publish_seconds": round(published, 3),
        "time_to_last_reply_s": round(last, 2),
        "clips_per_s": round(n / last, 2),
        "statuses": dict(statuses),
        "service_cpu_s": round(own1 - own0, 2),
        "service_cpu_ms_per_clip": round((own1 - own0) * 1000 / n, 1),
        "ffmpeg_children_cpu_s": round(children1 - children0, 2),
        "service_cpu_share_of_machine": round((own1 - own0) / (last * nproc), 3),
        "all_cpu_share_of_machine": round((own1 - own0 + children1 - children0) / (last * nproc), 3),
        "ideal_s": round(ideal, 2),
        "ideal_note": f"{n} x bare FFmpeg median {bare_ms:.1f} ms / {nproc} cores",
        "vs_ideal": round(last / ideal, 2),
        "met": last / ideal <= TARGET_BURST_VS_IDEAL,
        "ffmpeg_wall_mean_ms": mean_ms(before, after, "clip_ffmpeg_seconds"),
        "job_latency_mean_ms": mean_ms(before, after, "clip_latency_seconds"),
    }
