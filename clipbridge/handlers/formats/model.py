"""What a translator answers besides an incident."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Ignored:
    """A well-formed payload that asks for no clip (a Frigate `update`, a filtered label): acknowledged silently."""

    reason: str


def kind_of(value: Any) -> str:
    """A JSON value's kind, for error messages."""
    return "null" if value is None else type(value).__name__
