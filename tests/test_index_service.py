"""The recordings index inside `clipbridge run`: polling instead of events, and intake while the start-up walk runs."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta

import httpx

from clipbridge.handlers.layout import Layout
from clipbridge.synth import record_segments
from tests.conftest import SEED_LAYOUT
from tests.harness import TestClient, poll


def _metric(base_url: str, name: str) -> float:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found, f"{name} is not in /metrics"
    return float(found[1])


def test_with_polling_a_live_incident_is_answered_without_a_full_rescan(start_service, broker, prefix, live_root,
                                                                        ffmpeg):  # fmt: skip
    # This machine's disks deliver file-system events: polling is set explicitly, and the reconcile pushed out
    # of the test's reach, so only the poll can notice the new segments.
    service = start_service(recordings__watch="poll", recordings__reconcile_seconds=3600, mqtt__publish_accepted=True)
    assert service.log is not None
    service.log.wait_for(f"recordings {live_root}: polled every 1 s", timeout=30)
    service.log.wait_for("first reconcile after the walk", timeout=30)  # the next is an hour away
    client = TestClient(broker.port, subscribe=[f"{prefix}/poll"])
    now = datetime.now(UTC).replace(microsecond=0)
    event = {"camera_id": "live1", "timestamp": now.isoformat(), "pre_seconds": 4, "post_seconds": 2}
    client.publish(f"{prefix}/clips/requests", event, response_topic=f"{prefix}/poll")
    accepted = client.expect_json(timeout=30)
    assert accepted["status"] == "waiting"
    service.log.wait_for(f"job {accepted['clip_id']} waiting for footage", timeout=30)
    listed = _metric(service.base_url, "recordings_folders_listed_total")
    record_segments(ffmpeg, root=live_root, layout=Layout.create(SEED_LAYOUT), camera_id="live1",
                    start=now - timedelta(seconds=10), cut_points=[5.0, 10.0, 15.0, 20.0])  # fmt: skip
    done = client.expect_json(timeout=60)
    assert (done["clip_id"], done["status"], done["gaps"]) == (accepted["clip_id"], "done", [])
    assert _metric(service.base_url, "recordings_walks_total") == 1  # the start-up walk only
    assert _metric(service.base_url, "recordings_folders_listed_total") > listed  # the poll listed live1's folder


def test_an_incident_during_the_start_up_walk_waits_for_it_and_completes(start_service, broker, prefix, tmp_path):
    # Fault seam (clipbridge/faults.py hold_point): the first walk is held after listing the tree, before the index
    # is ready, until the test opens a FIFO; it stands in for a walk of a tree too large to finish before the
    # incident arrives. Everything else is real.
    release = tmp_path / "release-walk"
    os.mkfifo(release)
    service = start_service(
        env_extra={"CLIPBRIDGE_TEST_HOLD_AT": "walk_before_ready", "CLIPBRIDGE_TEST_RELEASE": str(release)},
        wait_index=False,
        mqtt__publish_accepted=True,
    )
    health = httpx.get(f"{service.base_url}/health", timeout=10)
    assert health.status_code == 200 and health.json()["components"]["index"]["state"] == "scanning"
    early = httpx.get(f"{service.base_url}/cameras/camera1/timeline", timeout=10)
    assert early.status_code == 503 and early.json()["error"]["code"] == "index_scanning"
    client = TestClient(broker.port, subscribe=[f"{prefix}/during"])
    event = {"camera_id": "camera1", "timestamp": "2025-08-29T14:30:15Z", "pre_seconds": 5, "post_seconds": 5}
    client.publish(f"{prefix}/clips/requests", event, response_topic=f"{prefix}/during")
    accepted = client.expect_json(timeout=30)
    assert accepted["status"] in ("pending", "waiting"), accepted  # not rejected as unknown_camera
    clip = f"{service.base_url}/clips/{accepted['clip_id']}"
    poll(lambda: httpx.get(clip, timeout=10).json()["status"] == "waiting", timeout=30)
    with release.open("wb"):
        pass  # the walk goes on
    done = client.expect_json(timeout=60, where=lambda r: r["status"] not in ("pending", "waiting"))
    assert (done["clip_id"], done["status"]) == (accepted["clip_id"], "done")
    index = httpx.get(f"{service.base_url}/health", timeout=10).json()["components"]["index"]
    assert index["state"] == "ready" and index["segments"] > 0


def test_with_events_a_camera_added_after_start_is_watched_and_answers_live(start_service, broker, prefix, live_root,
                                                                             ffmpeg):  # fmt: skip
    # The watch covers the live end folder by folder: a new camera's folder must join it for its later segments
    # to be seen. The reconcile is pushed out of the test's reach: only events can find them.
    service = start_service(recordings__watch="events", recordings__reconcile_seconds=3600, mqtt__publish_accepted=True)
    assert service.log is not None
    service.log.wait_for("first reconcile after the walk", timeout=30)  # the next is an hour away
    layout = Layout.create(SEED_LAYOUT)
    now = datetime.now(UTC).replace(microsecond=0)
    record_segments(ffmpeg, root=live_root, layout=layout, camera_id="fresh1", start=now - timedelta(seconds=30),
                    cut_points=[5.0])  # fmt: skip
    poll(lambda: any(c["camera_id"] == "fresh1" for c in httpx.get(f"{service.base_url}/cameras", timeout=10).json()),
         timeout=30)  # fmt: skip
    client = TestClient(broker.port, subscribe=[f"{prefix}/fresh"])
    event = {"camera_id": "fresh1", "timestamp": now.isoformat(), "pre_seconds": 4, "post_seconds": 2}
    client.publish(f"{prefix}/clips/requests", event, response_topic=f"{prefix}/fresh")
    accepted = client.expect_json(timeout=30)
    assert accepted["status"] == "waiting"
    record_segments(ffmpeg, root=live_root, layout=layout, camera_id="fresh1", start=now - timedelta(seconds=10),
                    cut_points=[5.0, 10.0, 15.0, 20.0])  # fmt: skip
    done = client.expect_json(timeout=60)
    assert (done["clip_id"], done["status"], done["gaps"]) == (accepted["clip_id"], "done", [])
    assert _metric(service.base_url, "recordings_walks_total") == 1
