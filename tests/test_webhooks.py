"""Webhooks: signed, durable deliveries of each result to a real HTTP receiver, from the real `clipbridge run`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from clipbridge.handlers.webhooks import sign, verify
from tests.harness import TestClient, poll
from tests.receiver import Received, Receiver
from tests.test_integrations import metric

SEED_EVENT = {"timestamp": "2025-08-29T14:30:15", "duration": 20}
SECRET = "s3cret"


def at_least(receiver: Receiver, n: int, *, distinct_clips: bool = False) -> list[Received] | None:
    got = receiver.snapshot()
    count = len({json.loads(r.body)["clip_id"] for r in got}) if distinct_clips else len(got)
    return got if count >= n else None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.mark.parametrize(
    ("secret", "timestamp", "body", "signature", "now", "ok"),
    [
        ("k", "1000", b"{}", sign("k", 1000, b"{}"), 1000, True),
        ("k", "1000", b"{}", sign("k", 1000, b"{}"), 1299, True),
        ("k", "1000", b"{}", sign("k", 1000, b"{}"), 1301, False),  # too old: a replay
        ("k", "1000", b"{ }", sign("k", 1000, b"{}"), 1000, False),  # body changed
        ("k", "1001", b"{}", sign("k", 1000, b"{}"), 1000, False),  # timestamp changed
        ("other", "1000", b"{}", sign("k", 1000, b"{}"), 1000, False),  # another secret
        ("k", "soon", b"{}", sign("k", 1000, b"{}"), 1000, False),
        ("k", "1000", b"{}", "sha256=" + "0" * 64, 1000, False),
    ],
)
def test_signature_table(secret: str, timestamp: str, body: bytes, signature: str, now: float, ok: bool) -> None:
    assert verify(secret, timestamp, body, signature, now=now) is ok


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # The receiver's recipe, as the README gives it: hex HMAC-SHA256 over b"<timestamp>." + body.
    import hashlib
    import hmac

    expected = hmac.new(b"k", b"1700000000." + b'{"a":1}', hashlib.sha256).hexdigest()
    assert sign("k", 1700000000, b'{"a":1}') == "sha256=" + expected


def test_done_and_rejected_results_are_posted_signed_with_the_reply_json(start_service, broker, prefix, receiver):
    receiver.start()
    hooks = [{"url": receiver.url, "secret": SECRET, "events": ["done", "rejected"]}]
    start_service(webhooks=hooks)
    client = TestClient(broker.port, subscribe=[f"{prefix}/results/#", f"{prefix}/errors"])
    client.publish(f"{prefix}/cameras/camera1/incidents", SEED_EVENT)
    reply = client.expect(timeout=60)
    client.publish(f"{prefix}/cameras/camera1/incidents", {"timestamp": "not a time"})
    client.expect(timeout=30)
    got = poll(lambda: at_least(receiver, 2), timeout=30)
    by_event = {r.headers["x-clipbridge-event"]: r for r in got}
    assert set(by_event) == {"done", "rejected"}
    done = by_event["done"]
    assert json.loads(done.body) == json.loads(reply.payload)  # the same JSON as the MQTT reply
    assert done.headers["content-type"] == "application/json"
    assert verify(SECRET, done.headers["x-clipbridge-timestamp"], done.body, done.headers["x-clipbridge-signature"],
                  now=time.time())  # fmt: skip
    rejected = json.loads(by_event["rejected"].body)
    assert rejected["status"] == "rejected" and rejected["error"]["code"] == "invalid_request"
    assert by_event["done"].headers["x-clipbridge-delivery"] != by_event["rejected"].headers["x-clipbridge-delivery"]


def test_a_receiver_down_for_a_while_gets_every_delivery_once_back_even_across_kill_9(
    start_service, broker, prefix, receiver
):
    # The receiver is not listening yet: every POST is refused and retried (fast, for the test).
    hooks = [{"url": receiver.url, "retry_first_seconds": 0.2, "retry_max_seconds": 0.5}]
    service = start_service(webhooks=hooks)
    client = TestClient(broker.port, subscribe=[f"{prefix}/results/#"])
    for n in range(3):
        client.publish(f"{prefix}/cameras/camera1/incidents", {**SEED_EVENT, "event_id": f"wh-{n}"})
    clip_ids = {json.loads(client.expect(timeout=60).payload)["clip_id"] for _ in range(3)}
    poll(lambda: metric(service, "webhook_deliveries_total", result="retried") >= 3, timeout=30)
    service.kill9()  # deliveries pending, some perhaps mid-POST: they are in the store, not in memory
    receiver.start()
    again = start_service(webhooks=hooks)
    got = poll(lambda: at_least(receiver, 3, distinct_clips=True), timeout=60)
    assert {json.loads(r.body)["clip_id"] for r in got} == clip_ids
    poll(lambda: metric(again, "webhook_pending") == 0, timeout=30)


def test_a_4xx_is_dropped_at_once_counted_and_logged(start_service, broker, prefix, receiver):
    receiver.status = 400
    receiver.start()
    service = start_service(webhooks=[{"url": receiver.url}])
    client = TestClient(broker.port, subscribe=[f"{prefix}/results/#"])
    client.publish(f"{prefix}/cameras/camera1/incidents", SEED_EVENT)
    client.expect(timeout=60)
    poll(lambda: metric(service, "webhook_deliveries_total", result="failed") == 1, timeout=30)
    assert service.log is not None
    service.log.wait_for("webhook_failed", timeout=10)
    assert metric(service, "webhook_pending") == 0
    assert len(receiver.snapshot()) == 1, "a 4xx is not retried"
    assert metric(service, "webhook_deliveries_total", result="retried") == 0


def test_a_5xx_is_retried_until_delivered(start_service, broker, prefix, receiver):
    receiver.status = 503
    receiver.start()
    service = start_service(webhooks=[{"url": receiver.url, "retry_first_seconds": 0.2, "retry_max_seconds": 0.5}])
    client = TestClient(broker.port, subscribe=[f"{prefix}/results/#"])
    client.publish(f"{prefix}/cameras/camera1/incidents", SEED_EVENT)
    client.expect(timeout=60)
    poll(lambda: len(receiver.snapshot()) >= 2, timeout=30)
    receiver.status = 200
    poll(lambda: metric(service, "webhook_deliveries_total", result="delivered") == 1, timeout=30)
    assert metric(service, "webhook_pending") == 0


def test_retention_reports_an_expired_clip(start_service, broker, prefix, receiver):
    receiver.start()
    start_service(
        webhooks=[{"url": receiver.url, "events": ["expired"]}],
        retention__max_total_bytes=1,
        retention__sweep_interval_seconds=0.2,
    )
    client = TestClient(broker.port, subscribe=[f"{prefix}/results/#"])
    client.publish(f"{prefix}/cameras/camera1/incidents", SEED_EVENT)
    done = json.loads(client.expect(timeout=60).payload)
    (got,) = poll(lambda: at_least(receiver, 1), timeout=30)
    assert got.headers["x-clipbridge-event"] == "expired"
    body = json.loads(got.body)
    assert (body["clip_id"], body["status"], body["download_url"]) == (done["clip_id"], "expired", None)
