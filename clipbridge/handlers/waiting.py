"""Jobs waiting for their footage, parked without a worker.

A job waits while complete segments do not reach its window end. It is woken by file-system events on its camera
(only once its window has ended: footage for a window still in the future cannot be complete), by the moment its
newest segment settles, or by its deadline (window end + clips.max_wait_seconds), after which whatever exists is cut.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from clipbridge.config import RecordingsConfig
from clipbridge.errors import ClipError
from clipbridge.handlers.index import RecordingsIndex
from clipbridge.model import Job

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Readiness:
    ready: bool
    recheck_at: datetime | None = None  # when to look again without a file-system event (a segment settling)


def readiness(index: RecordingsIndex, recordings: RecordingsConfig, camera_id: str, window_end: datetime,
              now: datetime) -> Readiness:  # fmt: skip
    """Do complete segments reach the window end? (Runs in a thread: it may probe the newest segment.)"""
    if not index.has_camera(camera_id):
        return Readiness(True)  # the clip will fail with unknown_camera; nothing to wait for
    if index.first_at_or_after(camera_id, window_end) is not None:
        return Readiness(True)  # the recorder has moved past the window end, so the segment before is closed
    before = index.candidates(camera_id, window_end, window_end)
    if not before:
        return Readiness(False)
    newest = before[-1]
    # A recorder's newest file may already hold the window end (fMP4 and MPEG-TS are readable while they grow;
    # a plain MP4 has no index until it is closed, so its probe fails): probe it before waiting for it to settle.
    try:
        info = index.probe(newest)
        if newest.start + timedelta(seconds=info.duration) >= window_end:
            return Readiness(True)
    except ClipError:
        info = None
    settles = index.settles_at(newest)
    if settles is not None and now < settles:
        return Readiness(False, settles)
    if info is None:
        return Readiness(False)
    reach = newest.start + timedelta(seconds=info.duration + recordings.gap_tolerance_seconds)
    return Readiness(reach >= window_end)


class FootageWaits:
    """The parked jobs of this instance's cameras; `wake` moves a job back to the workers (store + hint)."""

    def __init__(self, *, wake: Callable[[str], Coroutine[Any, Any, None]]) -> None:
        self._wake_job = wake
        self._waiting: dict[str, dict[str, datetime]] = {}  # camera -> {clip id: window end}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._started: dict[str, float] = {}  # clip id -> loop time it started waiting
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return sum(len(v) for v in self._waiting.values())

    def __contains__(self, clip_id: object) -> bool:
        return clip_id in self._timers

    def park(self, job: Job, until: datetime) -> None:
        """Wait without a worker; look again at `until` at the latest."""
        loop = asyncio.get_running_loop()
        if job.clip_id not in self._timers:
            logger.info("job %s waiting for footage of %s until %s", job.clip_id, job.camera_id, job.window.end)
        self._started.setdefault(job.clip_id, loop.time())
        self._waiting.setdefault(job.camera_id, {})[job.clip_id] = job.window.end
        old = self._timers.pop(job.clip_id, None)
        if old is not None:
            old.cancel()
        delay = max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.01
        self._timers[job.clip_id] = loop.call_later(delay, self._wake, job.camera_id, job.clip_id)

    def cameras(self) -> set[str]:
        return set(self._waiting)

    def footage_changed(self, cameras: set[str]) -> None:
        """File-system events for these cameras: jobs whose window has ended look again."""
        now = datetime.now(UTC)
        for camera in cameras:
            for clip_id, window_end in list(self._waiting.get(camera, {}).items()):
                if window_end <= now:
                    self._wake(camera, clip_id)

    def waited(self, clip_id: str) -> float | None:
        """Seconds the job waited for its footage (once, when it is finally cut), or None if it never waited."""
        started = self._started.pop(clip_id, None)
        return None if started is None else max(0.0, asyncio.get_running_loop().time() - started)

    def cancel(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._waiting.clear()

    def _wake(self, camera: str, clip_id: str) -> None:
        waiting = self._waiting.get(camera)
        if waiting is not None:
            waiting.pop(clip_id, None)
            if not waiting:
                del self._waiting[camera]
        timer = self._timers.pop(clip_id, None)
        if timer is not None:
            timer.cancel()
        task = asyncio.get_running_loop().create_task(self._wake_job(clip_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
