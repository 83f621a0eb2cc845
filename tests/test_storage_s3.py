"""Clips in object storage, against a real S3-protocol server over HTTP (moto's standalone server: tests/s3server.py
says what it does not check). The service runs as a real `clipbridge run` process with a real broker and FFmpeg."""

from __future__ import annotations

import asyncio
import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from clipbridge.config import RetentionConfig, S3Config
from clipbridge.errors import ClipError
from clipbridge.handlers.retention import sweep
from clipbridge.handlers.storage.s3 import S3Storage
from clipbridge.handlers.store import Admission, SqliteStore
from clipbridge.model import Job, NewJob, StoredFile, Window
from tests.harness import TestClient, poll
from tests.s3server import FlakyLink, PresignGate, S3Server, presign_refusal, s3_server
from tests.test_reliability import SEED_EVENT, clip_files, replies_until_sentinel

INCIDENT = datetime(2025, 8, 29, 14, 30, 15, tzinfo=UTC)


@pytest.fixture
def s3(tmp_path: Path):
    with s3_server(tmp_path) as server:
        yield server


def job(clip_id: str = "c1") -> Job:
    window = Window(INCIDENT, INCIDENT - timedelta(seconds=15), INCIDENT + timedelta(seconds=5))
    return Job.adhoc(clip_id, "camera1", window)


def storage_for(server: S3Server, **kw) -> S3Storage:
    return S3Storage(S3Config(bucket=server.bucket, endpoint_url=server.url, region="us-east-1",
                              access_key_id=server.access_key, secret_access_key=server.secret_key,
                              **kw))  # fmt: skip


def files_on_disk(tmp_path: Path, clip_id: str, video_bytes: bytes) -> list[StoredFile]:
    video = tmp_path / f"camera1_20250829_143015_{clip_id}.mp4"
    note = tmp_path / f"camera1_20250829_143015_{clip_id}.json"
    video.write_bytes(video_bytes)
    note.write_text('{"clip": true}')
    return [StoredFile(video.name, clip_id, "video", video, video.stat().st_size),
            StoredFile(note.name, clip_id, "json", note, note.stat().st_size)]  # fmt: skip


def test_keep_uploads_each_file_under_its_dated_key_with_type_and_metadata_then_drops_the_local_copy(s3, tmp_path):
    storage = storage_for(s3)
    files = files_on_disk(tmp_path, "c1", os.urandom(300_000))
    kept = storage.keep(job("c1"), files)
    assert [f.object_key for f in kept] == [f"clips/camera1/2025/08/29/{f.name}" for f in files]
    head = s3.client().head_object(Bucket="clips", Key=kept[0].object_key)
    assert head["ContentType"] == "video/mp4" and head["ContentLength"] == files[0].size
    assert head["Metadata"] == {"clip_id": "c1", "camera_id": "camera1", "incident": "2025-08-29T14:30:15+00:00"}
    assert s3.client().head_object(Bucket="clips", Key=kept[1].object_key)["ContentType"] == "application/json"
    assert not any(f.path.exists() for f in files)  # keep_local_copy is off by default


def test_keep_local_copy_leaves_the_files(s3, tmp_path):
    files = files_on_disk(tmp_path, "c2", b"x" * 1000)
    storage_for(s3, keep_local_copy=True).keep(job("c2"), files)
    assert all(f.path.exists() for f in files) and len(s3.objects()) == 2


def test_a_large_clip_goes_up_in_parts_and_its_multipart_etag_is_verified(s3, tmp_path):
    body = os.urandom(11 * 1024 * 1024)  # 5 MiB parts: three of them
    files = files_on_disk(tmp_path, "c3", body)
    kept = storage_for(s3, multipart_threshold_mb=5).keep(job("c3"), files)
    head = s3.client().head_object(Bucket="clips", Key=kept[0].object_key)
    assert head["ETag"].strip('"').endswith("-3")
    got = s3.client().get_object(Bucket="clips", Key=kept[0].object_key)["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()


def test_presigned_link_downloads_the_object_byte_for_byte_and_serves_ranges(s3, tmp_path):
    body = os.urandom(200_000)
    storage = storage_for(s3, presign_seconds=600)
    kept = storage.keep(job("c4"), files_on_disk(tmp_path, "c4", body))
    link = storage.presign(kept[0])
    assert link is not None and "X-Amz-Signature=" in link.url and "X-Amz-Expires=600" in link.url
    assert timedelta(seconds=590) < link.expires_at - datetime.now(UTC) <= timedelta(seconds=600)
    assert httpx.get(link.url, timeout=10).content == body
    part = httpx.get(link.url, headers={"Range": "bytes=1000-1999"}, timeout=10)
    assert part.status_code == 206 and part.content == body[1000:2000]
    assert storage.presign(StoredFile("x.mp4", "c", "video", tmp_path / "x.mp4", 1)) is None  # not in the bucket


def test_presigned_links_are_refused_when_tampered_foreign_or_expired(s3, tmp_path):
    """Through PresignGate, which checks the links as S3 does (moto does not): uploads go to moto, links are signed
    for the gate's host (storage.s3.public_endpoint_url)."""
    gate = PresignGate(s3)
    try:
        storage = storage_for(s3, public_endpoint_url=gate.url, presign_seconds=3600)
        one = storage.keep(job("p1"), files_on_disk(tmp_path, "p1", b"first clip " * 1000))[0]
        two = storage.keep(job("p2"), files_on_disk(tmp_path, "p2", b"second clip " * 1000))[0]
        link, other = storage.presign(one), storage.presign(two)
        assert link is not None and other is not None and link.url.startswith(gate.url + "/clips/clips/camera1/")
        assert httpx.get(link.url, timeout=10).content == b"first clip " * 1000
        assert httpx.get(link.url, headers={"Range": "bytes=0-4"}, timeout=10).content == b"first"

        tampered = link.url.replace("X-Amz-Expires=3600", "X-Amz-Expires=604800")
        foreign = link.url.split("?")[0] + "?" + other.url.split("?")[1]  # p2's signature on p1's key
        for bad in (tampered, foreign):
            answer = httpx.get(bad, timeout=10)
            assert answer.status_code == 403 and b"SignatureDoesNotMatch" in answer.content

        short = storage_for(s3, public_endpoint_url=gate.url, presign_seconds=1).presign(one)
        assert short is not None
        expired = poll(lambda: (r := httpx.get(short.url, timeout=10)).status_code == 403 and r, timeout=30)
        assert b"Request has expired" in expired.content
    finally:
        gate.close()


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (lambda u: u, None),
        (lambda u: u.replace("X-Amz-Signature=", "X-Amz-Signature=0"), "SignatureDoesNotMatch"),
        (lambda u: u.replace("/x.mp4", "/y.mp4"), "SignatureDoesNotMatch"),
        (lambda u: u.replace("X-Amz-Expires=60", "X-Amz-Expires=61"), "SignatureDoesNotMatch"),
        (lambda u: u.split("&X-Amz-Signature")[0], "AccessDenied"),
    ],
)
def test_the_gate_refuses_what_s3_refuses(s3, change, refusal):
    url = s3.client().generate_presigned_url("get_object", Params={"Bucket": "clips", "Key": "a b/x.mp4"}, ExpiresIn=60)
    now = datetime.now(UTC)
    found = presign_refusal(change(url), s3.secret_key, now)
    assert (found[0] if found else None) == refusal
    assert presign_refusal(url, "another-secret", now) is not None
    assert presign_refusal(url, s3.secret_key, now + timedelta(seconds=61)) == ("AccessDenied", "Request has expired")


def test_tidy_aborts_multipart_uploads_left_open_under_the_prefix_only(s3):
    client = s3.client()
    client.create_multipart_upload(Bucket="clips", Key="clips/camera1/2025/08/29/crashed.mp4")
    client.create_multipart_upload(Bucket="clips", Key="someone-else/theirs.bin")
    # moto reports every upload as initiated on 2010-11-10, so "younger than an hour, maybe another instance's
    # upload in flight" cannot be shown here: every open upload under the prefix is old to it.
    assert storage_for(s3).tidy() == 1
    left = [u["Key"] for u in client.list_multipart_uploads(Bucket="clips").get("Uploads", [])]
    assert left == ["someone-else/theirs.bin"]


def test_missing_bucket_is_a_storage_error_naming_it_and_health_says_so(s3, tmp_path):
    storage = S3Storage(S3Config(bucket="no-such-bucket", endpoint_url=s3.url, region="us-east-1",
                                 access_key_id="a", secret_access_key="b"))  # fmt: skip
    with pytest.raises(ClipError) as caught:
        storage.keep(job("c5"), files_on_disk(tmp_path, "c5", b"x"))
    assert caught.value.code == "storage_error" and "NoSuchBucket" in caught.value.message
    state = storage.check()
    assert state["ok"] is False and "no such bucket" in state["error"] and state["bucket"] == "no-such-bucket"
    assert storage_for(s3).check()["ok"] is True


def test_wrong_credentials_are_a_storage_error_with_the_s3_code(tmp_path):
    with s3_server(tmp_path, auth=True) as server:
        good = storage_for(server)
        assert good.check()["ok"] is True
        assert len(good.keep(job("ok"), files_on_disk(tmp_path, "ok", b"fine"))) == 2
        wrong = S3Storage(S3Config(bucket=server.bucket, endpoint_url=server.url, region="us-east-1",
                                   access_key_id=server.access_key, secret_access_key="not-the-secret"))  # fmt: skip
        with pytest.raises(ClipError) as caught:
            wrong.keep(job("c6"), files_on_disk(tmp_path, "c6", b"x"))
        assert caught.value.code == "storage_error" and "SignatureDoesNotMatch" in caught.value.message
        unknown = S3Storage(S3Config(bucket=server.bucket, endpoint_url=server.url, region="us-east-1",
                                     access_key_id="AKIAUNKNOWN", secret_access_key="x"))  # fmt: skip
        with pytest.raises(ClipError) as caught:
            unknown.keep(job("c7"), files_on_disk(tmp_path, "c7", b"x"))
        assert "InvalidAccessKeyId" in caught.value.message
        assert "not-the-secret" not in caught.value.message
        assert unknown.check()["ok"] is False


def test_retention_deletes_the_objects_in_a_batch_and_expires_the_jobs(s3, tmp_path):
    asyncio.run(_retention(s3, tmp_path))


async def _retention(server: S3Server, tmp_path: Path) -> None:
    store = SqliteStore(path=tmp_path / "db.sqlite")
    await store.open()
    storage = storage_for(server)
    start = datetime.now(UTC)
    for i, size in enumerate((1000, 2000, 3000)):
        clip_id = f"r{i}"
        new = NewJob(clip_id, f"k{i}", None, "camera1", Window(INCIDENT, INCIDENT, INCIDENT), source="http")
        await store.admit([Admission(new, None)], [], lambda j, f: b"")
        kept = storage.keep(job(clip_id), files_on_disk(tmp_path, clip_id, b"v" * size))
        await store.finish(clip_id, "i1", status="done", record=None, error=None, files=kept, reply_payload=b"",
                           completed_at=start)  # fmt: skip
    assert len(server.objects()) == 6
    # 6042 bytes in the bucket (the store's count, not a listing); 5100 allowed: the oldest clip goes.
    result = await sweep(store, storage, RetentionConfig(max_total_bytes=5100), now=start, instance="other")
    assert (result.clips, result.bytes) == (1, 1014)
    assert not any("_r0." in k for k in server.objects()) and len(server.objects()) == 4
    gone = await store.get("r0")
    assert gone is not None and gone.status == "expired"
    result = await sweep(store, storage, RetentionConfig(max_age_days=1), now=start + timedelta(days=2),
                         instance="other")  # fmt: skip
    assert result.clips == 2 and server.objects() == {}


# -- the service, end to end ----------------------------------------------------------------------------------------


def incident(client: TestClient, prefix: str, event_id: str, topic: str) -> dict:
    client.publish(f"{prefix}/cameras/camera1/incidents", {**SEED_EVENT, "event_id": event_id}, response_topic=topic)
    return client.expect_json(timeout=90)


def test_an_incident_lands_in_the_bucket_and_both_links_download_it(start_service, broker, prefix, tmp_path, s3):
    service = start_service(**s3.settings(presign_seconds=3600))
    client = TestClient(broker.port, subscribe=[f"{prefix}/s3/#"])
    reply = incident(client, prefix, "s3-1", f"{prefix}/s3/1")
    assert reply["status"] == "done", reply
    key = f"clips/camera1/2025/08/29/{reply['video_file']}"
    objects = s3.objects()
    assert objects[key] == reply["file_size"]
    assert {k.rsplit(".", 1)[1] for k in objects} == {"mp4", "json", "yaml", "txt", "jpg"}
    stored = s3.client().get_object(Bucket="clips", Key=key)["Body"].read()

    # The side-app's stable URL answers 307 to a freshly presigned one; the reply's direct link works as it is.
    first = httpx.get(reply["download_url"], timeout=10)
    assert first.status_code == 307 and first.headers["location"].startswith(s3.url + "/clips/" + key)
    assert httpx.get(reply["download_url"], follow_redirects=True, timeout=30).content == stored
    assert reply["presigned_url"].startswith(s3.url) and reply["presigned_expires_at"] > reply["completed_at"]
    assert httpx.get(reply["presigned_url"], timeout=30).content == stored
    ranged = httpx.get(reply["presigned_url"], headers={"Range": "bytes=100-199"}, timeout=10)
    assert ranged.status_code == 206 and ranged.content == stored[100:200]
    note = httpx.get(reply["annotations"]["json"], follow_redirects=True, timeout=10)
    assert note.json()["clip_id"] == reply["clip_id"]

    fresh = httpx.get(f"{service.base_url}/clips/{reply['clip_id']}", timeout=10).json()
    assert fresh["presigned_url"] and fresh["download_url"].split("?")[0] == reply["download_url"].split("?")[0]
    health = httpx.get(f"{service.base_url}/health", timeout=10).json()
    assert health["components"]["storage"] == {"backend": "s3", "bucket": "clips", "endpoint": s3.url, "ok": True}
    assert clip_files(tmp_path) == ([], [])  # no local copy, no temporary file
    assert "test-secret" not in service.log.tail(400)  # type: ignore[union-attr]


def test_endpoint_gone_mid_upload_is_retried_and_the_clip_is_done_when_it_is_back(
    start_service, broker, prefix, tmp_path, s3
):
    link = FlakyLink(s3.port)
    start_service(**s3.settings(endpoint=link.url))
    client = TestClient(broker.port, subscribe=[f"{prefix}/flaky/#"])
    link.down_after(300_000)  # inside the clip's upload (the seed clip is about 2 MB)
    client.publish(f"{prefix}/cameras/camera1/incidents", {**SEED_EVENT, "event_id": "flaky"},
                   response_topic=f"{prefix}/flaky/1")  # fmt: skip
    poll(lambda: link.refused >= 2, timeout=60)  # the upload was cut and retried against a dead endpoint
    link.up()
    reply = client.expect_json(timeout=120)
    assert reply["status"] == "done", reply
    assert s3.objects()[f"clips/camera1/2025/08/29/{reply['video_file']}"] == reply["file_size"]
    link.close()


def test_endpoint_gone_for_good_fails_the_job_with_storage_error_and_the_service_goes_on(
    start_service, broker, prefix, tmp_path, s3
):
    link = FlakyLink(s3.port)
    service = start_service(**s3.settings(endpoint=link.url, max_attempts=2))
    client = TestClient(broker.port, subscribe=[f"{prefix}/gone/#"])
    link.down_after(1000)
    reply = incident(client, prefix, "gone", f"{prefix}/gone/1")
    assert reply["status"] == "failed" and reply["error"]["code"] == "storage_error", reply
    assert "cannot upload" in reply["error"]["message"] and reply["download_url"] is None
    assert clip_files(tmp_path) == ([], [])  # nothing half-kept
    health = httpx.get(f"{service.base_url}/health", timeout=30)
    assert health.status_code == 503 and health.json()["components"]["storage"]["ok"] is False
    link.up()  # back: the next incident is clipped
    assert incident(client, prefix, "back", f"{prefix}/gone/2")["status"] == "done"
    link.close()


def test_kill_9_between_upload_and_commit_resumes_to_one_object_and_one_reply(
    start_service, broker, prefix, tmp_path, s3
):
    service = start_service(env_extra={"CLIPBRIDGE_TEST_PAUSE_AT": "storage_before_commit"}, **s3.settings())
    client = TestClient(broker.port, subscribe=[f"{prefix}/k9/#"])
    client.publish(f"{prefix}/cameras/camera1/incidents", {**SEED_EVENT, "event_id": "k9"},
                   response_topic=f"{prefix}/k9/1")  # fmt: skip
    assert service.log is not None
    service.log.wait_for("frozen at storage_before_commit", timeout=90)
    uploaded = s3.objects()
    assert len(uploaded) == 5  # the clip, its annotations and snapshot are in the bucket; the job is not finished
    service.kill9()
    del service.env["CLIPBRIDGE_TEST_PAUSE_AT"]
    service.start()
    reply = client.expect_json(timeout=90)
    assert reply["status"] == "done"
    assert service.stop() == 0
    assert replies_until_sentinel(client, f"{prefix}/k9/1") == []  # one reply
    assert s3.objects().keys() == uploaded.keys()  # uploaded again to the same keys: one object each
    assert clip_files(tmp_path) == ([], [])
