"""Retention: delete the oldest clips past an age or a total size, keep their jobs as `expired`.

With several instances each deletes only the files on its own disk (the limits are per instance) plus the clips in
a shared bucket, and one sweep runs at a time (the store's `exclusive` lock). Files go through the clip storage
(`storage.delete`: unlink, or S3's batch delete) before their jobs become `expired`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from clipbridge.config import RetentionConfig
from clipbridge.errors import ClipError
from clipbridge.handlers.storage.base import ClipStorage
from clipbridge.handlers.store import Hook, Store
from clipbridge.metrics import Metrics

logger = logging.getLogger(__name__)
REJECTIONS_KEPT = timedelta(days=1)  # how long a rejected event is remembered (so every instance answers it once)


@dataclass(frozen=True)
class SweepResult:
    clips: int
    bytes: int


ExpiryHooks = Callable[[str], Awaitable[Sequence[Hook]]]


async def sweep(
    store: Store,
    storage: ClipStorage,
    config: RetentionConfig,
    *,
    now: datetime,
    instance: str,
    expiry_hooks: ExpiryHooks | None = None,
) -> SweepResult:
    """One pass: clips older than max_age_days, then the oldest ones while the total exceeds max_total_bytes."""
    doomed = await store.expirable(created_before=now - timedelta(days=config.max_age_days), instance=instance)
    if config.max_total_bytes is not None:
        sizes = await store.stored_bytes(instance)
        total = sum(size for _, size in sizes)
        already = set(doomed)
        total -= sum(size for clip_id, size in sizes if clip_id in already)
        for clip_id, size in sizes:
            if total <= config.max_total_bytes:
                break
            if clip_id not in already:
                doomed.append(clip_id)
                total -= size
    files = [f for clip_id in doomed for f in await store.files_of(clip_id)]
    removed_bytes = await asyncio.to_thread(storage.delete, files)  # raises ClipError: nothing expires this pass
    for clip_id in doomed:
        await store.expire(clip_id, await expiry_hooks(clip_id) if expiry_hooks else ())
    if doomed:
        logger.info("retention removed %d clip(s), %d bytes", len(doomed), removed_bytes)
    return SweepResult(len(doomed), removed_bytes)


async def retention_loop(
    store: Store,
    storage: ClipStorage,
    config: RetentionConfig,
    metrics: Metrics,
    stop: asyncio.Event,
    *,
    instance: str,
    expiry_hooks: ExpiryHooks | None = None,
) -> None:
    while not stop.is_set():
        try:
            async with store.exclusive("retention") as mine:
                if mine:
                    now = datetime.now(UTC)
                    result = await sweep(store, storage, config, now=now, instance=instance, expiry_hooks=expiry_hooks)
                    metrics.retention_clips.inc(result.clips)
                    metrics.retention_bytes.inc(result.bytes)
                    await store.prune_rejections(now - REJECTIONS_KEPT)
        except ClipError as exc:
            logger.error("retention sweep failed: %s", exc)
        except Exception:
            logger.exception("retention sweep failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=config.sweep_interval_seconds)
