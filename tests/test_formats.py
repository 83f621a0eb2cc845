"""Payload formats as tables: mapped JSON Pointers, Frigate events and reviews (real-shaped fixtures)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from clipbridge.config import ClipsConfig, load_config
from clipbridge.errors import ClipError
from clipbridge.handlers.formats.model import Ignored
from clipbridge.handlers.formats.spec import FrigateEventsTopic, FrigateReviewsTopic, MappedTopic
from clipbridge.handlers.formats.translators import translator_for
from clipbridge.handlers.incident import IncidentIn, resolve_camera

FRIGATE = Path(__file__).parent / "fixtures" / "frigate"
CLIPS = ClipsConfig(pre_seconds=15, post_seconds=5, max_duration_seconds=300)
START = 1756477810.25  # 2025-08-29T14:30:10.25Z
END = START + 12.5


def frigate(name: str, **after: Any) -> dict[str, Any]:
    payload = json.loads((FRIGATE / name).read_text())
    payload["after"].update({"start_time": START, **after})
    if payload["type"] == "end" and "end_time" not in after:
        payload["after"]["end_time"] = END
    return payload


def run(spec: Any, payload: Any) -> IncidentIn | Ignored:
    return translator_for(spec, CLIPS).translate(payload)


# -- mapped -----------------------------------------------------------------------------------------------------

DEEPSTREAM = {
    "version": "4.0",
    "id": 9001,
    "@timestamp_ms": 1756477815000,
    "sensor": {"id": "camera1", "type": "Camera"},
    "object": {"label": "person", "confidence": 0.93},
    "analytics": {"a/b": "zone-B"},
}
MAPPED = MappedTopic(
    topic="deepstream/events",
    format="mapped",
    fields={
        "timestamp": "/@timestamp_ms",
        "camera_id": "/sensor/id",
        "event_id": "/id",
        "metadata": "/object",
    },
    timestamp_format="epoch_ms",
)


def test_mapped_nested_pointers_and_epoch_ms() -> None:
    event = run(MAPPED, DEEPSTREAM)
    assert isinstance(event, IncidentIn)
    assert event.timestamp == 1756477815.0
    assert (event.camera_id, event.event_id) == ("camera1", "9001")  # a numeric id becomes text
    assert event.metadata == {"label": "person", "confidence": 0.93}


@pytest.mark.parametrize(
    ("fields", "fmt", "payload_change", "message"),
    [
        ({"timestamp": "/event/ts"}, "epoch_ms", {}, "timestamp: the payload has nothing at '/event/ts'"),
        ({"timestamp": "/@timestamp_ms", "camera_id": "/sensor/name"}, "epoch_ms", {}, "'/sensor/name'"),
        ({"timestamp": "/@timestamp_ms"}, "iso", {}, "timestamp at '/@timestamp_ms' must be an ISO-8601 string"),
        ({"timestamp": "/@timestamp_ms"}, "epoch_s", {"@timestamp_ms": "soon"}, "must be epoch seconds"),
        ({"timestamp": "/@timestamp_ms", "metadata": "/version"}, "epoch_ms", {}, "metadata at '/version'"),
        (
            {"timestamp": "/@timestamp_ms", "duration": "/object/confidence"},
            "epoch_ms",
            {"object": {"confidence": -1}},
            "duration at '/object/confidence'",
        ),
        ({"timestamp": "/sensor/id/0"}, "epoch_ms", {}, "timestamp"),
    ],
)
def test_mapped_missing_or_wrong_field_names_the_pointer(
    fields: dict[str, str], fmt: Any, payload_change: dict[str, Any], message: str
) -> None:
    spec = MappedTopic(topic="t", format="mapped", fields=fields, timestamp_format=fmt)
    with pytest.raises(ClipError) as err:
        run(spec, {**DEEPSTREAM, **payload_change})
    assert err.value.code == "invalid_request"
    assert message in err.value.message


def test_mapped_whole_payload_as_metadata_escaped_keys_and_iso() -> None:
    spec = MappedTopic(
        topic="t",
        format="mapped",
        fields={"timestamp": "/at", "camera_id": "/analytics/a~1b", "metadata": ""},
    )
    payload = {"at": "2025-08-29T14:30:15Z", "analytics": {"a/b": "camera1"}}
    event = run(spec, payload)
    assert isinstance(event, IncidentIn)
    assert (event.timestamp, event.camera_id, event.metadata) == ("2025-08-29T14:30:15Z", "camera1", payload)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"topic": "x", "format": "mapped", "fields": {"timestamp": "event/ts"}}, "is not a JSON Pointer"),
        ({"topic": "x", "format": "mapped", "fields": {"camera_id": "/c"}}, "fields.timestamp is required"),
        ({"topic": "x", "format": "mapped", "fields": {"timestamp": "/t", "colour": "/c"}}, "unknown field(s) colour"),
        ({"topic": "x", "format": "frigate"}, "format"),
        ({"topic": "x", "format": "frigate-events", "on": ["update"]}, "on"),
        ({"topic": "x", "format": "frigate-reviews", "severity": ["high"]}, "severity"),
        ({"topic": "x", "format": "frigate-events", "fields": {}}, "unknown key"),
    ],
)
def test_bad_topic_entries_are_config_errors(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ClipError) as err:
        load_config(None, env={"CLIPBRIDGE__MQTT__REQUEST_TOPICS": json.dumps([entry])})
    assert err.value.code == "config_error"
    assert message in err.value.message
    assert "request_topics" in err.value.message


# -- Frigate events ---------------------------------------------------------------------------------------------

EVENTS = FrigateEventsTopic(topic="frigate/events", format="frigate-events")


def test_frigate_end_cuts_from_start_minus_pre_to_end_plus_post() -> None:
    event = run(EVENTS, frigate("event_end.json"))
    assert isinstance(event, IncidentIn)
    assert event.event_id == "1607123955.475377-mxklsc"
    assert event.camera_id == "front_door"
    assert event.timestamp == START
    assert (event.pre_seconds, event.post_seconds) == (15, 12.5 + 5)
    assert event.metadata["label"] == "person"
    assert event.metadata["sub_label"] == "John Smith"  # [value, score] in Frigate >= 0.14
    assert event.metadata["zones"] == ["yard", "driveway"]
    assert event.metadata["score"] == 0.958984375
    assert (event.metadata["start_time"], event.metadata["end_time"]) == (START, END)


@pytest.mark.parametrize(
    ("spec_change", "name", "after", "expected"),
    [
        ({}, "event_new.json", {}, "ignored"),
        ({}, "event_update.json", {}, "ignored"),
        ({"on": ["new", "end"]}, "event_new.json", {}, "1607123955.475377-mxklsc:new"),
        ({"on": ["new", "end"]}, "event_update.json", {}, "ignored"),
        ({"labels": ["car"]}, "event_end.json", {}, "ignored"),
        ({"labels": ["car", "person"]}, "event_end.json", {}, "1607123955.475377-mxklsc"),
        ({"zones": ["porch"]}, "event_end.json", {}, "ignored"),
        ({"zones": ["yard"]}, "event_end.json", {}, "1607123955.475377-mxklsc"),
        ({"cameras": ["garage"]}, "event_end.json", {}, "ignored"),
        ({"cameras": ["front_door"]}, "event_end.json", {}, "1607123955.475377-mxklsc"),
        ({}, "event_end.json", {"false_positive": True}, "ignored"),
        ({}, "event_end.json", {"sub_label": None}, "1607123955.475377-mxklsc"),
        ({}, "event_end.json", {"sub_label": "Jane"}, "1607123955.475377-mxklsc"),  # older Frigate: a string
    ],
)
def test_frigate_event_types_and_filters(
    spec_change: dict[str, Any], name: str, after: dict[str, Any], expected: str
) -> None:
    spec = EVENTS.model_copy(update=spec_change)
    result = run(spec, frigate(name, **after))
    if expected == "ignored":
        assert isinstance(result, Ignored)
        assert result.reason
    else:
        assert isinstance(result, IncidentIn)
        assert result.event_id == expected


def test_frigate_new_clip_is_around_the_start() -> None:
    result = run(EVENTS.model_copy(update={"on": ["new", "end"]}), frigate("event_new.json"))
    assert isinstance(result, IncidentIn)
    assert (result.timestamp, result.pre_seconds, result.post_seconds) == (START, 15, 5)


def test_frigate_topic_pre_and_post_override_the_clip_defaults() -> None:
    spec = EVENTS.model_copy(update={"pre_seconds": 3.0, "post_seconds": 1.0})
    result = run(spec, frigate("event_end.json"))
    assert isinstance(result, IncidentIn)
    assert (result.pre_seconds, result.post_seconds) == (3.0, 12.5 + 1.0)


def test_a_long_frigate_event_is_capped_and_the_cap_reported() -> None:
    result = run(EVENTS, frigate("event_end.json", end_time=START + 1000))
    assert isinstance(result, IncidentIn)
    assert result.pre_seconds is not None and result.post_seconds is not None
    assert result.pre_seconds + result.post_seconds == pytest.approx(300)
    assert result.pre_seconds == 15
    assert result.metadata["window_capped"] == {"requested_seconds": 1020.0, "limit_seconds": 300}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.update(type="finished"), "type must be one of new, update, end"),
        (lambda p: p.update(after=None), "after must be the Frigate event object, got null"),
        (lambda p: p["after"].update(start_time="yesterday"), "after.start_time must be epoch seconds"),
        (lambda p: p["after"].update(end_time=None), "after.end_time must be epoch seconds, got null"),
        (lambda p: p["after"].pop("camera"), "after.camera must be a non-empty string"),
        (lambda p: p["after"].update(camera="../etc"), "camera_id"),
    ],
)
def test_malformed_frigate_events_are_rejected_with_a_reason(mutate: Any, message: str) -> None:
    payload = frigate("event_end.json")
    mutate(payload)
    with pytest.raises(ClipError) as err:
        result = translator_for(EVENTS, CLIPS).translate(payload)
        if isinstance(result, IncidentIn):  # the camera id is checked where every format's is: resolve_camera
            resolve_camera(result, None)
    assert message in err.value.message


def test_frigate_rejection_names_frigate_id_and_camera() -> None:
    payload = frigate("event_end.json", end_time=None)
    assert translator_for(EVENTS, CLIPS).identify(payload) == ("1607123955.475377-mxklsc", "front_door")
    assert translator_for(EVENTS, CLIPS).identify(["not", "an", "event"]) == (None, None)


# -- Frigate reviews --------------------------------------------------------------------------------------------

REVIEWS = FrigateReviewsTopic(topic="frigate/reviews", format="frigate-reviews")


@pytest.mark.parametrize(
    ("spec_change", "name", "after", "expected"),
    [
        ({}, "review_update.json", {}, "ignored"),
        ({}, "review_end.json", {}, "1718987129.308396-fqk5ka"),
        ({"severity": ["alert"]}, "review_end.json", {}, "1718987129.308396-fqk5ka"),
        ({"severity": ["alert"]}, "review_end.json", {"severity": "detection"}, "ignored"),
        ({"labels": ["dog"]}, "review_end.json", {}, "ignored"),
        ({"zones": ["front_yard"]}, "review_end.json", {}, "1718987129.308396-fqk5ka"),
    ],
)
def test_frigate_reviews(spec_change: dict[str, Any], name: str, after: dict[str, Any], expected: str) -> None:
    result = run(REVIEWS.model_copy(update=spec_change), frigate(name, **after))
    if expected == "ignored":
        assert isinstance(result, Ignored)
    else:
        assert isinstance(result, IncidentIn)
        assert result.event_id == expected
        assert result.camera_id == "front_cam"
        assert result.metadata["severity"] == "alert"
        assert result.metadata["objects"] == ["person", "car"]
        assert (result.pre_seconds, result.post_seconds) == (15, 12.5 + 5)


def test_fixtures_are_unchanged_by_tests() -> None:
    first = frigate("event_end.json")
    second = copy.deepcopy(first)
    run(EVENTS, first)
    assert first == second  # translators do not modify the payload they read
