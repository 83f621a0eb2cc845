"""The one lifecycle: `Service.startup()` builds the parts in dependency order, `shutdown()` stops them in reverse.

As uvicorn's server does: construction stores the config, `startup()` does the side effects, the first SIGTERM or
SIGINT begins a graceful shutdown and a second one forces the exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
from collections.abc import Generator
from dataclasses import dataclass

import uvicorn

from clipbridge.bridge.client import MqttBridge
from clipbridge.bridge.homeassistant import HomeAssistant, recorder_alive
from clipbridge.bridge.intake import Intake
from clipbridge.bridge.outbox import OutboxPublisher
from clipbridge.config import Config
from clipbridge.errors import ClipError
from clipbridge.handlers.clipper import Clipper
from clipbridge.handlers.ffmpeg import resolve_ffmpeg
from clipbridge.handlers.index import RecordingsIndex
from clipbridge.handlers.instances import Membership
from clipbridge.handlers.jobs import JobRunner
from clipbridge.handlers.replies import HttpLinks
from clipbridge.handlers.retention import retention_loop
from clipbridge.handlers.storage import ClipStorage, make_storage
from clipbridge.handlers.store import Store, make_store
from clipbridge.handlers.watcher import watch_recordings
from clipbridge.handlers.webhooks import Webhooks, WebhookSender
from clipbridge.http.app import create_app
from clipbridge.metrics import Metrics

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 20.0  # running FFmpeg jobs get this long to finish
OUTBOX_FLUSH_SECONDS = 5.0
HTTP_GRACE_SECONDS = 5  # open downloads get this long before their connections are closed


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # Signals belong to the service's own shutdown sequence, not to uvicorn (which would re-raise them).
        yield


@dataclass
class _Running:
    """What startup() built; shutdown() takes it apart."""

    store: Store
    clipper: Clipper
    runner: JobRunner
    membership: Membership
    bridge: MqttBridge | None
    outbox: OutboxPublisher | None
    intake: asyncio.Task[None] | None
    server: _Server | None
    tasks: list[asyncio.Task[None]]
    stop_background: asyncio.Event


class Service:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.should_exit = asyncio.Event()
        self._signals = 0
        self._running: _Running | None = None

    async def serve(self) -> None:
        with self.capture_signals():
            await self.startup()
            try:
                await self.should_exit.wait()
            finally:
                await self.shutdown()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.handle_exit, sig)
        try:
            yield
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    def handle_exit(self, sig: int) -> None:
        """First signal: graceful shutdown. Second: kill what runs and leave now (jobs resume at the next start)."""
        self._signals += 1
        if self._signals == 1:
            self.should_exit.set()
            return
        logger.warning("second %s: forcing exit without waiting", signal.Signals(sig).name)
        if self._running is not None:
            self._running.clipper.kill_running()
        logging.shutdown()
        os._exit(1)

    async def startup(self) -> None:
        config = self.config
        loop = asyncio.get_running_loop()
        # Bind first: a port in use is a startup error, not a service running without its side-app.
        sock = _listen(config.http.host, config.http.port) if config.http.enabled else None
        metrics = Metrics()
        store = make_store(config)
        await store.open()
        logger.info("job store: %s (%s)", store.describe(), "shared" if store.shared else "this instance only")
        index = RecordingsIndex(config=config.recordings)
        metrics.bind_index(lambda: (index.status.walks, index.folders_listed))
        ffmpeg = resolve_ffmpeg(config.clips.ffmpeg)
        clipper = Clipper(index=index, clips=config.clips, recordings=config.recordings, ffmpeg=ffmpeg)
        if removed := clipper.remove_temp_files():
            logger.info("removed %d temporary file(s) left by an interrupted FFmpeg run", removed)
        me = config.instance.id
        membership = Membership(
            store=store,
            instance_id=me,
            base_url=config.public_url,
            cameras=lambda: {c: str(index.timezone_of(c)) for c in index.cameras()},
            every=config.instance.heartbeat_seconds,
        )
        storage = make_storage(config)
        await asyncio.to_thread(_check_storage, storage)
        replies = asyncio.Event()  # set when replies were queued; the outbox publishes them
        signing_key = await _signing_key(config, store)
        links = HttpLinks(config.public_url, presign=storage.presign, signing_key=signing_key,
                          ttl_seconds=config.http.link_ttl_seconds)  # fmt: skip
        webhooks = Webhooks(config.webhooks)
        runner = JobRunner(store=store, clipper=clipper, index=index, clips=config.clips, recordings=config.recordings,
                           instance=config.instance, membership=membership, links=links, metrics=metrics,
                           replies=replies, storage=storage, webhooks=webhooks)  # fmt: skip
        mqtt = config.mqtt
        if store.shared:  # each instance has its own broker session (and status topic)
            mqtt = mqtt.model_copy(update={"client_id": f"{mqtt.client_id}-{me}"})
        bridge = MqttBridge(config=mqtt, loop=loop) if mqtt.enabled else None
        if bridge is not None:
            metrics.bind(mqtt_connected=lambda: 1.0 if bridge.connected else 0.0)

        stop_background = asyncio.Event()
        walked = asyncio.Event()
        watcher = watch_recordings(index, runner.footage_changed, stop_background, config=config.recordings,
                                   walked=walked, hurry=runner.waiting_cameras)  # fmt: skip
        tasks = [
            asyncio.create_task(watcher, name="watcher"),
            asyncio.create_task(
                retention_loop(
                    store,
                    storage,
                    config.retention,
                    metrics,
                    stop_background,
                    instance=me,
                    expiry_hooks=runner.expiry_hooks if config.webhooks else None,
                ),
                name="retention",
            ),
            asyncio.create_task(_follow(store, runner, replies), name="notifications"),
        ]
        if config.webhooks:
            sender = WebhookSender(store=store, configs=config.webhooks, metrics=metrics, instance=me,
                                   queued=webhooks.queued, poll=config.instance.poll_seconds)  # fmt: skip
            tasks.append(asyncio.create_task(sender.run(), name="webhooks"))
        outbox = intake = None
        if bridge is not None:
            outbox = OutboxPublisher(store=store, bridge=bridge, replies=replies, instance=me,
                                     poll=config.instance.poll_seconds)  # fmt: skip
            consumer = Intake(runner=runner, bridge=bridge, config=mqtt, metrics=metrics,
                              max_backlog=config.clips.max_backlog, copies_elsewhere=store.shared)  # fmt: skip
            tasks.append(asyncio.create_task(outbox.run(), name="outbox"))
            intake = asyncio.create_task(consumer.run(), name="intake")
            if config.homeassistant.discovery:
                ha = HomeAssistant(config=config.homeassistant, mqtt_config=mqtt, bridge=bridge, store=store,
                                   cameras=index.cameras, result=runner.result,
                                   alive=recorder_alive(index, config.homeassistant.stale_seconds))  # fmt: skip
                runner.finished_listeners.append(ha.clip_finished)
                tasks.append(asyncio.create_task(ha.run(stop_background), name="homeassistant"))
        server = None
        if sock is not None:
            app = create_app(config=config, store=store, runner=runner, index=index, metrics=metrics, links=links,
                             ffmpeg=ffmpeg, broker=bridge, membership=membership, storage=storage,
                             signing_key=signing_key)  # fmt: skip
            server = _Server(
                uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=HTTP_GRACE_SECONDS)
            )
            tasks.append(asyncio.create_task(server.serve(sockets=[sock]), name="http"))
        walk = _first_walk(index, runner, membership, metrics, walked, stop_background)
        tasks.append(asyncio.create_task(walk, name="walk"))
        for task in [*tasks, *([intake] if intake else [])]:
            task.add_done_callback(_report_death)
        self._running = _Running(store, clipper, runner, membership, bridge, outbox, intake, server, tasks,
                                 stop_background)  # fmt: skip

        if released := await runner.start():
            logger.info("released %d job(s) a previous run of instance %s was cutting; they resume", released, me)
        if bridge is not None:
            bridge.start()
        where = f" (HTTP on http://{config.http.host}:{config.http.port})" if sock is not None else ""
        logger.info("clipbridge running%s as instance %s", where, me)

    async def shutdown(self) -> None:
        r = self._running
        if r is None:
            return
        logger.info("shutting down: intake stops, running clips get %.0f s to finish", SHUTDOWN_GRACE_SECONDS)
        # Stop intake first: unacknowledged messages stay with the broker (redelivered to the next session, deduplicated).
        if r.intake is not None:
            r.intake.cancel()
            await asyncio.gather(r.intake, return_exceptions=True)
        r.runner.begin_drain()  # REST submissions now answer 503
        await r.runner.stop(SHUTDOWN_GRACE_SECONDS)
        r.stop_background.set()
        if r.outbox is not None and not await r.outbox.flush(OUTBOX_FLUSH_SECONDS):
            logger.warning("replies not yet acknowledged are sent after restart (or by another instance)")
        await r.membership.leave()  # peers may take over this instance's unsent replies at once
        if r.bridge is not None:
            r.bridge.stop()
        if r.server is not None:
            r.server.should_exit = True  # uvicorn closes open downloads after HTTP_GRACE_SECONDS
        for task in r.tasks:
            if task.get_name() != "http":
                task.cancel()
        await asyncio.gather(*r.tasks, return_exceptions=True)
        await r.store.close()
        self._running = None
        logger.info("clipbridge stopped")


async def _first_walk(index: RecordingsIndex, runner: JobRunner, membership: Membership, metrics: Metrics,
                      walked: asyncio.Event, stop: asyncio.Event) -> None:  # fmt: skip
    """The start-up walk, while intake and REST already answer; then the jobs that waited for it look again, and
    the heartbeat starts (peers learn this instance's cameras only once it knows them)."""
    found = await asyncio.to_thread(index.scan)
    logger.info("recordings index: %d segments, cameras %s", found, ", ".join(index.cameras()) or "none")
    metrics.init_labels(index.cameras())
    walked.set()
    runner.footage_changed(set(index.cameras()) | runner.waiting_cameras())
    await membership.run(stop)


async def _follow(store: Store, runner: JobRunner, replies: asyncio.Event) -> None:
    """What other instances did (PostgreSQL's notifications): new work to claim or park, replies to send."""
    async for notice in store.notifications():
        if notice == "jobs":
            runner.poke()
            with contextlib.suppress(ClipError):
                await runner.sync_waiting()
        else:
            replies.set()
            runner.webhooks.queued.set()  # deliveries are queued in the same transactions as replies


def run_service(config: Config) -> int:
    asyncio.run(Service(config).serve())
    return 0


def _report_death(task: asyncio.Task[None]) -> None:
    """A background task must not end quietly: say so loudly (the process stays up for the other parts)."""
    if not task.cancelled() and task.exception() is not None:
        logger.error("background task %s died", task.get_name(), exc_info=task.exception())


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ClipError("config_error", f"the HTTP side-app cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _check_storage(storage: ClipStorage) -> None:
    """Say at start where clips go and whether it answers; a bucket that does not is not fatal (it may come back:
    jobs fail with storage_error meanwhile and /health shows it)."""
    state = storage.check()
    if state["ok"]:
        logger.info("clip storage: %s", ", ".join(f"{k}={v}" for k, v in state.items() if k != "ok"))
    else:
        logger.error("clip storage %s does not answer: %s", state["backend"], state.get("error"))
    if state["ok"]:
        try:
            if removed := storage.tidy():
                logger.info("clip storage: removed %d upload(s) an interrupted run left open", removed)
        except ClipError as exc:
            logger.warning("could not look for interrupted uploads: %s", exc.message)


async def _signing_key(config: Config, store: Store) -> bytes:
    """`http.signing_key`, else the one kept in the store (made by the first instance that needed it)."""
    if config.http.signing_key is not None:
        return config.http.signing_key.get_secret_value().encode()
    return bytes.fromhex(await store.secret("link_signing_key", secrets.token_hex(32)))
