"""Cameras, health and metrics: what operators and Prometheus look at."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from clipbridge import __version__
from clipbridge.errors import ClipError
from clipbridge.handlers.index import RecordingsIndex
from clipbridge.http.deps import IndexDep, MetricsDep, PartsDep, StoreDep
from clipbridge.http.models import ERRORS, Camera, Health
from clipbridge.model import iso

cameras_router = APIRouter()
router = APIRouter()


@cameras_router.get("/cameras", response_model=list[Camera], responses=ERRORS)
async def cameras(index: IndexDep) -> list[Camera]:
    """Cameras in the recordings index; a large seconds_since_last_segment means the recorder stopped."""
    # Probing the newest segment reads files: in a thread, so the event loop keeps serving.
    return await asyncio.to_thread(_camera_rows, index, datetime.now(UTC))


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(parts: PartsDep) -> JSONResponse:
    """Liveness plus component checks; 503 when a component is down."""
    config, store = parts.config, parts.store
    components: dict[str, dict[str, Any]] = {}
    if parts.broker is not None:
        components["mqtt"] = {"ok": parts.broker.connected, "detail": f"{config.mqtt.host}:{config.mqtt.port}"}
    try:
        await store.ping()
        components["store"] = {"ok": True, "detail": store.describe()}
        components["queue"] = {"ok": True, "depth": await store.count_unfinished(),
                               "waiting_for_footage": parts.runner.waiting}  # fmt: skip
        components["outbox"] = {"ok": True, "pending": await store.count_unsent()}
    except ClipError as exc:
        components["store"] = {"ok": False, "detail": f"{store.describe()}: {exc.message}"}
    components["output_dir"] = _writable(config.clips.output_dir)
    components["storage"] = await asyncio.to_thread(parts.storage.check)  # S3: HEAD bucket
    components["ffmpeg"] = {"ok": os.access(parts.ffmpeg, os.X_OK), "detail": parts.ffmpeg}
    components["index"] = parts.index.health()
    components["instances"] = {
        "ok": True,
        "self": parts.membership.id,
        "live": [{"id": p.id, "base_url": p.base_url, "cameras": len(p.cameras)} for p in parts.membership.live()],
    }
    ok = all(c["ok"] for c in components.values())
    body = Health(status="ok" if ok else "down", version=__version__, components=components)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text format", "content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}},
)
async def metrics(index: IndexDep, metrics: MetricsDep, store: StoreDep) -> Response:
    """Prometheus text format."""
    for camera_id, count in index.counts().items():
        metrics.recordings_segments.labels(camera=camera_id).set(count)
    with contextlib.suppress(ClipError):  # the store is down: the gauges keep their last values
        metrics.clip_queue_depth.set(await store.count_unfinished())
        metrics.outbox_pending.set(await store.count_unsent())
        metrics.webhook_pending.set(await store.count_hooks_pending())
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


def _camera_rows(index: RecordingsIndex, now: datetime) -> list[Camera]:
    out = []
    for camera_id in index.cameras():
        summary = index.summary(camera_id)
        if summary is None:
            continue
        newest = summary.newest
        last_write = index.last_write(newest)
        try:
            last_end: str | None = iso(newest.start + timedelta(seconds=index.probe(newest).duration))
        except ClipError:
            last_end = None  # the newest file is unreadable (or still empty): reported as unknown
        out.append(
            Camera(
                camera_id=camera_id,
                segments=summary.segments,
                first_start=iso(summary.first_start),
                last_segment_start=iso(newest.start),
                last_end=last_end,
                seconds_since_last_segment=round(max(0.0, (now - last_write).total_seconds()), 3),
            )
        )
    return out


def _writable(path: Path) -> dict[str, Any]:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".health-"):
            pass
        return {"ok": True, "detail": str(path)}
    except OSError as exc:
        return {"ok": False, "detail": f"{path}: {exc.strerror or exc}"}
