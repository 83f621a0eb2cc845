"""Frigate's MQTT messages: `frigate/events` (tracked objects) and `frigate/reviews` (review items).

Both are `{"type": "new"|"update"|"end", "before": {...}, "after": {...}}` with epoch-second times. A clip is cut
when the object (or review item) ends, from `start_time - pre` to `end_time + post` (Frigate's `end_time` does not
include its own `post_capture`), capped at `clips.max_duration_seconds` with the cap reported in the metadata.
The clip's event_id is Frigate's id, so a repeated `end` is the same clip. With `on: [new, end]` an early clip is
also cut at `new` around the start (event_id `<id>:new`).
"""

from __future__ import annotations

import math
from typing import Any

from clipbridge.config import ClipsConfig
from clipbridge.errors import ClipError
from clipbridge.handlers.formats.model import Ignored, kind_of
from clipbridge.handlers.formats.spec import FrigateEventsTopic, FrigateReviewsTopic, FrigateTopic
from clipbridge.handlers.incident import IncidentIn, validate_incident

_TYPES = ("new", "update", "end")


class _Frigate:
    kind = "event"
    camera_from_topic = False

    def __init__(self, spec: FrigateTopic, clips: ClipsConfig) -> None:
        self._spec = spec
        self._pre = clips.pre_seconds if spec.pre_seconds is None else spec.pre_seconds
        self._post = clips.post_seconds if spec.post_seconds is None else spec.post_seconds
        self._max = clips.max_duration_seconds

    def identify(self, raw: Any) -> tuple[str | None, str | None]:
        after = raw.get("after") if isinstance(raw, dict) else None
        if not isinstance(after, dict):
            return None, None
        ident, camera = after.get("id"), after.get("camera")
        return (ident if isinstance(ident, str) else None, camera if isinstance(camera, str) else None)

    def _envelope(self, raw: Any) -> tuple[str, dict[str, Any]]:
        if not isinstance(raw, dict):
            raise ClipError("invalid_request", f"a Frigate {self.kind} must be a JSON object, got {type(raw).__name__}")
        kind, after = raw.get("type"), raw.get("after")
        if kind not in _TYPES:
            raise ClipError("invalid_request", f"type must be one of new, update, end; got {kind!r}")
        if not isinstance(after, dict):
            raise ClipError("invalid_request", f"after must be the Frigate {self.kind} object, got {kind_of(after)}")
        for key in ("id", "camera"):
            if not isinstance(after.get(key), str) or not after[key]:
                raise ClipError(
                    "invalid_request", f"after.{key} must be a non-empty string, got {kind_of(after.get(key))}"
                )
        _seconds(after, "start_time")
        return kind, after

    def _filtered(self, camera: str, labels: list[str], zones: list[str]) -> Ignored | None:
        spec = self._spec
        if spec.cameras and camera not in spec.cameras:
            return Ignored(f"camera {camera} is not in this topic's cameras")
        if spec.labels and not set(labels) & set(spec.labels):
            return Ignored(f"label(s) {', '.join(labels) or 'none'} not in this topic's labels")
        if spec.zones and not set(zones) & set(spec.zones):
            return Ignored(f"zone(s) {', '.join(zones) or 'none'} not in this topic's zones")
        return None

    def _incident(
        self, *, event_id: str, camera: str, start: float, end: float, metadata: dict[str, Any]
    ) -> IncidentIn:
        pre, post = self._pre, max(0.0, end - start) + self._post
        if pre + post > self._max:
            metadata["window_capped"] = {"requested_seconds": round(pre + post, 3), "limit_seconds": self._max}
            post = max(0.0, self._max - pre)
            pre = self._max - post
        return validate_incident(
            {
                "event_id": event_id,
                "camera_id": camera,
                "timestamp": start,
                "pre_seconds": pre,
                "post_seconds": post,
                "metadata": metadata,
            }
        )


class FrigateEvents(_Frigate):
    kind = "event"

    def __init__(self, spec: FrigateEventsTopic, clips: ClipsConfig) -> None:
        super().__init__(spec, clips)
        self._on = set(spec.on)

    def translate(self, raw: Any) -> IncidentIn | Ignored:
        kind, after = self._envelope(raw)
        if kind not in self._on:
            return Ignored(f"Frigate {kind} (this topic cuts on {', '.join(sorted(self._on))})")
        if after.get("false_positive") is True:
            return Ignored("a false positive")
        label = after.get("label") if isinstance(after.get("label"), str) else None
        zones = _strings(after.get("entered_zones")) or _strings(after.get("current_zones"))
        if skip := self._filtered(after["camera"], [label] if label else [], zones):
            return skip
        start = _seconds(after, "start_time")
        metadata: dict[str, Any] = {
            "source": "frigate",
            "frigate_id": after["id"],
            "frigate_type": kind,
            "label": label,
            "sub_label": _sub_label(after.get("sub_label")),
            "zones": zones,
            "score": _number(after.get("top_score")) or _number(after.get("score")),
            "start_time": start,
        }
        if kind == "new":
            return self._incident(event_id=f"{after['id']}:new", camera=after["camera"], start=start, end=start,
                                  metadata=metadata)  # fmt: skip
        end = _seconds(after, "end_time")
        metadata["end_time"] = end
        return self._incident(event_id=after["id"], camera=after["camera"], start=start, end=end, metadata=metadata)


class FrigateReviews(_Frigate):
    kind = "review item"

    def __init__(self, spec: FrigateReviewsTopic, clips: ClipsConfig) -> None:
        super().__init__(spec, clips)
        self._severity = set(spec.severity)

    def translate(self, raw: Any) -> IncidentIn | Ignored:
        kind, after = self._envelope(raw)
        if kind != "end":
            return Ignored(f"Frigate review {kind} (review items are cut when they end)")
        severity = after.get("severity")
        if severity not in self._severity:
            return Ignored(f"severity {severity!r} not in this topic's severity")
        data: dict[str, Any] = after["data"] if isinstance(after.get("data"), dict) else {}
        objects, zones = _strings(data.get("objects")), _strings(data.get("zones"))
        if skip := self._filtered(after["camera"], objects, zones):
            return skip
        start, end = _seconds(after, "start_time"), _seconds(after, "end_time")
        metadata: dict[str, Any] = {
            "source": "frigate",
            "frigate_review_id": after["id"],
            "severity": severity,
            "objects": objects,
            "zones": zones,
            "sub_labels": _strings(data.get("sub_labels")),
            "detections": _strings(data.get("detections")),
            "start_time": start,
            "end_time": end,
        }
        return self._incident(event_id=after["id"], camera=after["camera"], start=start, end=end, metadata=metadata)


def _seconds(after: dict[str, Any], key: str) -> float:
    value = after.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ClipError("invalid_request", f"after.{key} must be epoch seconds, got {kind_of(value)} {value!r}")
    return float(value)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _sub_label(value: Any) -> str | None:
    """Frigate's sub_label is null, a string (older versions) or [value, score]."""
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    return value if isinstance(value, str) else None
