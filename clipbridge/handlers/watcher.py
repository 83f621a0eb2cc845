"""Keep the recordings index current: file-system events (watchfiles) or polling, per root, plus the incremental
reconcile of folders whose mtime changed. No full rescan after the start-up walk, except when a root appears."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from watchfiles import Change, awatch

from clipbridge.config import RecordingsConfig
from clipbridge.handlers.index import RecordingsIndex

logger = logging.getLogger(__name__)

# A live incident waits for its camera's next segment: while jobs wait, their cameras are polled this often.
HURRY_SECONDS = 0.2
# inotify reports nothing for changes made by other machines on these.
POLLED_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3")


def mount_type(path: Path, mounts: str) -> str:
    """The file-system type of the mount holding `path`, from /proc/mounts text (longest mount point wins)."""
    best, kind = "", ""
    target = os.path.realpath(path)
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def watch_mode(setting: Literal["auto", "events", "poll"], path: Path, mounts: str) -> Literal["events", "poll"]:
    if setting != "auto":
        return setting
    kind = mount_type(path, mounts)
    return "poll" if kind in POLLED_FILESYSTEMS or kind.startswith("fuse.") else "events"


def _read_mounts() -> str:
    try:
        return Path("/proc/mounts").read_text()
    except OSError:
        return ""  # not Linux: events everywhere


async def watch_recordings(
    index: RecordingsIndex,
    on_change: Callable[[set[str]], None],
    stop: asyncio.Event,
    *,
    config: RecordingsConfig,
    walked: asyncio.Event,
    hurry: Callable[[], set[str]] = set,
) -> None:
    """Run until `stop` is set; watching, polling and the reconcile begin once `walked` is set (what changed during
    the walk is found by the first reconcile, 2 s later). A root that does not exist yet (the recorder has not
    started) is looked for once a second; when it appears the index is walked again and its watch starts.
    Polled cameras in `hurry()` (jobs waiting for their footage) are looked at every HURRY_SECONDS."""
    mounts = _read_mounts()
    modes = [watch_mode(config.watch, root, mounts) for root in index.roots]
    for root, mode in zip(index.roots, modes, strict=True):
        logger.info("recordings %s: %s", root, "file-system events" if mode == "events" else
                    f"polled every {config.poll_seconds:g} s")  # fmt: skip
    polled = [i for i, m in enumerate(modes) if m == "poll"]
    evented = [i for i, m in enumerate(modes) if m == "events"]
    background = [asyncio.create_task(_reconcile_loop(index, on_change, stop, config.reconcile_seconds, walked))]
    if polled:
        loop = _poll_loop(index, on_change, stop, config.poll_seconds, polled, walked, hurry)
        background.append(asyncio.create_task(loop))
    try:
        await walked.wait()
        await _events(index, on_change, stop, evented, polled)
    finally:
        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _events(index: RecordingsIndex, on_change: Callable[[set[str]], None], stop: asyncio.Event,
                  evented: list[int], polled: list[int]) -> None:  # fmt: skip
    restarted = False
    while not stop.is_set():
        folders = index.live_folders(evented)
        missing = [r for i, r in enumerate(index.roots) if not r.is_dir() and (i in evented or i in polled)]
        tasks: dict[str, asyncio.Task[Any]] = {"stop": asyncio.create_task(stop.wait())}
        if folders:
            tasks["watch"] = asyncio.create_task(_watch(folders, index, on_change, evented, restarted))
        if missing:
            tasks["appear"] = asyncio.create_task(_until_one_exists(missing))
        done, pending = await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        restarted = True
        if tasks.get("appear") in done:
            found = await asyncio.to_thread(index.scan)
            logger.info("a recordings root appeared: walked the recordings again, %d segments", found)
            on_change(set(index.cameras()))
        elif tasks.get("watch") in done and (exc := tasks["watch"].exception()) is not None:
            logger.warning("watching %d folders failed (%s); relying on the reconcile", len(folders), exc)
            await stop.wait()


async def _watch(folders: set[str], index: RecordingsIndex, on_change: Callable[[set[str]], None],
                 evented: list[int], restarted: bool) -> None:  # fmt: skip
    """Watch the live end of the recordings, each folder on its own (a recursive watch of a million files takes
    seconds to set up, holding the GIL); returns when the live end moved (a new camera, a new hour's folder).
    Older folders only lose files to retention: the reconcile finds that."""
    # step=50 ms: a burst of changes is handed over 50 ms after it stops; debounce caps a busy stream at 0.1 s
    # (200 cameras writing never stop: the cap is what a live incident waits).
    version = index.folders_version
    async for changes in awatch(*folders, debounce=100, step=50, recursive=False, rust_timeout=1000,
                                yield_on_timeout=True):  # fmt: skip
        if restarted:  # files written while the watch was set up again have no event: list what changed
            restarted = False
            changes = changes | {(Change.modified, p) for p in folders}
        if not changes:
            continue
        cameras = await asyncio.to_thread(index.update_paths, {Path(p) for _, p in changes})
        if cameras:
            on_change(cameras)
        if index.folders_version != version:
            if index.live_folders(evented) != folders:
                return
            version = index.folders_version


async def _until_one_exists(paths: list[Path]) -> None:
    while not any(p.is_dir() for p in paths):
        await asyncio.sleep(1.0)  # sleep-ok: one stat a second while the recorder has not created its folder


async def _every(seconds: float, stop: asyncio.Event, first: float | None = None) -> bool:
    """Wait `first` (else `seconds`) unless stopped; True if it is time to run."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds if first is None else first)
    return not stop.is_set()


async def _reconcile_loop(index: RecordingsIndex, on_change: Callable[[set[str]], None], stop: asyncio.Event,
                          seconds: float, walked: asyncio.Event) -> None:  # fmt: skip
    await walked.wait()
    # The first reconcile comes 2 s after the walk: files written between the walk and the moment the watch was
    # set up produce no event (watchfiles gives no "ready" signal to wait for).
    first: float | None = min(2.0, seconds)
    while await _every(seconds, stop, first):
        listed = index.folders_listed
        cameras = await asyncio.to_thread(index.reconcile)
        if first is not None:
            logger.info("first reconcile after the walk: %d folder(s) listed again", index.folders_listed - listed)
            first = None
        if cameras:
            on_change(cameras)


async def _poll_loop(index: RecordingsIndex, on_change: Callable[[set[str]], None], stop: asyncio.Event,
                     seconds: float, sources: list[int], walked: asyncio.Event,
                     hurry: Callable[[], set[str]]) -> None:  # fmt: skip
    await walked.wait()
    loop = asyncio.get_running_loop()
    due = loop.time() + seconds
    while await _every(min(seconds, HURRY_SECONDS), stop):
        if loop.time() >= due:
            due = loop.time() + seconds
            cameras = await asyncio.to_thread(index.poll, sources)
        elif waiting := hurry():
            cameras = await asyncio.to_thread(index.poll, sources, waiting)
        else:
            continue
        if cameras:
            on_change(cameras)
