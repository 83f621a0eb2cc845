"""Clip jobs: accepted from MQTT or REST, wait for their footage, cut by a bounded pool of workers, answered.

Statuses: pending -> waiting -> processing -> done | partial | failed. A job never occupies a worker while it waits:
waiting jobs are woken by file-system events on their camera, by the moment their newest segment settles, or by
their deadline (window end + clips.max_wait_seconds), after which whatever footage exists is clipped (`partial`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from clipbridge.config import ClipsConfig, RecordingsConfig
from clipbridge.errors import ClipError
from clipbridge.handlers.clipper import ClipOutcome, Clipper, ClipRequest
from clipbridge.handlers.incident import IncidentIn, dedupe_key, incident_window, resolve_camera
from clipbridge.handlers.index import RecordingsIndex
from clipbridge.handlers.planner import Window
from clipbridge.handlers.results import result_for, to_bytes
from clipbridge.handlers.store import Job, NewJob, ReplyTarget, Store, StoredFile, now_iso
from clipbridge.metrics import Metrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Readiness:
    ready: bool
    recheck_at: datetime | None = None  # when to look again without a file-system event (a segment settling)


class JobRunner:
    def __init__(
        self,
        *,
        store: Store,
        clipper: Clipper,
        index: RecordingsIndex,
        clips: ClipsConfig,
        recordings: RecordingsConfig,
        base_url: str,
        metrics: Metrics,
        tz: tzinfo,
        replies_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._clipper = clipper
        self._index = index
        self._clips = clips
        self._recordings = recordings
        self._base_url = base_url
        self._metrics = metrics
        self._tz = tz
        self._replies_queued = replies_queued
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._waiting: dict[str, dict[str, datetime]] = {}  # camera -> {clip id: window end}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._wait_started: dict[str, float] = {}
        self._active: dict[str, asyncio.Task[None]] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = False

    # -- intake ---------------------------------------------------------------------------------------------------

    def prepare(self, event: IncidentIn, *, topic_camera: str | None, topic: str, source: str) -> tuple[NewJob, Window]:
        """Validate an event into a job; raises ClipError with the code the sender will see."""
        camera_id = resolve_camera(event, topic_camera)
        window = incident_window(event, self._clips, self._tz)
        if not self._index.has_camera(camera_id):
            raise ClipError("unknown_camera", f"no recordings are known for camera {camera_id!r}")
        return (
            NewJob(
                clip_id=uuid.uuid4().hex[:16],
                dedupe_key=dedupe_key(event, camera_id, window, topic),
                event_id=event.event_id,
                camera_id=camera_id,
                incident=window.incident,
                window_start=window.start,
                window_end=window.end,
                metadata=event.metadata,
                source=source,
                # Footage for a window ending in the future cannot exist yet: the job waits from the start.
                status="waiting" if window.end > datetime.now(UTC) else "pending",
            ),
            window,
        )

    def accept(
        self, items: Sequence[tuple[NewJob, ReplyTarget | None]], redelivered: Sequence[bool] | None = None
    ) -> list[tuple[Job, bool]]:
        """Commit jobs (one transaction); start new ones; answer duplicates of finished ones at once.

        A broker redelivery (DUP) to a target the job already answers gets no second reply: after a crash between
        commit and PUBACK the resumed job may have finished, and replied, before the redelivery arrives.
        """
        results = self._store.submit_many(items)
        again = []
        for i, ((job, created, known), (_, target)) in enumerate(zip(results, items, strict=True)):
            if created and job.status == "waiting":
                self._park(job)
            elif created:
                self.enqueue(job.clip_id)
            elif job.finished and target is not None and not (known and redelivered and redelivered[i]):
                again.append((job.clip_id, target.topic, self.result(job), target.correlation))
        if again:
            self._store.queue_replies(again)
            self._replies_queued()
        return [(job, created) for job, created, _ in results]

    def result(self, job: Job) -> bytes:
        """The reply payload for a job as it is in the store."""
        return to_bytes(result_for(job, self._store.files_of(job.clip_id), self._base_url))

    # -- lifecycle ------------------------------------------------------------------------------------------------

    def start(self) -> int:
        """Resume what a crash or a stop left unfinished, then start the workers; returns how many were resumed."""
        resumed = 0
        for job in self._store.unfinished():
            if job.status == "processing":
                self._store.set_status(job.clip_id, "pending")
            self.enqueue(job.clip_id)
            resumed += 1
        self._workers = [
            asyncio.create_task(self._worker(), name=f"clip-worker-{i}") for i in range(self._clips.workers)
        ]
        return resumed

    async def stop(self, grace: float) -> None:
        """Stop taking jobs; let running clips finish within `grace`, else kill FFmpeg and requeue them."""
        self._stopping = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        active = list(self._active.values())
        if active:
            _, still = await asyncio.wait(active, timeout=grace)
            if still:
                killed = self._clipper.kill_running()
                logger.warning("grace period over: killed %d FFmpeg run(s); their jobs resume on next start", killed)
                await asyncio.wait(still, timeout=10)
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    def enqueue(self, clip_id: str) -> None:
        if self._stopping or clip_id in self._queued:
            return
        self._queued.add(clip_id)
        self._ready.put_nowait(clip_id)

    def footage_changed(self, cameras: set[str]) -> None:
        """File-system events for these cameras: jobs waiting on them whose window has ended look again (footage
        for a window still in the future cannot be complete; their timer wakes them at the window end)."""
        now = datetime.now(UTC)
        for camera in cameras:
            for clip_id, window_end in list(self._waiting.get(camera, {}).items()):
                if window_end <= now:
                    self._wake(camera, clip_id)

    @property
    def waiting(self) -> int:
        return sum(len(v) for v in self._waiting.values())

    # -- work -----------------------------------------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            clip_id = await self._ready.get()
            self._queued.discard(clip_id)
            if self._stopping:
                continue
            task = asyncio.create_task(self._process(clip_id))
            self._active[clip_id] = task
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                if not task.done():
                    raise
            except Exception:
                logger.exception("job %s: unexpected error", clip_id)
            finally:
                self._active.pop(clip_id, None)

    async def _process(self, clip_id: str) -> None:
        job = self._store.get(clip_id)
        if job is None or job.finished:
            return
        now = datetime.now(UTC)
        deadline = job.window_end + timedelta(seconds=self._clips.max_wait_seconds)
        if now < deadline:
            state = await asyncio.to_thread(self.readiness, job.camera_id, job.window_end, now)
            if not state.ready:
                until = min(deadline, state.recheck_at or deadline)
                self._wait(job, min(until, job.window_end) if job.window_end > now else until, now)
                return
        waited = self._wait_started.pop(clip_id, None)
        if waited is not None:
            self._metrics.clip_footage_wait.observe(max(0.0, asyncio.get_running_loop().time() - waited))
        self._store.set_status(clip_id, "processing", attempt=True)
        request = ClipRequest(
            clip_id=clip_id,
            camera_id=job.camera_id,
            window=Window(job.incident, job.window_start, job.window_end),
            event_id=job.event_id,
            metadata=job.metadata,
            source=job.source,
        )
        try:
            outcome = await asyncio.to_thread(self._clipper.make_clip, request)
        except ClipError as exc:
            if self._stopping and exc.code in ("ffmpeg_failed", "ffmpeg_timeout"):
                self._store.set_status(clip_id, "pending")  # killed by shutdown: resume on next start
                return
            if exc.retryable and job.attempts < self._clips.ffmpeg_retries:
                delay = 2.0**job.attempts
                logger.warning("job %s: %s; retry %d in %.0f s", clip_id, exc, job.attempts + 1, delay)
                self._store.set_status(clip_id, "pending")
                asyncio.get_running_loop().call_later(delay, self.enqueue, clip_id)
                return
            self._finish(job, None, exc)
        else:
            self._metrics.clip_ffmpeg.observe(outcome.ffmpeg_seconds)
            self._finish(job, outcome, None)

    def readiness(self, camera_id: str, window_end: datetime, now: datetime) -> Readiness:
        """Do complete segments reach the window end? (Runs in a thread: it may probe the newest segment.)"""
        if not self._index.has_camera(camera_id):
            return Readiness(True)  # the clip will fail with unknown_camera; nothing to wait for
        if self._index.first_at_or_after(camera_id, window_end) is not None:
            return Readiness(True)  # the recorder has moved past the window end, so the segment before is closed
        before = self._index.candidates(camera_id, window_end, window_end)
        if not before:
            return Readiness(False)
        newest = before[-1]
        # A recorder's newest file may already hold the window end (fMP4 and MPEG-TS are readable while they grow;
        # a plain MP4 has no index until it is closed, so its probe fails): probe it before waiting for it to settle.
        try:
            info = self._index.probe(newest)
            if newest.start + timedelta(seconds=info.duration) >= window_end:
                return Readiness(True)
        except ClipError:
            info = None
        settles = self._index.settles_at(newest)
        if settles is not None and now < settles:
            return Readiness(False, settles)
        if info is None:
            return Readiness(False)
        reach = newest.start + timedelta(seconds=info.duration + self._recordings.gap_tolerance_seconds)
        return Readiness(reach >= window_end)

    def _park(self, job: Job) -> None:
        """A new job whose window ends in the future: wait without a worker until its window end."""
        logger.info("job %s waiting for footage of %s until %s", job.clip_id, job.camera_id, job.window_end)
        self._wait(job, job.window_end, datetime.now(UTC))

    def _wait(self, job: Job, until: datetime, now: datetime) -> None:
        loop = asyncio.get_running_loop()
        if job.status != "waiting":
            self._store.set_status(job.clip_id, "waiting")
            logger.info("job %s waiting for footage of %s until %s", job.clip_id, job.camera_id, job.window_end)
        self._wait_started.setdefault(job.clip_id, loop.time())
        self._waiting.setdefault(job.camera_id, {})[job.clip_id] = job.window_end
        old = self._timers.pop(job.clip_id, None)
        if old is not None:
            old.cancel()
        delay = max(0.0, (until - now).total_seconds()) + 0.01
        self._timers[job.clip_id] = loop.call_later(delay, self._wake, job.camera_id, job.clip_id)

    def _wake(self, camera: str, clip_id: str) -> None:
        waiting = self._waiting.get(camera)
        if waiting is not None:
            waiting.pop(clip_id, None)
            if not waiting:
                del self._waiting[camera]
        timer = self._timers.pop(clip_id, None)
        if timer is not None:
            timer.cancel()
        self.enqueue(clip_id)

    def _finish(self, job: Job, outcome: ClipOutcome | None, error: ClipError | None) -> None:
        stamp = now_iso()
        status: str
        if outcome is not None:
            status = outcome.status
            files = [StoredFile(outcome.video_path.name, job.clip_id, "video", outcome.video_path, _size(outcome))]
            files += [
                StoredFile(p.name, job.clip_id, fmt, p, p.stat().st_size) for fmt, p in outcome.annotation_paths.items()
            ]
            record = outcome.record
        else:
            status, files, record = "failed", [], None
        done = dataclasses.replace(
            job,
            status=status,
            result=record,
            error_code=error.code if error else None,
            error_message=error.message if error else None,
            completed_at=stamp,
        )
        payload = to_bytes(result_for(done, files, self._base_url))
        self._store.finish(
            job.clip_id,
            status=status,
            result=record,
            error=error,
            files=files,
            reply_payload=payload,
            completed_at=stamp,
        )
        self._metrics.clip_requests.labels(camera=job.camera_id, status=status).inc()
        if error is not None:
            self._metrics.clip_errors.labels(type=error.code).inc()
            logger.warning("job %s failed: %s", job.clip_id, error)
        else:
            logger.info("job %s %s: %s", job.clip_id, status, outcome.video_path.name if outcome else "")
        created = datetime.fromisoformat(job.created_at.replace("Z", "+00:00"))
        self._metrics.clip_latency.observe(max(0.0, (datetime.now(UTC) - created).total_seconds()))
        self._replies_queued()


def _size(outcome: ClipOutcome) -> int:
    return int(outcome.record["file_size"])
