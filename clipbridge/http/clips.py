"""Clip routes: submit, status, list."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from clipbridge.errors import ClipError
from clipbridge.handlers.replies import ClipResult, result_for
from clipbridge.handlers.store import Admission
from clipbridge.http.deps import LinksDep, MetricsDep, RunnerDep, StoreDep
from clipbridge.http.models import ERRORS, Accepted, ClipPage, ClipRequestBody

router = APIRouter()


@router.post(
    "/clips",
    status_code=202,
    response_model=Accepted,
    responses={**ERRORS, 503: {"model": ERRORS[422]["model"], "description": "shutting down: retry shortly"}},
)
async def submit(event: ClipRequestBody, runner: RunnerDep, metrics: MetricsDep) -> Accepted:
    """Ask for a clip; the body is the MQTT event payload. Same validation, limits and idempotency (event_id)."""
    try:
        new = runner.prepare(event, topic_camera=None, topic="http", source="http")
        [admitted] = await runner.admit([Admission(new, None)])
    except ClipError as exc:
        metrics.clip_errors.labels(type=exc.code).inc()
        raise
    created = admitted.created
    message = "accepted; poll GET /clips/{clip_id}" if created else "duplicate event_id: the existing clip"
    return Accepted(clip_id=admitted.job.clip_id, status=admitted.job.status, message=message)


@router.get("/clips/{clip_id}", response_model=ClipResult, responses=ERRORS)
async def get_clip(clip_id: str, store: StoreDep, links: LinksDep) -> ClipResult:
    job = await store.get(clip_id)
    if job is None:
        raise ClipError("not_found", f"no clip with id {clip_id[:80]!r}")
    return result_for(job, await store.files_of(clip_id), links)


@router.get("/clips", response_model=ClipPage, responses=ERRORS)
async def list_clips(
    store: StoreDep,
    links: LinksDep,
    camera_id: str | None = None,
    status: str | None = None,
    since: Annotated[datetime | None, Query(description="created at or after (ISO-8601)")] = None,
    until: Annotated[datetime | None, Query(description="created before (ISO-8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**53)] = 0,
) -> ClipPage:
    """Clips, newest first."""
    jobs, total = await store.list_jobs(
        camera_id=camera_id, status=status, since=_aware(since), until=_aware(until), limit=limit, offset=offset
    )
    items = [result_for(j, await store.files_of(j.clip_id), links) for j in jobs]
    return ClipPage(items=items, total=total, limit=limit, offset=offset)


def _aware(dt: datetime | None) -> datetime | None:
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)
