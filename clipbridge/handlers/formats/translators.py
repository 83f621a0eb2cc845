"""The translator for each request topic's format."""

from __future__ import annotations

from typing import Any, Protocol

from clipbridge.config import ClipsConfig
from clipbridge.handlers.formats.frigate import FrigateEvents, FrigateReviews
from clipbridge.handlers.formats.mapped import Mapped
from clipbridge.handlers.formats.model import Ignored
from clipbridge.handlers.formats.spec import (
    ClipbridgeTopic,
    FrigateEventsTopic,
    FrigateReviewsTopic,
    MappedTopic,
    RequestTopic,
)
from clipbridge.handlers.incident import IncidentIn, validate_incident


class Translator(Protocol):
    # Whether a `+` level of the topic names the camera (`cameras/+/incidents`), as in clipbridge's own schema.
    camera_from_topic: bool

    def translate(self, raw: Any) -> IncidentIn | Ignored:
        """The incident this payload asks for; raises ClipError(invalid_request) naming what is wrong."""

    def identify(self, raw: Any) -> tuple[str | None, str | None]:
        """(event_id, camera_id) as far as they can be read, for a rejection reply."""


class Native:
    camera_from_topic = True

    def translate(self, raw: Any) -> IncidentIn:
        return validate_incident(raw)

    def identify(self, raw: Any) -> tuple[str | None, str | None]:
        fields = raw if isinstance(raw, dict) else {}
        event_id, camera_id = fields.get("event_id"), fields.get("camera_id")
        return (event_id if isinstance(event_id, str) else None, camera_id if isinstance(camera_id, str) else None)


def translator_for(spec: RequestTopic, clips: ClipsConfig) -> Translator:
    if isinstance(spec, ClipbridgeTopic):
        return Native()
    if isinstance(spec, MappedTopic):
        return Mapped(spec)
    if isinstance(spec, FrigateEventsTopic):
        return FrigateEvents(spec, clips)
    if isinstance(spec, FrigateReviewsTopic):
        return FrigateReviews(spec, clips)
    raise AssertionError(f"no translator for {spec!r}")
