"""Keep the recordings index current: file-system events (watchfiles) plus a periodic full rescan as a safety net."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    """Run until `stop` is set. A root that does not exist yet (the recorder has not started) is looked for once a
    second; when it appears the index is rescanned and the watch restarts with it."""
    rescans = asyncio.create_task(_rescan_loop(index, on_change, stop, rescan_seconds))
    try:
        while not stop.is_set():
            roots = [r for r in index.roots if r.is_dir()]
            missing = [r for r in index.roots if not r.is_dir()]
            tasks: dict[str, asyncio.Task[Any]] = {"stop": asyncio.create_task(stop.wait())}
            if roots:
                tasks["watch"] = asyncio.create_task(_watch(roots, index, on_change))
            if missing:
                tasks["appear"] = asyncio.create_task(_until_one_exists(missing))
            done, pending = await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if tasks.get("appear") in done:
                logger.info("a recordings root appeared; rescanning")
                await asyncio.to_thread(index.scan)
                on_change(set(index.cameras()))
            elif tasks.get("watch") in done:
                exc = tasks["watch"].exception()
                logger.warning("watching %s failed (%s); relying on the rescan every %g s", roots, exc, rescan_seconds)
                await stop.wait()
    finally:
        rescans.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await rescans


async def _watch(roots: list[Path], index: RecordingsIndex, on_change: Callable[[set[str]], None]) -> None:
    # step=50 ms: a burst of changes is handed over 50 ms after it stops; debounce caps a busy stream at 0.4 s.
    async for changes in awatch(*roots, debounce=400, step=50):
        cameras = index.update_paths({Path(p) for _, p in changes})
        if cameras:
            on_change(cameras)


async def _until_one_exists(paths: list[Path]) -> None:
    while not any(p.is_dir() for p in paths):
        await asyncio.sleep(1.0)  # sleep-ok: one stat a second while the recorder has not created its folder


async def _rescan_loop(
    index: RecordingsIndex, on_change: Callable[[set[str]], None], stop: asyncio.Event, seconds: float
) -> None:
    # The first rescan comes 2 s after start: files written between the start-up scan and the moment the watch is
    # set up produce no event (watchfiles gives no "ready" signal to wait for).
    delay = min(2.0, seconds)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
        except TimeoutError:
            await asyncio.to_thread(index.scan)
            on_change(set(index.cameras()))
        delay = seconds
