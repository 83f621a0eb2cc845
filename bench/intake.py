"""Section 5, intake: events persisted and acknowledged per second (windows a day ahead: no FFmpeg), vs the broker's
own rate; on SQLite, and on PostgreSQL for the scale-out section."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from bench.common import (
    CAMERA,
    REPO,
    RESULTS,
    RUN,
    TARGET_INTAKE_RATE,
    Client,
    Footage,
    PySpy,
    Sizes,
    http_json,
    start_service,
    stop_service,
)
from tests.harness import Broker, LogWatcher, Service, poll

# -- section 5: intake --------------------------------------------------------------------------------------------


def broker_ceiling(broker: Broker, n: int, payload: bytes) -> dict[str, Any]:
    """The broker's own delivery rate: the same publisher as for the service, and a plain paho subscriber (QoS 1,
    auto-ack, defaults) in a process of its own, as the service is."""
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.run", "--ceiling-child", str(broker.port), str(n)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    log = LogWatcher(child.stdout)
    publisher = Client(broker.port)
    try:
        log.wait_for("subscribed", timeout=30)
        started = time.monotonic()
        for _ in range(n):
            publisher.publish("bench/ceiling", payload)
        data = json.loads(log.lines[log.wait_for("last_monotonic", timeout=120)])
    finally:
        publisher.close()
        child.wait(timeout=30)
        log.join()
    seconds = data["last_monotonic"] - started
    return {"messages": n, "seconds": round(seconds, 3), "per_s": round(n / seconds, 1)}


def ceiling_child(port: int, n: int) -> None:
    """A plain paho v5 subscriber: counts n messages, prints the CLOCK_MONOTONIC time of the last one."""
    from paho.mqtt.enums import CallbackAPIVersion

    subscribed, done = threading.Event(), threading.Event()
    state = {"count": 0, "last": 0.0}

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        state["count"] += 1
        if state["count"] == n:
            state["last"] = time.monotonic()
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"ceiling-{RUN}", protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: c.subscribe("bench/ceiling", qos=1)
    client.on_subscribe = lambda *a: subscribed.set()
    client.connect("127.0.0.1", port, 30)
    client.loop_start()
    if subscribed.wait(15):
        print("subscribed", flush=True)
    done.wait(120)
    print(json.dumps({"last_monotonic": state["last"], "received": state["count"]}), flush=True)
    client.disconnect()
    client.loop_stop()


def section_intake(
    base: Path, broker: Broker, fx: Footage, sizes: Sizes, stamp: str, *, store_url: str | None = None
) -> dict[str, Any]:
    """On the default SQLite store, or with `store_url` on PostgreSQL (one instance)."""
    name = "intake-pg" if store_url else "intake"
    n = sizes.intake
    ahead = time.time() + 86400  # windows a day ahead: every job waits, FFmpeg never runs
    payloads = [
        json.dumps({"timestamp": round(ahead + i * 0.01, 3), "duration": 20, "event_id": f"{RUN}-intake-{i}"}).encode()
        for i in range(n)
    ]
    ceiling = broker_ceiling(broker, n, payloads[0])
    service = start_service(
        base,
        broker,
        fx,
        name,
        mqtt__request_topics=[f"{name}/cameras/+/incidents"],
        **({"store__url": store_url} if store_url else {}),
        clips__max_wait_seconds=3 * 86400,  # the jobs wait for footage a day ahead (clips.max_backlog: default)
    )
    client = Client(broker.port, ["bench/r/intake"])
    out: dict[str, Any] = {"events": n, "broker_ceiling": ceiling}
    try:
        log = service.log
        assert log is not None
        mark = len(log.lines)
        started = time.monotonic()
        for payload in payloads:
            client.publish(f"{name}/cameras/{CAMERA}/incidents", payload)
        published = time.monotonic() - started
        # The sentinel comes after the N events on the same session (in order): its rejection is committed, and
        # the events before it acknowledged, by the time its reply arrives.
        client.publish(
            f"{name}/cameras/nosuchcamera/incidents",
            {"timestamp": ahead, "duration": 20},
            response_topic="bench/r/intake",
            corr=b"sentinel",
        )
        sentinel = client.wait({b"sentinel"}, timeout=300)[b"sentinel"]
        acked = sentinel.mono - started
        total = http_json(f"{service.base_url}/clips?limit=1")["total"]
        if total != n:  # not expected: fall back to polling the count, as a REST client would
            poll(lambda: http_json(f"{service.base_url}/clips?limit=1")["total"] >= n, timeout=120)
            acked = time.monotonic() - started
        # Worker side: every job looked at its footage and went to `waiting` (one commit each).
        index = mark
        for _ in range(n):
            index = log.wait_for("waiting for footage", timeout=300, start=index) + 1
        waiting = time.monotonic() - started
        out.update(
            {
                "publish_seconds": round(published, 3),
                "acked_seconds": round(acked, 3),
                "events_per_s": round(n / acked, 1),
                "sentinel_reply": (sentinel.payload.get("error") or {}).get("code"),
                "all_waiting_seconds": round(waiting, 3),
                "jobs_reached_waiting_per_s": round(n / waiting, 1),
            }
        )
        if PySpy.available() and sizes.intake_profile:  # where the event loop's time goes, beside the figure
            out["profile"] = profile_intake(service, client, sizes.intake_profile, ahead, stamp, name)
    finally:
        client.close()
        stop_service(service)
    jobs, distinct_n = intake_jobs(service.workdir, store_url)
    out["jobs_in_store"] = jobs
    out["lost"] = n - distinct_n
    out["met"] = out.get("events_per_s", 0) >= TARGET_INTAKE_RATE and out["lost"] == 0
    return out


def intake_jobs(workdir: Path, store_url: str | None) -> tuple[int, int]:
    """Jobs of this run's intake events in the store, and how many distinct events they are."""
    sql = "SELECT COUNT(*), COUNT(DISTINCT event_id) FROM jobs WHERE event_id LIKE "
    pattern = f"{RUN}-intake-%"
    if store_url:
        import psycopg

        with psycopg.connect(store_url) as conn:
            row = conn.execute(sql + "%s", (pattern,)).fetchone()
    else:
        db = sqlite3.connect(f"file:{workdir / 'data' / 'clipbridge.db'}?mode=ro", uri=True)
        try:
            row = db.execute(sql + "?", (pattern,)).fetchone()
        finally:
            db.close()
    assert row is not None
    return int(row[0]), int(row[1])


def profile_intake(
    service: Service, client: Client, n: int, ahead: float, stamp: str, name: str = "intake"
) -> dict[str, Any]:
    """A second batch of events with py-spy attached: where the event loop's time goes per event."""
    spy = PySpy(service.proc.pid, RESULTS / f"{stamp}-service-{name}.pyspy.txt")  # type: ignore[union-attr]
    try:
        started = time.monotonic()
        for i in range(n):
            payload = {"timestamp": round(ahead + 3600 + i * 0.01, 3), "duration": 20, "event_id": f"{RUN}-prof-{i}"}
            client.publish(f"{name}/cameras/{CAMERA}/incidents", payload)
        client.publish(
            f"{name}/cameras/nosuchcamera/incidents",
            {"timestamp": ahead, "duration": 20},
            response_topic="bench/r/intake",
            corr=b"sentinel-prof",
        )
        client.wait({b"sentinel-prof"}, timeout=300)
        wall = time.monotonic() - started
    finally:
        spy.stop()
    return {
        "events": n,
        "events_per_s_with_profiler": round(n / wall, 1),
        "file": str(spy.out.relative_to(REPO)),
        "inclusive": spy.inclusive(n),
        "note": "ms per event, all threads, idle included; a second batch with py-spy attached",
    }
