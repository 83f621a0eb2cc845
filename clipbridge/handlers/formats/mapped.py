"""`format: mapped`: an incident's fields taken from any JSON payload by RFC 6901 JSON Pointers."""

from __future__ import annotations

import math
from typing import Any

from jsonpointer import JsonPointerException, resolve_pointer
from pydantic import ValidationError

from clipbridge.errors import ClipError
from clipbridge.handlers.formats.model import kind_of
from clipbridge.handlers.formats.spec import MappedTopic
from clipbridge.handlers.incident import IncidentIn

_NOTHING = object()


class Mapped:
    def __init__(self, spec: MappedTopic) -> None:
        self._fields = spec.fields
        self._format = spec.timestamp_format
        # Without a camera_id pointer, the topic's `+` names the camera; with one, the payload alone does.
        self.camera_from_topic = "camera_id" not in spec.fields

    def translate(self, raw: Any) -> IncidentIn:
        values: dict[str, Any] = {}
        for name, pointer in self._fields.items():
            try:
                value = resolve_pointer(raw, pointer, _NOTHING)
            except JsonPointerException as exc:
                raise ClipError("invalid_request", f"{name}: cannot read {pointer!r} in the payload ({exc})") from exc
            if value is _NOTHING:
                raise ClipError("invalid_request", f"{name}: the payload has nothing at {pointer!r}")
            if value is None and name not in ("timestamp", "camera_id"):
                continue  # null: not given
            values[name] = self._convert(name, pointer, value)
        try:
            return IncidentIn.model_validate(values)
        except ValidationError as exc:
            err = exc.errors()[0]
            name = str(err["loc"][0]) if err["loc"] else "(event)"
            where = f" at {self._fields[name]!r}" if name in self._fields else ""
            raise ClipError("invalid_request", f"{name}{where}: {err['msg']}") from exc

    def identify(self, raw: Any) -> tuple[str | None, str | None]:
        def text(name: str) -> str | None:
            pointer = self._fields.get(name)
            try:
                value = resolve_pointer(raw, pointer, None) if pointer is not None else None
            except JsonPointerException:
                return None
            return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None

        return text("event_id"), text("camera_id")

    def _convert(self, name: str, pointer: str, value: Any) -> Any:
        if name == "timestamp":
            return self._timestamp(pointer, value)
        if name in ("camera_id", "event_id") and isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # numeric ids are common (DeepStream's source id)
        if name == "metadata" and not isinstance(value, dict):
            raise ClipError("invalid_request", f"metadata at {pointer!r} must be a JSON object, got {kind_of(value)}")
        return value

    def _timestamp(self, pointer: str, value: Any) -> str | float:
        if self._format == "iso":
            if not isinstance(value, str):
                raise ClipError(
                    "invalid_request",
                    f"timestamp at {pointer!r} must be an ISO-8601 string (timestamp_format: iso), got {kind_of(value)}",
                )
            return value
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = None
        unit = "seconds" if self._format == "epoch_s" else "milliseconds"
        if number is None or not math.isfinite(number):
            raise ClipError(
                "invalid_request", f"timestamp at {pointer!r} must be epoch {unit} ({self._format}), got {value!r}"
            )
        return number if self._format == "epoch_s" else number / 1000.0
