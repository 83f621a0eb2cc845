"""REST bodies (pydantic at the edge): what comes in and what goes out besides the shared `ClipResult`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from clipbridge.handlers.incident import IncidentIn
from clipbridge.handlers.replies import ClipResult


class ClipRequestBody(IncidentIn):
    """The MQTT event payload; over REST there is no topic to take the camera from, so camera_id is required."""

    camera_id: str = Field(min_length=1, max_length=64, description="[A-Za-z0-9_.-]{1,64}; never a path")


class Accepted(BaseModel):
    clip_id: str
    status: str
    message: str


class ErrorBody(BaseModel):
    error: dict[str, str]


class ClipPage(BaseModel):
    items: list[ClipResult]
    total: int
    limit: int
    offset: int


class Camera(BaseModel):
    camera_id: str
    segments: int
    first_start: str
    last_segment_start: str
    last_end: str | None
    seconds_since_last_segment: float


class Health(BaseModel):
    status: Literal["ok", "down"]
    version: str
    components: dict[str, dict[str, Any]]


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "bearer token missing or wrong (when http.api_token is set)"},
    404: {"model": ErrorBody, "description": "no such clip or file"},
    422: {"model": ErrorBody, "description": "invalid request; error.code says why"},
}
