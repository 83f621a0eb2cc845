"""The FastAPI side-app: clip status, listing, submission, downloads with Range, cameras, health, metrics.

Every route is `async def`: the job store is used from the event loop's thread only. Files are served by looking
their name up in the store; a path from the request is never opened.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from clipbridge import __version__
from clipbridge.errors import ClipError
from clipbridge.handlers.incident import IncidentIn
from clipbridge.handlers.results import ClipResult, result_for

if TYPE_CHECKING:
    from clipbridge.handlers.index import RecordingsIndex
    from clipbridge.service import Components

# HTTP status codes live here only: error codes are the same as in MQTT replies.
STATUS_FOR_CODE = {
    "payload_too_large": 413,
    "not_found": 404,
    "unauthorized": 401,
    "storage_error": 503,
}
MEDIA_TYPES = {"video": "video/mp4", "json": "application/json", "yaml": "application/yaml", "txt": "text/plain"}


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


def _error(code: str, message: str, default: int = 422) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=STATUS_FOR_CODE.get(code, default))


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def create_app(parts: Components) -> FastAPI:
    config = parts.config
    store, runner, index = parts.store, parts.runner, parts.index
    base_url = config.http.public_base_url
    errors: dict[int | str, dict[str, Any]] = {
        401: {"model": ErrorBody, "description": "bearer token missing or wrong (when http.api_token is set)"},
        404: {"model": ErrorBody, "description": "no such clip or file"},
        422: {"model": ErrorBody, "description": "invalid request; error.code says why"},
    }

    async def require_token(request: Request) -> None:
        token = config.http.api_token
        if token is None:
            return
        given = request.headers.get("authorization", "")
        if not (given.startswith("Bearer ") and secrets.compare_digest(given[7:].encode(), token.encode())):
            raise ClipError("unauthorized", "a valid 'Authorization: Bearer <token>' header is required")

    auth = [Depends(require_token)]
    app = FastAPI(
        title="clipbridge",
        version=__version__,
        description="Clips of camera footage around incidents, cut losslessly from recorder segments.",
    )

    @app.exception_handler(ClipError)
    async def clip_error(request: Request, exc: ClipError) -> JSONResponse:
        return _error(exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts_ = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err["loc"] if p != "body") or "body"
            parts_.append(f"{where}: {err['msg']}")
        return _error("invalid_request", "; ".join(parts_))

    @app.post("/clips", status_code=202, response_model=Accepted, dependencies=auth, responses=errors)
    async def submit(event: ClipRequestBody) -> Accepted:
        """Ask for a clip; the body is the MQTT event payload. Same validation, limits and idempotency (event_id)."""
        try:
            new, _ = runner.prepare(event, topic_camera=None, topic="http", source="http")
        except ClipError as exc:
            parts.metrics.clip_errors.labels(type=exc.code).inc()
            raise
        [(job, created)] = runner.accept([(new, None)])
        message = "accepted; poll GET /clips/{clip_id}" if created else "duplicate event_id: the existing clip"
        return Accepted(clip_id=job.clip_id, status=job.status, message=message)

    @app.get("/clips/{clip_id}", response_model=ClipResult, dependencies=auth, responses=errors)
    async def get_clip(clip_id: str) -> ClipResult:
        job = store.get(clip_id)
        if job is None:
            raise ClipError("not_found", f"no clip with id {clip_id[:80]!r}")
        return result_for(job, store.files_of(clip_id), base_url)

    @app.get("/clips", response_model=ClipPage, dependencies=auth, responses=errors)
    async def list_clips(
        camera_id: str | None = None,
        status: str | None = None,
        since: Annotated[datetime | None, Query(description="created at or after (ISO-8601)")] = None,
        until: Annotated[datetime | None, Query(description="created before (ISO-8601)")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=2**53)] = 0,
    ) -> ClipPage:
        """Clips, newest first."""
        jobs, total = store.list_jobs(
            camera_id=camera_id, status=status, since=_aware(since), until=_aware(until), limit=limit, offset=offset
        )
        items = [result_for(j, store.files_of(j.clip_id), base_url) for j in jobs]
        return ClipPage(items=items, total=total, limit=limit, offset=offset)

    annotation_types: dict[str, Any] = {"content": {"application/json": {}, "application/yaml": {}, "text/plain": {}}}

    @app.get(
        "/clips/{clip_id}/annotation",
        dependencies=auth,
        response_class=Response,
        responses={**errors, 200: {"description": "the annotation file", **annotation_types}},
    )
    async def get_annotation(clip_id: str, format: Literal["json", "yaml", "txt"] = "json") -> Response:
        found = next((f for f in store.files_of(clip_id) if f.kind == format), None)
        if found is None:
            raise ClipError("not_found", f"clip {clip_id[:80]!r} has no {format} annotation")
        return _file(found.path, found.kind, found.name)

    @app.get(
        "/videos/{name}",
        dependencies=auth,
        response_class=Response,
        responses={
            **errors,
            200: {"description": "the clip", "content": {"video/mp4": {}}},
            206: {"description": "the requested byte range", "content": {"video/mp4": {}}},
            416: {"description": "range not satisfiable"},
        },
    )
    async def get_video(name: str) -> Response:
        """The clip file, with HTTP Range support (206) so players can seek."""
        return _lookup(name, ("video",))

    @app.get(
        "/annotations/{name}",
        dependencies=auth,
        response_class=Response,
        responses={**errors, 200: {"description": "an annotation file", **annotation_types}},
    )
    async def get_annotation_file(name: str) -> Response:
        return _lookup(name, ("json", "yaml", "txt"))

    def _lookup(name: str, kinds: tuple[str, ...]) -> Response:
        found = store.file(name)
        if found is None or found.kind not in kinds or not found.path.is_file():
            raise ClipError("not_found", f"no file named {name[:80]!r}")
        return _file(found.path, found.kind, found.name)

    @app.get("/cameras", response_model=list[Camera], dependencies=auth, responses=errors)
    async def cameras() -> list[Camera]:
        """Cameras in the recordings index; a large seconds_since_last_segment means the recorder stopped."""
        # Probing the newest segment reads files: in a thread, so the event loop keeps serving.
        return await asyncio.to_thread(_camera_rows, index, datetime.now(UTC))

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    async def health() -> JSONResponse:
        """Liveness plus component checks; 503 when a component is down."""
        components: dict[str, dict[str, Any]] = {}
        if config.mqtt.enabled:
            up = parts.bridge is not None and parts.bridge.connected
            components["mqtt"] = {"ok": up, "detail": f"{config.mqtt.host}:{config.mqtt.port}"}
        try:
            store.ping()
            components["store"] = {"ok": True, "detail": str(config.store.path)}
        except ClipError as exc:
            components["store"] = {"ok": False, "detail": exc.message}
        components["output_dir"] = _writable(config.clips.output_dir)
        components["ffmpeg"] = {"ok": os.access(parts.ffmpeg, os.X_OK), "detail": parts.ffmpeg}
        components["queue"] = {"ok": True, "depth": store.count_unfinished(), "waiting_for_footage": runner.waiting}
        components["outbox"] = {"ok": True, "pending": store.count_unsent()}
        ok = all(c["ok"] for c in components.values())
        body = Health(status="ok" if ok else "down", version=__version__, components=components)
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    @app.get(
        "/metrics",
        response_class=Response,
        responses={200: {"description": "Prometheus text format", "content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}},
    )
    async def metrics() -> Response:
        """Prometheus text format."""
        for camera_id, count in index.counts().items():
            parts.metrics.recordings_segments.labels(camera=camera_id).set(count)
        return Response(parts.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return app


def _camera_rows(index: RecordingsIndex, now: datetime) -> list[Camera]:
    out = []
    for camera_id in index.cameras():
        summary = index.summary(camera_id)
        if summary is None:
            continue
        newest = summary.newest
        last_write = max(newest.start, datetime.fromtimestamp(newest.mtime_ns / 1e9, UTC))
        try:
            last_end: str | None = _iso(newest.start + timedelta(seconds=index.probe(newest).duration))
        except ClipError:
            last_end = None  # the newest file is unreadable (or still empty): reported as unknown
        out.append(
            Camera(
                camera_id=camera_id,
                segments=summary.segments,
                first_start=_iso(summary.first_start),
                last_segment_start=_iso(newest.start),
                last_end=last_end,
                seconds_since_last_segment=round(max(0.0, (now - last_write).total_seconds()), 3),
            )
        )
    return out


def _file(path: Any, kind: str, name: str) -> FileResponse:
    return FileResponse(path, media_type=MEDIA_TYPES[kind], filename=name, content_disposition_type="inline")


def _writable(path: Any) -> dict[str, Any]:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".health-"):
            pass
        return {"ok": True, "detail": str(path)}
    except OSError as exc:
        return {"ok": False, "detail": f"{path}: {exc.strerror or exc}"}


def _aware(dt: datetime | None) -> datetime | None:
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)
