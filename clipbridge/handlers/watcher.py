"""Keep the recordings index current: file-system events (watchfiles) plus a periodic full rescan as a safety net."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from watchfiles import awatch

from clipbridge.handlers.index import RecordingsIndex

logger = logging.getLogger(__name__)


async def watch_recordings(
    index: RecordingsIndex,
    on_change: Callable[[set[str]], None],
    stop: asyncio.Event,
    *,
    rescan_seconds: float,
) -> None:
    """Run until `stop` is set. Roots missing at start (or unwatchable mounts) are covered by the rescan only."""
    rescans = asyncio.create_task(_rescan_loop(index, on_change, stop, rescan_seconds))
    roots = [r for r in index.roots if r.is_dir()]
    try:
        if roots:
            # step=50 ms: a burst of changes is handed over 50 ms after it stops; debounce caps a busy stream at 0.4 s.
            async for changes in awatch(*roots, stop_event=stop, debounce=400, step=50):
                cameras = index.update_paths({Path(p) for _, p in changes})
                if cameras:
                    on_change(cameras)
        await stop.wait()
    except (OSError, RuntimeError) as exc:
        logger.warning("watching %s failed (%s); relying on the rescan every %g s", roots, exc, rescan_seconds)
        await stop.wait()
    finally:
        rescans.cancel()


async def _rescan_loop(
    index: RecordingsIndex, on_change: Callable[[set[str]], None], stop: asyncio.Event, seconds: float
) -> None:
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except TimeoutError:
            await asyncio.to_thread(index.scan)
            on_change(set(index.cameras()))
