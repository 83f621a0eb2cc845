"""What `mqtt.request_topics` entries may say: a plain topic (clipbridge's own schema) or `{topic, format, ...}`."""

from __future__ import annotations

from typing import Annotated, Literal

from jsonpointer import JsonPointer, JsonPointerException
from pydantic import BaseModel, ConfigDict, Field, field_validator

MAPPED_FIELDS = (
    "timestamp",
    "camera_id",
    "event_id",
    "duration",
    "pre_seconds",
    "post_seconds",
    "metadata",
    "reply_to",
)


class _Topic(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str = Field(min_length=1)


class ClipbridgeTopic(_Topic):
    """clipbridge's own incident schema (what a plain string entry means)."""

    format: Literal["clipbridge"] = "clipbridge"


class MappedTopic(_Topic):
    """Any JSON payload: each field taken by an RFC 6901 JSON Pointer ("" is the whole payload)."""

    format: Literal["mapped"]
    fields: dict[str, str]
    timestamp_format: Literal["iso", "epoch_s", "epoch_ms"] = "iso"

    @field_validator("fields")
    @classmethod
    def _pointers(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(MAPPED_FIELDS))
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}; the fields are {', '.join(MAPPED_FIELDS)}")
        if "timestamp" not in value:
            raise ValueError("fields.timestamp is required (the pointer to the incident time)")
        for name, pointer in value.items():
            try:
                JsonPointer(pointer)
            except JsonPointerException as exc:
                raise ValueError(f"fields.{name}: {pointer!r} is not a JSON Pointer ({exc}); e.g. /event/ts") from exc
        return value


class FrigateTopic(_Topic):
    cameras: list[str] = Field(default_factory=list)  # empty: every camera
    labels: list[str] = Field(default_factory=list)  # empty: every label (object)
    zones: list[str] = Field(default_factory=list)  # empty: anywhere; else the event entered one of these
    pre_seconds: float | None = Field(default=None, ge=0)  # default: clips.pre_seconds
    post_seconds: float | None = Field(default=None, ge=0)  # default: clips.post_seconds (added to Frigate's end)


class FrigateEventsTopic(FrigateTopic):
    """Frigate's `frigate/events` (tracked objects)."""

    format: Literal["frigate-events"]
    on: list[Literal["new", "end"]] = Field(default=["end"], min_length=1)


class FrigateReviewsTopic(FrigateTopic):
    """Frigate's `frigate/reviews` (review items: alerts and detections), cut when they end."""

    format: Literal["frigate-reviews"]
    severity: list[Literal["alert", "detection"]] = Field(default=["alert", "detection"], min_length=1)


RequestTopic = Annotated[
    ClipbridgeTopic | MappedTopic | FrigateEventsTopic | FrigateReviewsTopic, Field(discriminator="format")
]
