"""Clip jobs: admitted from MQTT or REST, claimed by a bounded pool of workers, cut, answered.

Statuses: pending -> (waiting ->) processing -> done | partial | failed. Workers claim jobs from the store (the
oldest due pending job of a camera this instance records, or one whose lease expired because its instance died)
and renew the lease while they cut; with one instance the claim simply never meets a competitor. A job whose
footage is not complete yet is parked (waiting.py) and holds no worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from clipbridge.config import ClipsConfig, InstanceConfig, RecordingsConfig
from clipbridge.errors import ClipError, retry_delay
from clipbridge.faults import pause_point
from clipbridge.handlers.clipper import ClipOutcome, Clipper
from clipbridge.handlers.incident import IncidentIn, dedupe_key, incident_window, resolve_camera
from clipbridge.handlers.index import RecordingsIndex
from clipbridge.handlers.instances import Membership
from clipbridge.handlers.replies import Links, result_for, to_bytes
from clipbridge.handlers.storage.base import ClipStorage
from clipbridge.handlers.storage.local import LocalStorage
from clipbridge.handlers.store import Admission, Admitted, Hook, Reply, Store
from clipbridge.handlers.waiting import FootageWaits, readiness
from clipbridge.handlers.webhooks import Webhooks
from clipbridge.metrics import Metrics
from clipbridge.model import ErrorInfo, Job, JobStatus, NewJob, StoredFile

logger = logging.getLogger(__name__)


class JobRunner:
    def __init__(
        self,
        *,
        store: Store,
        clipper: Clipper,
        index: RecordingsIndex,
        clips: ClipsConfig,
        recordings: RecordingsConfig,
        instance: InstanceConfig,
        membership: Membership,
        links: Links,
        metrics: Metrics,
        replies: asyncio.Event,
        storage: ClipStorage | None = None,
        webhooks: Webhooks | None = None,
    ) -> None:
        self._store = store
        self._clipper = clipper
        self._storage = storage or LocalStorage(clips.output_dir)
        self._index = index
        self._clips = clips
        self._recordings = recordings
        self._instance = instance
        self._me = instance.id
        self._membership = membership
        self._links = links
        self._metrics = metrics
        self._replies = replies  # set whenever replies were queued: the outbox publisher waits on it
        self.webhooks = webhooks or Webhooks([])
        # Told (camera_id, reply payload) after a job of this instance finished (Home Assistant's last clip).
        self.finished_listeners: list[Callable[[str, bytes], None]] = []
        self._more = asyncio.Event()  # set when there may be work to claim
        self._waits = FootageWaits(wake=self._wake)
        self._active: dict[str, asyncio.Task[None]] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = False
        self._draining = False
        self._store_down = False

    # -- intake ---------------------------------------------------------------------------------------------------

    def prepare(self, event: IncidentIn, *, topic_camera: str | None, topic: str, source: str) -> NewJob:
        """Validate an event into a job; raises ClipError with the code the sender will see."""
        camera_id = resolve_camera(event, topic_camera)
        if self._index.has_camera(camera_id):
            zone = self._index.timezone_of(camera_id)
        elif (elsewhere := self._membership.zone_of(camera_id)) is not None:
            zone = ZoneInfo(elsewhere)  # another instance records this camera: it will cut the clip
        elif not self._index.ready:
            zone = self._index.timezone_of(camera_id)  # the start-up walk may still find it: the job waits for it
        else:
            raise ClipError("unknown_camera", f"no recordings are known for camera {camera_id!r}")
        window = incident_window(event, self._clips, zone)
        return NewJob(
            clip_id=uuid.uuid4().hex[:16],
            dedupe_key=dedupe_key(event, camera_id, window, topic),
            event_id=event.event_id,
            camera_id=camera_id,
            window=window,
            metadata=event.metadata,
            source=source,
            # Footage for a window ending in the future cannot exist yet: the job waits from the start.
            status="waiting" if window.end > datetime.now(UTC) else "pending",
        )

    async def admit(self, admissions: Sequence[Admission], rejections: Sequence[Reply] = ()) -> list[Admitted]:
        """Commit an intake batch in one transaction, then start the new jobs; raises ClipError(storage_error)."""
        if self._draining and admissions:
            raise ClipError("shutting_down", "clipbridge is shutting down and takes no new jobs; retry shortly")
        results = await self._store.admit(admissions, rejections, self._reply_for)
        for admitted in results:
            if admitted.created and admitted.job.status == "waiting" and self._records(admitted.job.camera_id):
                self._waits.park(admitted.job, admitted.job.window.end)
            elif admitted.created:
                self._more.set()
        self._replies.set()
        return results

    async def expiry_hooks(self, clip_id: str) -> tuple[Hook, ...]:
        """The webhook deliveries that report a clip's expiry (retention queues them with it)."""
        job = await self._store.get(clip_id)
        if job is None:
            return ()
        return self.webhooks.hooks("expired", self._reply_for(dataclasses.replace(job, status="expired"), []), clip_id)

    async def result(self, job: Job) -> bytes:
        """The reply payload for a job as it is in the store."""
        return self._reply_for(job, await self._store.files_of(job.clip_id))

    def _reply_for(self, job: Job, files: list[StoredFile]) -> bytes:
        return to_bytes(result_for(job, files, self._links))

    async def busy(self) -> int:
        """Jobs that need a worker now (pending, processing); the intake holds its acks past clips.max_backlog."""
        return await self._store.count_busy()

    @property
    def clips(self) -> ClipsConfig:
        return self._clips

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def waiting(self) -> int:
        return len(self._waits)

    def begin_drain(self) -> None:
        """Shutdown has begun: new submissions are refused (REST answers 503); running work continues."""
        self._draining = True

    # -- lifecycle ------------------------------------------------------------------------------------------------

    async def start(self) -> int:
        """Release what a previous life of this instance held, park its cameras' waiting jobs, start the workers;
        returns how many running jobs were released."""
        released = await self._store.recover(self._me)
        await self.sync_waiting()
        self._workers = [
            asyncio.create_task(self._worker(), name=f"clip-worker-{i}") for i in range(self._clips.workers)
        ]
        self._more.set()
        return released

    async def stop(self, grace: float) -> None:
        """Stop claiming; let running clips finish within `grace`, else kill FFmpeg (their jobs are released)."""
        self._draining = self._stopping = True
        self._waits.cancel()
        self._more.set()
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

    def poke(self) -> None:
        """Another instance admitted or released work (a notification): look for it."""
        self._more.set()

    async def sync_waiting(self) -> None:
        """Park the waiting jobs of this instance's cameras it does not know of yet (admitted elsewhere, or before
        a restart)."""
        for job in await self._store.waiting(self._cameras()):
            if job.clip_id not in self._waits:
                self._waits.park(job, job.window.end)

    def footage_changed(self, cameras: set[str]) -> None:
        self._waits.footage_changed(cameras)

    def waiting_cameras(self) -> set[str]:
        return self._waits.cameras()

    def _records(self, camera_id: str) -> bool:
        return self._index.has_camera(camera_id) or not self._index.ready

    def _cameras(self) -> list[str] | None:
        """Camera affinity: with a shared store an instance claims only jobs of cameras its recordings index has;
        alone it takes every job (one of a camera that has vanished fails with unknown_camera, as it should)."""
        return self._index.cameras() if self._store.shared else None

    async def _wake(self, clip_id: str) -> None:
        try:
            await self._store.wake([clip_id])
        except ClipError as exc:
            logger.error("job %s could not be woken (%s); the workers' poll picks it up", clip_id, exc.message)
        self._more.set()

    # -- work -----------------------------------------------------------------------------------------------------

    async def _worker(self) -> None:
        while not self._stopping:
            self._more.clear()
            try:
                job = await self._store.claim(self._me, self._cameras(), self._instance.lease_seconds)
                if self._store_down:
                    logger.info("the job store is back: workers resume")
                self._store_down = False
            except ClipError as exc:
                if not self._store_down:
                    logger.error("workers paused: %s", exc.message)
                self._store_down = True
                job = None
            if job is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._more.wait(), timeout=self._instance.poll_seconds)
                continue
            task = asyncio.create_task(self._process(job))
            self._active[job.clip_id] = task
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                if not task.done():
                    raise
            except Exception:
                logger.exception("job %s: unexpected error", job.clip_id)
            finally:
                self._active.pop(job.clip_id, None)

    async def _process(self, job: Job) -> None:
        now = datetime.now(UTC)
        if not self._index.ready:  # the start-up walk is running: the end of the walk wakes the job
            await self._store.release(job.clip_id, self._me, status="waiting")
            self._waits.park(job, job.window.end if job.window.end > now else now + timedelta(hours=1))
            if self._index.ready:  # the walk ended while the job was released: its wake-up call has passed
                self._waits.footage_changed({job.camera_id})
            return
        deadline = job.window.end + timedelta(seconds=self._clips.max_wait_seconds)
        if now < deadline:
            state = await asyncio.to_thread(
                readiness, self._index, self._recordings, job.camera_id, job.window.end, now
            )
            if not state.ready:
                await self._store.release(job.clip_id, self._me, status="waiting")
                until = min(deadline, state.recheck_at or deadline)
                self._waits.park(job, min(until, job.window.end) if job.window.end > now else until)
                return
        if (waited := self._waits.waited(job.clip_id)) is not None:
            self._metrics.clip_footage_wait.observe(waited)
        renewing = asyncio.create_task(self._renew(job.clip_id))
        try:
            outcome = await asyncio.to_thread(self._clipper.make_clip, job)
            outcome = await self._keep(job, outcome)
        except ClipError as exc:
            await self._failed(job, exc)
        else:
            self._metrics.clip_ffmpeg.observe(outcome.ffmpeg_seconds)
            self._metrics.clip_cut_path.labels(path=outcome.cut_path, reason=outcome.cut_reason).inc()
            await self._finish(job, outcome, None)
        finally:
            renewing.cancel()

    async def _keep(self, job: Job, outcome: ClipOutcome) -> ClipOutcome:
        """Hand the files to the clip storage (S3: uploaded and verified); on failure none of them stays."""
        try:
            files = await asyncio.to_thread(self._storage.keep, job, outcome.files)
        except ClipError:
            for f in outcome.files:
                f.path.unlink(missing_ok=True)
            raise
        pause_point("storage_before_commit")
        return dataclasses.replace(outcome, files=files)

    async def _failed(self, job: Job, exc: ClipError) -> None:
        if self._stopping and exc.code in ("ffmpeg_failed", "ffmpeg_timeout"):
            await self._store.release(job.clip_id, self._me, status="pending")  # killed by shutdown: resume later
            return
        tried = job.attempts - 1  # attempts counts this one
        if exc.retryable and tried < self._clips.ffmpeg_retries:
            delay = retry_delay(tried, first=1.0, cap=60.0)
            logger.warning("job %s: %s; retry %d in %.0f s", job.clip_id, exc, tried + 1, delay)
            await self._store.release(job.clip_id, self._me, status="pending", delay_seconds=delay)
            asyncio.get_running_loop().call_later(delay, self._more.set)
            return
        await self._finish(job, None, exc)

    async def _renew(self, clip_id: str) -> None:
        """Keep the claim while the clip is cut; a lost claim (taken over) is reported, and the finish refused."""
        every = self._instance.lease_seconds / 3
        while True:
            await asyncio.sleep(every)  # sleep-ok: the lease renewal period
            try:
                if not await self._store.renew(clip_id, self._me, self._instance.lease_seconds):
                    logger.warning("job %s was taken over by another instance; this cut will be discarded", clip_id)
                    return
            except ClipError as exc:
                logger.error("job %s: lease not renewed (%s)", clip_id, exc.message)

    async def _finish(self, job: Job, outcome: ClipOutcome | None, error: ClipError | None) -> None:
        stamp = datetime.now(UTC)
        status: JobStatus = outcome.status if outcome is not None else "failed"
        files = list(outcome.files) if outcome is not None else []
        record = outcome.record if outcome is not None else None
        done = dataclasses.replace(
            job,
            status=status,
            record=record,
            error=ErrorInfo(error.code, error.message) if error else None,
            completed_at=stamp,
        )
        payload = self._reply_for(done, [dataclasses.replace(f, instance_id=self._me) for f in files])
        hooks = self.webhooks.hooks(status, payload, job.clip_id)
        attempt = 0
        while True:
            try:
                kept = await self._store.finish(job.clip_id, self._me, status=status, record=record, error=error,
                                                files=files, reply_payload=payload, completed_at=stamp,
                                                hooks=hooks)  # fmt: skip
                break
            except ClipError as exc:  # the store is down: the clip is made; keep it and commit when it is back
                delay = retry_delay(attempt, first=0.5, cap=10.0)
                logger.error("job %s: cannot record the result (%s); retrying in %.1f s", job.clip_id, exc, delay)
                await asyncio.sleep(delay)  # sleep-ok: backoff while the store is unreachable
                attempt += 1
        if not kept:
            logger.warning("job %s was finished by another instance; discarding this cut", job.clip_id)
            await asyncio.to_thread(self._storage.discard, files)
            return
        self._metrics.clip_requests.labels(camera=job.camera_id, status=status).inc()
        if error is not None:
            self._metrics.clip_errors.labels(type=error.code).inc()
            logger.warning("job %s failed: %s", job.clip_id, error)
        else:
            logger.info("job %s %s: %s", job.clip_id, status, outcome.video_path.name if outcome else "")
        self._metrics.clip_latency.observe(max(0.0, (stamp - job.created_at).total_seconds()))
        self._replies.set()
        if hooks:
            self.webhooks.queued.set()
        for listener in self.finished_listeners:
            try:
                listener(job.camera_id, payload)
            except Exception:
                logger.exception("job %s: a finish listener failed", job.clip_id)
