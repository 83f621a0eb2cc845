"""Section 2, end-to-end: MQTT v5 publish -> reply with footage on disk, sequential incidents; the store's commit costs."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import (
    CAMERA,
    REPO,
    RESULTS,
    RUN,
    SEED_EVENT,
    TARGET_E2E_CAT_MARGIN_MS,
    TARGET_E2E_MARGIN_MS,
    Client,
    PySpy,
    Sizes,
    histograms,
    mean_ms,
    remove_clip,
    summary,
)
from clipbridge.model import Window
from tests.harness import Service

# -- section 2: end-to-end ----------------------------------------------------------------------------------------


def one_incident(client: Client, output_dir: Path, tag: str, camera: str = CAMERA) -> float:
    corr = f"{tag}".encode()
    started = time.monotonic()
    client.publish(
        f"cameras/{camera}/incidents",
        {**SEED_EVENT, "event_id": f"{RUN}-{tag}"},
        response_topic="bench/r/e2e",
        corr=corr,
    )
    arrival = client.wait({corr}, timeout=120)[corr]
    if arrival.payload.get("status") != "done":
        raise RuntimeError(f"incident {tag}: {arrival.payload}")
    remove_clip(output_dir, arrival.payload)
    return arrival.mono - started


def rejection_rtt(client: Client, runs: int) -> dict[str, float]:
    """Publish -> reply for an event that is rejected at intake (unknown camera): MQTT both ways plus one commit."""
    times = []
    for i in range(runs):
        corr = f"reject-{i}".encode()
        started = time.monotonic()
        client.publish(
            "cameras/nosuchcamera/incidents",
            {**SEED_EVENT, "event_id": f"{RUN}-rej-{i}"},
            response_topic="bench/r/rej",
            corr=corr,
        )
        arrival = client.wait({corr}, timeout=30)[corr]
        if arrival.payload.get("status") != "rejected":
            raise RuntimeError(f"expected a rejection: {arrival.payload}")
        times.append(arrival.mono - started)
    return summary(times)


def e2e_run(service: Service, client: Client, n: int, tag: str) -> dict[str, Any]:
    """n sequential incidents (footage on disk); latency summary plus the service's own view from /metrics."""
    output_dir = service.workdir / "videos"
    before = histograms(service)
    latencies = [one_incident(client, output_dir, f"{tag}-{i}") for i in range(n)]
    after = histograms(service)
    stats = summary(latencies)
    mean = round(statistics.fmean(latencies) * 1000, 2)
    job = mean_ms(before, after, "clip_latency_seconds")
    return {
        "latency": stats,
        "mean_ms": mean,
        "ffmpeg_part_mean_ms": mean_ms(before, after, "clip_ffmpeg_seconds"),
        "job_mean_ms": job,  # intake commit -> job finished (clip_latency_seconds)
        "outside_job_mean_ms": round(mean - job, 2),  # MQTT in and out, intake, outbox
    }


def section_e2e(
    service: Service, client: Client, sizes: Sizes, bare_ms: float, stamp: str, cat_ms: float
) -> dict[str, Any]:
    output_dir = service.workdir / "videos"
    first = one_incident(client, output_dir, "e2e-first")  # the service's first clip: its probe cache is cold
    out = e2e_run(service, client, sizes.e2e, "e2e")
    out["first_incident_cold_probe_ms"] = round(first * 1000, 1)
    out["ffmpeg_part_source"] = "service /metrics: clip_ffmpeg_seconds and clip_latency_seconds, sum/count deltas"
    out["non_ffmpeg_ms_at_p50"] = round(out["latency"]["median_ms"] - out["ffmpeg_part_mean_ms"], 2)
    out["rejection_rtt"] = rejection_rtt(client, sizes.rejections)
    out["target_ms"] = round(bare_ms + TARGET_E2E_MARGIN_MS, 2)
    out["met"] = out["latency"]["median_ms"] <= bare_ms + TARGET_E2E_MARGIN_MS
    out["cat_ms"] = round(cat_ms, 2)
    out["target_cat_ms"] = round(cat_ms + TARGET_E2E_CAT_MARGIN_MS, 2)
    out["met_cat"] = out["latency"]["median_ms"] <= cat_ms + TARGET_E2E_CAT_MARGIN_MS
    if PySpy.available() and sizes.profile_incidents:
        spy = PySpy(service.proc.pid, RESULTS / f"{stamp}-service-e2e.pyspy.txt")  # type: ignore[union-attr]
        try:
            started = time.perf_counter()
            for i in range(sizes.profile_incidents):
                one_incident(client, output_dir, f"e2e-prof-{i}")
            wall = time.perf_counter() - started
        finally:
            spy.stop()
        out["profile"] = {
            "incidents": sizes.profile_incidents,
            "wall_ms_per_incident": round(wall * 1000 / sizes.profile_incidents, 1),
            "file": str(spy.out.relative_to(REPO)),
            "inclusive": spy.inclusive(sizes.profile_incidents),
            "note": "separate pass with py-spy attached (--idle --nonblocking); not part of the latency numbers",
        }
    else:
        out["profile"] = {"skipped": "py-spy is not installed (.venv/bin/pip install py-spy)"}
    return out


def store_costs(base: Path, runs: int = 30) -> dict[str, Any]:
    """What each SQLite transaction of one job costs here (WAL, synchronous=FULL: one fsync per commit)."""
    import asyncio

    from clipbridge.handlers.store import Admission, SqliteStore
    from clipbridge.model import NewJob, ReplyTarget

    async def measure() -> dict[str, list[float]]:
        store = SqliteStore(path=base / "storecost" / "jobs.db")
        await store.open()
        phases: dict[str, list[float]] = {"admit (1 job)": [], "claim": [], "finish": [], "mark_sent": []}
        now = datetime.now(UTC)
        for i in range(runs):
            new = NewJob(f"s{i:015d}", f"k{i}", None, CAMERA, Window(now, now, now), {}, "bench", "pending")
            started = time.perf_counter()
            await store.admit([Admission(new, ReplyTarget("bench/r", b"x"))], [], lambda job, files: b"{}")
            phases["admit (1 job)"].append(time.perf_counter() - started)
            started = time.perf_counter()
            await store.claim("bench", None, 30)
            phases["claim"].append(time.perf_counter() - started)
            started = time.perf_counter()
            await store.finish(new.clip_id, "bench", status="done", record=None, error=None, files=[],
                               reply_payload=b"{}", completed_at=now)  # fmt: skip
            phases["finish"].append(time.perf_counter() - started)
            row = (await store.claim_replies("bench", limit=1))[0]
            started = time.perf_counter()
            await store.mark_sent([row.id])
            phases["mark_sent"].append(time.perf_counter() - started)
        await store.close()
        return phases

    return {name: summary(values) for name, values in asyncio.run(measure()).items()}
