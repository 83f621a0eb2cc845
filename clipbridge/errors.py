"""The one exception type clipbridge raises for expected failures, and how pydantic's errors read to a person."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from clipbridge.model import ErrorCode


class _HasErrors(Protocol):
    def errors(self) -> Sequence[Any]: ...


class ClipError(Exception):
    """A failure a user can act on; `code` is what replies and REST show (model.ErrorCode lists them all)."""

    def __init__(self, code: ErrorCode, message: str, *, retryable: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code: ErrorCode = code
        self.message = message
        self.retryable = retryable

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def describe_validation(exc: _HasErrors, *, limit: int = 5, skip: tuple[str, ...] = (), root: str = "") -> str:
    """`field.sub: what is wrong; ...` for the first `limit` errors; `unknown key 'x'` for forbidden extras."""
    parts = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p) for p in err["loc"] if p not in skip) or root
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key {where!r}")
        else:
            parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def retry_delay(attempt: int, *, first: float, cap: float) -> float:
    """Exponential backoff: `first`, twice that, ... at most `cap` seconds (attempt counts from 0)."""
    return min(cap, first * 2.0 ** min(attempt, 32))
