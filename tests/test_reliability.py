"""Faults survived with nothing lost: the real `clipbridge run` process, a real mosquitto, real FFmpeg and files.

Where a fault cannot be produced from outside, it is injected at one seam: CLIPBRIDGE_TEST_PAUSE_AT freezes the
service at a named point (clipbridge/faults.py) so that kill -9 lands exactly there; FFmpeg faults come from a
wrapper script given as clips.ffmpeg (a real process that hangs, or deletes a segment, then runs the real FFmpeg).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import httpx
import pytest

from clipbridge.handlers.ffmpeg import resolve_ffmpeg
from tests.harness import Broker, Service, TestClient, poll

SEED_EVENT = {"camera_id": "camera1", "timestamp": "2025-08-29T14:30:15", "duration": 20}


def wrapper(tmp_path: Path, name: str, body: str) -> Path:
    """An executable standing in for FFmpeg; REAL runs the bundled one."""
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\nREAL='{resolve_ffmpeg('auto')}'\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def replies_until_sentinel(client: TestClient, topic: str) -> list[dict]:
    """With the service stopped, everything it published was delivered before a message we publish now."""
    client.publish(topic, b"sentinel")
    seen = []
    while (msg := client.expect(timeout=30)).payload != b"sentinel":
        seen.append(json.loads(msg.payload))
    return seen


def clip_files(tmp_path: Path) -> tuple[list[Path], list[Path]]:
    videos = tmp_path / "videos"
    tmp = videos / ".tmp"
    return sorted(videos.glob("*.mp4")), sorted(tmp.iterdir()) if tmp.is_dir() else []


@pytest.mark.parametrize("point", ["intake_before_commit", "intake_before_ack", "outbox_before_publish"])
def test_kill_9_at_each_phase_gives_exactly_one_clip_and_one_reply(start_service, broker, prefix, tmp_path, point):
    service = start_service(env_extra={"CLIPBRIDGE_TEST_PAUSE_AT": point})
    client = TestClient(broker.port, subscribe=[f"{prefix}/k/#"])
    topic = f"{prefix}/k/{point}"
    event = {**SEED_EVENT, "event_id": f"k-{point}"}
    client.publish(f"{prefix}/cameras/camera1/incidents", event, response_topic=topic, correlation=b"c")
    assert service.log is not None
    service.log.wait_for(f"frozen at {point}", timeout=60)
    service.kill9()
    del service.env["CLIPBRIDGE_TEST_PAUSE_AT"]
    service.start()
    msg = client.expect(timeout=60)
    reply = json.loads(msg.payload)
    assert (reply["status"], msg.properties.CorrelationData) == ("done", b"c")
    assert httpx.get(f"{service.base_url}/clips", timeout=10).json()["total"] == 1
    assert service.stop() == 0
    assert replies_until_sentinel(client, topic) == []  # no second reply
    clips, temps = clip_files(tmp_path)
    assert len(clips) == 1 and temps == []


def test_kill_9_during_ffmpeg_resumes_cleans_temp_files_and_never_serves_a_half_clip(
    start_service, broker, prefix, tmp_path
):
    marker = tmp_path / "ffmpeg-reached-the-end"
    # Real FFmpeg writes the temporary clip, then the process hangs before it exits: the service is mid-clip.
    hang = wrapper(tmp_path, "ffmpeg-then-hang", f'"$REAL" "$@"\ntouch "{marker}"\nexec sleep 300')
    service = start_service(clips__cutter="ffmpeg", clips__ffmpeg=str(hang))  # the FFmpeg path is under test
    client = TestClient(broker.port, subscribe=[f"{prefix}/f/#"])
    client.publish(f"{prefix}/cameras/camera1/incidents", {**SEED_EVENT, "event_id": "mid-ffmpeg"},
                   response_topic=f"{prefix}/f/1")  # fmt: skip
    poll(marker.exists, timeout=60)
    clips, temps = clip_files(tmp_path)
    half = [t for t in temps if t.suffix == ".mp4"]
    assert clips == [] and len(half) == 1  # FFmpeg's output, not yet renamed into place
    assert httpx.get(f"{service.base_url}/videos/{half[0].name}", timeout=10).status_code == 404
    service.kill9()
    subprocess.run(["pkill", "-f", "exec sleep 300|sleep 300"], check=False)
    del service.env["CLIPBRIDGE__CLIPS__FFMPEG"]
    service.start()
    reply = client.expect_json(timeout=60)
    assert reply["status"] == "done"
    assert service.stop() == 0
    assert replies_until_sentinel(client, f"{prefix}/f/1") == []
    clips, temps = clip_files(tmp_path)
    assert [c.name for c in clips] == [reply["video_file"]] and temps == []


def test_service_started_while_the_broker_is_down_connects_and_drains_its_queue(start_service, broker, prefix):
    service = start_service()
    assert service.stop() == 0  # the broker now holds the session
    client = TestClient(broker.port, persistent=True, client_id=f"sub-{prefix}", subscribe=[f"{prefix}/d/#"])
    for i in range(3):
        client.publish(f"{prefix}/cameras/camera1/incidents", {**SEED_EVENT, "event_id": f"d{i}"},
                       response_topic=f"{prefix}/d/{i}")  # fmt: skip
    broker.stop()
    service.start(wait_mqtt=False)
    assert service.log is not None
    service.log.wait_for("MQTT connection to", timeout=30)  # a failed attempt: the broker is down
    down = httpx.get(f"{service.base_url}/health", timeout=10)
    assert down.status_code == 503 and down.json()["components"]["mqtt"]["ok"] is False
    broker.start()
    service.log.wait_for("MQTT subscribed", timeout=60)
    replies = {client.expect(timeout=60).topic for _ in range(3)}
    assert replies == {f"{prefix}/d/{i}" for i in range(3)}
    assert httpx.get(f"{service.base_url}/health", timeout=10).status_code == 200


def test_hanging_ffmpeg_is_killed_and_the_worker_goes_on(start_service, broker, prefix, tmp_path):
    # Clips of camera gop2 make this FFmpeg hang (as on a stalled network mount); others run the real one.
    hang = wrapper(
        tmp_path, "ffmpeg-hangs-on-gop2",
        'for a in "$@"; do case "$a" in *.ffconcat) grep -q gop2 "$a" && exec sleep 300;; esac; done\nexec "$REAL" "$@"',
    )  # fmt: skip
    service = start_service(clips__cutter="ffmpeg", clips__ffmpeg=str(hang), clips__ffmpeg_timeout_seconds=1, clips__ffmpeg_retries=1,
                            clips__workers=1)  # fmt: skip
    client = TestClient(broker.port, subscribe=[f"{prefix}/h/#"])
    client.publish(f"{prefix}/clips/requests", {**SEED_EVENT, "camera_id": "gop2"}, response_topic=f"{prefix}/h/hang")
    client.publish(f"{prefix}/clips/requests", SEED_EVENT, response_topic=f"{prefix}/h/ok")
    replies = {}
    for _ in range(2):
        msg = client.expect(timeout=60)
        replies[msg.topic] = json.loads(msg.payload)
    hung, ok = replies[f"{prefix}/h/hang"], replies[f"{prefix}/h/ok"]
    assert (hung["status"], hung["error"]["code"]) == ("failed", "ffmpeg_timeout")
    assert "1 s" in hung["error"]["message"]
    assert ok["status"] == "done"  # the single worker was not lost to the hung FFmpeg
    health = httpx.get(f"{service.base_url}/health", timeout=10).json()
    assert health["components"]["queue"]["depth"] == 0
    leftover = subprocess.run(["pgrep", "-f", "sleep 300"], capture_output=True, text=True, check=False).stdout
    assert leftover.strip() == "", "a killed FFmpeg must not linger"


def test_segment_deleted_by_retention_mid_clip_gives_a_partial_clip(start_service, broker, prefix, tmp_path, footage):
    # Own copy of the footage: this test deletes a segment, as a recorder's retention does.
    root = tmp_path / "own"
    shutil.copytree(footage.seed_root / "camera1", root / "delcam")
    for f in (root / "delcam").iterdir():
        f.rename(f.with_name(f.name.replace("camera1", "delcam")))
    victim = root / "delcam" / "delcam_20250829_143000.mp4"
    # The first FFmpeg run finds its first segment gone (deleted after planning); later runs are the real FFmpeg.
    deleter = wrapper(tmp_path, "ffmpeg-after-retention", f'rm -f "{victim}"\nexec "$REAL" "$@"')
    service = start_service(
        clips__cutter="ffmpeg",
        clips__ffmpeg=str(deleter),
        recordings__sources=[{"root": str(root), "layout": "{camera_id}/{camera_id}_%Y%m%d_%H%M%S"}],
    )
    client = TestClient(broker.port, subscribe=[f"{prefix}/r/#"])
    client.publish(f"{prefix}/clips/requests", {**SEED_EVENT, "camera_id": "delcam"}, response_topic=f"{prefix}/r/1")
    reply = client.expect_json(timeout=60)
    assert reply["status"] == "partial", reply
    assert [(g["start"], g["end"], g["reason"]) for g in reply["gaps"]] == [
        ("2025-08-29T14:30:00.000Z", "2025-08-29T14:30:05.000Z", "missing")
    ]
    assert service.log is not None
    service.log.wait_for("segment_missing", timeout=5)  # the first attempt failed and was retried


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount here ({result.stderr.strip() or 'not root'}): the real disk-full fault needs it")


@pytest.fixture
def tiny_disk(tmp_path: Path):
    where = tmp_path / "tiny"
    where.mkdir()
    _mount("-t", "tmpfs", "-o", "size=512k", "tmpfs", str(where))
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_full_disk_is_a_storage_error_and_the_service_recovers(start_service, broker, prefix, tiny_disk):
    service = start_service(clips__output_dir=str(tiny_disk))
    client = TestClient(broker.port, subscribe=[f"{prefix}/s/#"])
    client.publish(f"{prefix}/clips/requests", {**SEED_EVENT, "event_id": "full"}, response_topic=f"{prefix}/s/1")
    failed = client.expect_json(timeout=60)
    assert (failed["status"], failed["error"]["code"]) == ("failed", "storage_error")
    assert list((tiny_disk / ".tmp").iterdir()) == []  # the partial output was removed
    _mount("-o", "remount,size=64m", str(tiny_disk))  # space returns
    client.publish(f"{prefix}/clips/requests", {**SEED_EVENT, "event_id": "room"}, response_topic=f"{prefix}/s/2")
    assert client.expect_json(timeout=60)["status"] == "done"
    assert service.proc is not None and service.proc.poll() is None


def test_read_only_output_dir_is_a_storage_error_and_health_says_so(start_service, broker, prefix, tmp_path):
    src, ro = tmp_path / "rw", tmp_path / "ro"
    src.mkdir()
    ro.mkdir()
    _mount("--bind", str(src), str(ro))
    try:
        _mount("-o", "remount,ro,bind", str(ro))
        service = start_service(clips__output_dir=str(ro))
        client = TestClient(broker.port, subscribe=[f"{prefix}/ro/#"])
        client.publish(f"{prefix}/clips/requests", SEED_EVENT, response_topic=f"{prefix}/ro/1")
        reply = client.expect_json(timeout=60)
        assert (reply["status"], reply["error"]["code"]) == ("failed", "storage_error")
        assert "read-only" in reply["error"]["message"]
        health = httpx.get(f"{service.base_url}/health", timeout=10)
        assert health.status_code == 503 and health.json()["components"]["output_dir"]["ok"] is False
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)


def test_missing_recordings_root_is_a_clear_error_not_a_crash(start_service, broker, prefix, tmp_path):
    service = start_service(recordings__sources=[{"root": str(tmp_path / "nowhere")}])
    client = TestClient(broker.port, subscribe=[f"{prefix}/m/#"])
    client.publish(f"{prefix}/clips/requests", SEED_EVENT, response_topic=f"{prefix}/m/1")
    reply = client.expect_json(timeout=30)
    assert (reply["status"], reply["error"]["code"]) == ("rejected", "unknown_camera")
    assert httpx.get(f"{service.base_url}/health", timeout=10).status_code == 200
    assert os.path.exists(tmp_path / "nowhere") is False


def test_broker_killed_with_kill_9_while_replies_are_pending(start_service, broker: Broker, prefix, live_root, ffmpeg):
    """A broker crash (not a clean stop) while the service holds finished replies: they are sent after it returns."""
    from datetime import UTC, datetime, timedelta

    from tests.test_mqtt import _live_event, _record_live

    service: Service = start_service()
    client = TestClient(broker.port, persistent=True, client_id=f"sub-{prefix}", subscribe=[f"{prefix}/bk/#"])
    now = datetime.now(UTC).replace(microsecond=0)
    client.publish(f"{prefix}/clips/requests", _live_event(now, event_id="bk"), response_topic=f"{prefix}/bk/1")
    assert service.log is not None
    service.log.wait_for("waiting for footage", timeout=30)
    # The subscriber's session and the service's must be on disk before the crash: wait for an autosave.
    assert broker.log is not None
    broker.log.wait_for("Saving in-memory database", timeout=30)
    broker.kill()
    _record_live(ffmpeg, live_root, now - timedelta(seconds=10), 20)
    service.log.wait_for(" done: ", timeout=60)
    broker.start()
    reply = client.expect_json(timeout=60)
    assert reply["status"] == "done"
