"""The incident event as it arrives (MQTT payload, REST body, CLI flags), validated into a clip window."""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, datetime, tzinfo
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from clipbridge.bridge.topic import why_not_publishable
from clipbridge.config import ClipsConfig
from clipbridge.errors import ClipError, describe_validation
from clipbridge.handlers.layout import is_safe_camera_id
from clipbridge.handlers.planner import request_window
from clipbridge.model import Window


class IncidentIn(BaseModel):
    """An incident event. `camera_id` may instead come from the topic `cameras/{camera_id}/incidents`."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"camera_id": "camera1", "timestamp": "2025-08-29T14:30:15", "duration": 20},
                {
                    "event_id": "evt-42",
                    "camera_id": "camera1",
                    "timestamp": "2025-08-29T14:30:15+02:00",
                    "pre_seconds": 10,
                    "post_seconds": 5,
                    "metadata": {"label": "person", "zone": "B"},
                },
            ]
        },
    )

    event_id: str | None = Field(default=None, min_length=1, max_length=200)
    camera_id: str | None = Field(default=None, max_length=64)
    timestamp: str | float = Field(
        description="ISO-8601 (offset optional; naive means the recordings time zone) or epoch s"
    )
    duration: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    pre_seconds: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    post_seconds: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    reply_to: str | None = Field(default=None, min_length=1, max_length=512)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("timestamp", mode="before")
    @classmethod
    def _no_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("timestamp must be an ISO-8601 string or epoch seconds, not a boolean")
        return value

    @field_validator("reply_to")
    @classmethod
    def _publishable(cls, value: str | None) -> str | None:
        if value is not None and (problem := why_not_publishable(value)):
            raise ValueError(f"reply_to must be a topic to publish to: {problem}")
        return value


def parse_timestamp(value: str | float, tz: tzinfo) -> datetime:
    """ISO-8601 (naive is in `tz`) or epoch seconds, as aware UTC."""
    try:
        if isinstance(value, int | float):
            if not math.isfinite(value):
                raise ValueError("not finite")
            return datetime.fromtimestamp(value, UTC)
        text = value.strip()
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return datetime.fromtimestamp(float(text), UTC)
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except (ValueError, OverflowError, OSError) as exc:
        raise ClipError(
            "invalid_request", f"timestamp {value!r} is neither ISO-8601 (e.g. 2025-08-29T14:30:15) nor epoch seconds"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise ClipError("invalid_request", f"timestamp {value!r} is outside the supported range") from exc


def validate_incident(raw: Any) -> IncidentIn:
    """A decoded JSON value -> IncidentIn, or ClipError(invalid_request) saying which field is wrong."""
    if not isinstance(raw, dict):
        raise ClipError("invalid_request", f"the event must be a JSON object, got {type(raw).__name__}")
    try:
        return IncidentIn.model_validate(raw)
    except ValidationError as exc:
        raise ClipError("invalid_request", describe_validation(exc, root="(event)")) from exc


def decode_json(payload: bytes, *, max_bytes: int) -> Any:
    """The payload's JSON value; raises ClipError(payload_too_large | invalid_json)."""
    if len(payload) > max_bytes:
        raise ClipError("payload_too_large", f"the event is {len(payload)} bytes; the limit is {max_bytes}")
    try:
        return json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ClipError("invalid_json", f"the event is not UTF-8 JSON: {exc}") from exc


def resolve_camera(event: IncidentIn, topic_camera: str | None) -> str:
    camera_id = event.camera_id or topic_camera
    if camera_id is None:
        raise ClipError(
            "invalid_request", "camera_id is missing (give it in the event or publish to cameras/{id}/incidents)"
        )
    if event.camera_id and topic_camera and event.camera_id != topic_camera:
        raise ClipError("invalid_request", f"camera_id {event.camera_id!r} disagrees with the topic's {topic_camera!r}")
    if not is_safe_camera_id(camera_id):
        raise ClipError(
            "unsafe_camera_id", f"camera_id {camera_id[:80]!r} must match [A-Za-z0-9_.-]{{1,64}}, not . or .."
        )
    return camera_id


def incident_window(event: IncidentIn, clips: ClipsConfig, tz: tzinfo) -> Window:
    return request_window(
        parse_timestamp(event.timestamp, tz),
        duration=event.duration,
        pre_seconds=event.pre_seconds,
        post_seconds=event.post_seconds,
        default_pre=clips.pre_seconds,
        default_post=clips.post_seconds,
        max_duration=clips.max_duration_seconds,
    )


def dedupe_key(event: IncidentIn, camera_id: str, window: Window, topic: str) -> str:
    """event_id when given, else a hash of camera, window and topic: the same event maps to the same clip."""
    if event.event_id:
        return "id:" + event.event_id
    basis = json.dumps([camera_id, window.start.isoformat(), window.end.isoformat(), topic])
    return "h:" + hashlib.sha256(basis.encode()).hexdigest()[:32]
