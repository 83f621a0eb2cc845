"""Bad input and access: a barrage of generated payloads at the real service, MQTT over TLS with a test CA."""

from __future__ import annotations

import json
import math

import httpx
import pytest
import trustme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import Broker, TestClient, free_port

CAMERA_IDS = ["camera1", "../x", "camera1/../../etc", "", ".", "..", "a" * 65, "ĉamera", "cam era", "%2e%2e", "\x00"]
TOPICS = ["#", "a/+", "$SYS/x", "", "ok/topic", "a" * 600]


def _timestamp() -> st.SearchStrategy[object]:
    return st.one_of(
        st.datetimes().map(lambda d: d.isoformat()),
        st.sampled_from(["0001-01-01T00:00:00", "9999-12-31T23:59:59", "2025-08-29T14:30:15+14:00", "2025-08-29T14:30:15-12:59",
                         "2025-13-01T00:00:00", "yesterday", "", "1e400", "NaN"]),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(), st.none(), st.lists(st.integers(), max_size=3),
    )  # fmt: skip


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
EVENTS = st.fixed_dictionaries(
    {"timestamp": _timestamp()},
    optional={
        "camera_id": st.one_of(st.sampled_from(CAMERA_IDS), st.text(max_size=70), JSON),
        "event_id": st.one_of(st.text(max_size=300), JSON),
        "duration": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**20), 10**20), JSON),
        "pre_seconds": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**9)),
        "post_seconds": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**9)),
        "reply_to": st.one_of(st.sampled_from(TOPICS), st.text(max_size=30), JSON),
        "metadata": JSON,
    },
)
PAYLOADS = st.one_of(
    st.binary(max_size=300),
    JSON.map(lambda v: json.dumps(v).encode()),
    EVENTS.map(lambda e: json.dumps(e).encode()),
    st.integers(min_value=1, max_value=200_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.sampled_from([b"x" * 1_000_000, b"{" * 1_000_000, json.dumps({"camera_id": "camera1", "pad": "y" * 70_000}).encode()]),
)  # fmt: skip


def test_generated_barrage_never_kills_the_consumer(start_service, broker, prefix):
    """Every message gets a `rejected` reply or a real job result; afterwards a valid event still gets its clip."""
    service = start_service(
        clips__max_wait_seconds=0
    )  # windows in the future clip at once (no footage) instead of waiting
    client = TestClient(broker.port, subscribe=[f"{prefix}/z/#"])
    sent: list[bytes] = []

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(payload=PAYLOADS)
    def publish(payload: bytes) -> None:
        i = len(sent)
        sent.append(payload)
        client.publish(
            f"{prefix}/clips/requests", payload, response_topic=f"{prefix}/z/{i}", correlation=str(i).encode()
        )

    publish()
    statuses: dict[int, str] = {}
    for _ in sent:
        msg = client.expect(timeout=120)
        body = json.loads(msg.payload)
        assert body["status"] in ("rejected", "done", "partial", "failed"), body
        if body["status"] in ("rejected", "failed"):
            assert body["error"]["code"] and body["error"]["message"]
        statuses[int(msg.properties.CorrelationData)] = body["status"]
    assert sorted(statuses) == list(range(len(sent)))  # one reply each, none lost, none twice
    assert "rejected" in statuses.values()
    client.publish(f"{prefix}/cameras/camera1/incidents", {"timestamp": "2025-08-29T14:30:15", "duration": 20},
                   response_topic=f"{prefix}/z/final")  # fmt: skip
    assert client.expect_json(timeout=60)["status"] == "done"
    assert httpx.get(f"{service.base_url}/health", timeout=10).status_code == 200


@given(value=st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**30), 10**30))
@settings(max_examples=200, deadline=None)
def test_timestamps_and_durations_of_any_size_are_a_clear_error_or_a_window(value):
    from datetime import UTC

    from clipbridge.config import ClipsConfig
    from clipbridge.errors import ClipError
    from clipbridge.handlers.incident import incident_window, validate_incident

    for raw in ({"timestamp": value}, {"timestamp": "2025-08-29T14:30:15", "duration": value}):
        try:
            window = incident_window(validate_incident(raw), ClipsConfig(), UTC)
        except ClipError as exc:
            assert exc.code in ("invalid_request", "window_too_long")
        else:
            assert window.start <= window.incident <= window.end
            assert math.isfinite(window.seconds)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_broker(tmp_path, ca):
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.pem"))
    port = free_port()
    broker = Broker(
        tmp_path / "tlsbroker",
        extra_config=(
            f"listener {port} 127.0.0.1\n"
            f"cafile {tmp_path / 'ca.pem'}\ncertfile {tmp_path / 'server.pem'}\nkeyfile {tmp_path / 'server.key'}\n"
        ),
    )
    broker.start()
    yield broker, port, tmp_path / "ca.pem"
    broker.kill()


def test_mqtt_over_tls_with_the_right_ca(start_service, tls_broker, prefix):
    broker, tls_port, ca_file = tls_broker
    service = start_service(mqtt__port=tls_port, mqtt__tls={"ca_file": str(ca_file)})
    # A plain client on the broker's non-TLS listener sees the service's replies: the service talks TLS.
    client = TestClient(broker.port, subscribe=[f"{prefix}/tls/#"])
    client.publish(f"{prefix}/cameras/camera1/incidents", {"timestamp": "2025-08-29T14:30:15", "duration": 20},
                   response_topic=f"{prefix}/tls/1")  # fmt: skip
    assert client.expect_json(timeout=60)["status"] == "done"
    assert httpx.get(f"{service.base_url}/health", timeout=10).status_code == 200


def test_mqtt_over_tls_with_a_wrong_ca_is_refused(start_service, tls_broker, tmp_path):
    _, tls_port, _ = tls_broker
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    service = start_service(mqtt__port=tls_port, mqtt__tls={"ca_file": str(other)}, wait_mqtt=False)
    assert service.log is not None
    service.log.wait_for("MQTT connection to", timeout=30)
    assert not any("MQTT connected" in line for line in service.log.lines)
    health = httpx.get(f"{service.base_url}/health", timeout=10)
    assert health.status_code == 503 and health.json()["components"]["mqtt"]["ok"] is False
