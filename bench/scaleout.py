"""Section 7, scale-out on PostgreSQL (a throwaway cluster of our own, tests/pgcluster.py): intake on PostgreSQL
beside SQLite's; the burst with 1 instance vs 2 on the same cores; takeover time after `kill -9` of the instance
running a job."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from bench.common import RUN, SEED_EVENT, Client, Footage, Sizes, remove_clip, start_service, stop_service, summary
from bench.intake import section_intake
from tests.harness import Broker, Service, poll
from tests.pgcluster import PgCluster, _bindir

LEASE_SECONDS = 5.0
HEARTBEAT_SECONDS = 1.0
POLL_SECONDS = 2.0  # the default: idle workers look for claimable work this often


def section_scaleout(
    base: Path, broker: Broker, fx: Footage, sizes: Sizes, stamp: str, bare_ms: float, nproc: int
) -> dict[str, Any]:
    bindir = _bindir()
    if bindir is None:
        return {"skipped": "PostgreSQL is not installed (make deps-system installs it when root)"}
    cluster = PgCluster(bindir)
    cluster.init()
    cluster.start()
    try:
        with psycopg.connect(cluster.url()) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        out: dict[str, Any] = {"postgresql": f"PostgreSQL {version[0] if version else '?'}"}
        out["intake"] = section_intake(base, broker, fx, sizes, stamp, store_url=_database(cluster))
        out["burst"] = {str(k): _burst(base, broker, fx, sizes, _database(cluster), k, bare_ms, nproc) for k in (1, 2)}
        out["takeover"] = _takeover(base, broker, fx, _database(cluster), runs=sizes.takeovers)
        return out
    finally:
        cluster.destroy()


def _database(cluster: PgCluster) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return cluster.url(name)


def _instances(base: Path, broker: Broker, fx: Footage, url: str, names: list[str], **extra: object) -> list[Service]:
    return [
        start_service(
            base,
            broker,
            fx,
            name,
            store__url=url,
            instance__id=name,
            instance__heartbeat_seconds=HEARTBEAT_SECONDS,
            instance__lease_seconds=LEASE_SECONDS,
            mqtt__request_topics=["scale/cameras/+/incidents"],
            **extra,
        )
        for name in names
    ]


def _burst(base: Path, broker: Broker, fx: Footage, sizes: Sizes, url: str, k: int, bare_ms: float,
           nproc: int) -> dict[str, Any]:  # fmt: skip
    """The burst of section 4 on PostgreSQL, with k instances (every instance receives every event)."""
    services = _instances(base, broker, fx, url, [f"burst{k}-{i}" for i in range(k)])
    client = Client(broker.port, [f"bench/r/scale{k}"])
    cameras = fx.burst_cameras
    n = len(cameras) * sizes.burst_per_camera
    items = [(cameras[i % len(cameras)], f"s{k}-{i}".encode(), f"{RUN}-scale{k}-{i}") for i in range(n)]

    def clean(reply: Any) -> None:
        for s in services:
            remove_clip(s.workdir / "videos", reply.payload)

    try:
        started = time.monotonic()
        for camera, corr, event_id in items:
            client.publish(f"scale/cameras/{camera}/incidents", {**SEED_EVENT, "event_id": event_id},
                           response_topic=f"bench/r/scale{k}", corr=corr)  # fmt: skip
        arrivals = client.wait({c for _, c, _ in items}, timeout=600, each=clean)
        last = max(a.mono for a in arrivals.values()) - started
    finally:
        client.close()
        for s in services:
            stop_service(s)
    return {
        "instances": k,
        "incidents": n,
        "time_to_last_reply_s": round(last, 2),
        "clips_per_s": round(n / last, 2),
        "vs_ideal": round(last / (n * bare_ms / 1000 / nproc), 2),
        "statuses": sorted({a.payload["status"] for a in arrivals.values()}),
    }


def _takeover(base: Path, broker: Broker, fx: Footage, url: str, runs: int) -> dict[str, Any]:
    """Instance a alone takes the event and its FFmpeg hangs (a wrapper that records its pid and sleeps); b starts;
    a is killed with kill -9; the time from the kill to the reply, finished by b, is the takeover. (b starts just
    before the kill, so its own wait of one lease after connecting overlaps the expiry of a's lease.)"""
    hang = base / "hang-ffmpeg"
    marker = base / "hang-ffmpeg.pid"
    hang.write_text(f'#!/bin/bash\necho $$ > "{marker}"\nexec sleep 600\n')
    hang.chmod(0o755)
    client = Client(broker.port, ["bench/r/takeover"])
    seconds: list[float] = []
    try:
        for r in range(runs):
            marker.unlink(missing_ok=True)
            [a] = _instances(base, broker, fx, url, [f"takeover-a{r}"], clips__ffmpeg=str(hang))
            corr = f"t{r}".encode()
            client.publish("scale/cameras/cam1080/incidents", {**SEED_EVENT, "event_id": f"{RUN}-takeover-{r}"},
                           response_topic="bench/r/takeover", corr=corr)  # fmt: skip
            poll(marker.exists, timeout=60)
            [b] = _instances(base, broker, fx, url, [f"takeover-b{r}"])
            assert a.proc is not None
            a.proc.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            a.proc.wait(timeout=15)
            os.kill(int(marker.read_text()), signal.SIGKILL)  # the orphaned "FFmpeg"
            arrival = client.wait({corr}, timeout=120)[corr]
            assert arrival.payload["status"] == "done", arrival.payload
            seconds.append(arrival.mono - killed)
            remove_clip(b.workdir / "videos", arrival.payload)
            stop_service(a)
            stop_service(b)
    finally:
        client.close()
    return {
        "runs": runs,
        "settings": f"instance.lease_seconds {LEASE_SECONDS:g}, heartbeat_seconds {HEARTBEAT_SECONDS:g},"
        f" poll_seconds {POLL_SECONDS:g} (default)",
        "seconds": summary(seconds),
    }
