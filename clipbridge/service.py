"""The one process: MQTT bridge, clip workers, recordings watcher and HTTP side-app; start and graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Generator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import uvicorn

from clipbridge.bridge.client import MqttBridge
from clipbridge.bridge.intake import Intake
from clipbridge.bridge.outbox import OutboxPublisher
from clipbridge.config import Config
from clipbridge.errors import ClipError
from clipbridge.handlers.clipper import Clipper
from clipbridge.handlers.ffmpeg import resolve_ffmpeg
from clipbridge.handlers.index import RecordingsIndex
from clipbridge.handlers.jobs import JobRunner
from clipbridge.handlers.retention import retention_loop
from clipbridge.handlers.store import Store
from clipbridge.handlers.watcher import watch_recordings
from clipbridge.metrics import Metrics

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 20.0
OUTBOX_FLUSH_SECONDS = 5.0


@dataclass
class Components:
    """What the HTTP side-app and the health check look at."""

    config: Config
    store: Store
    index: RecordingsIndex
    clipper: Clipper
    runner: JobRunner
    metrics: Metrics
    ffmpeg: str
    bridge: MqttBridge | None = None


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # Signals belong to the service's own shutdown sequence, not to uvicorn (which would re-raise them).
        yield


def run_service(config: Config) -> int:
    asyncio.run(_main(config))
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


async def _main(config: Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(config, stop)


async def serve(config: Config, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    # Bind first: a port in use is a startup error, not a service running without its side-app.
    sock = _listen(config.http.host, config.http.port) if config.http.enabled else None
    metrics = Metrics()
    store = Store(path=config.store.path)
    store.open()
    index = RecordingsIndex(config=config.recordings)
    found = await asyncio.to_thread(index.scan)
    logger.info("recordings index: %d segments, cameras %s", found, ", ".join(index.cameras()) or "none")
    ffmpeg = resolve_ffmpeg(config.clips.ffmpeg)
    clipper = Clipper(index=index, clips=config.clips, recordings=config.recordings, ffmpeg=ffmpeg)
    if removed := clipper.remove_temp_files():
        logger.info("removed %d temporary file(s) left by an interrupted FFmpeg run", removed)

    publisher: OutboxPublisher | None = None

    def replies_queued() -> None:
        if publisher is not None:
            publisher.wake()

    runner = JobRunner(
        store=store,
        clipper=clipper,
        index=index,
        clips=config.clips,
        recordings=config.recordings,
        base_url=config.http.public_base_url,
        metrics=metrics,
        tz=ZoneInfo(config.recordings.sources[0].timezone),
        replies_queued=replies_queued,
    )
    parts = Components(config, store, index, clipper, runner, metrics, ffmpeg)
    metrics.bind(queue_depth=store.count_unfinished, outbox_pending=store.count_unsent)
    metrics.init_labels(index.cameras())

    tasks: list[asyncio.Task[None]] = []
    intake_task: asyncio.Task[None] | None = None
    if config.mqtt.enabled:
        intake_holder: list[Intake] = []

        def on_connection(connected: bool) -> None:
            metrics.mqtt_connected.set(1 if connected else 0)
            if publisher is not None:
                publisher.on_connection(connected)

        bridge = MqttBridge(
            config=config.mqtt,
            loop=loop,
            on_message=lambda msg: intake_holder[0].put(msg),
            on_connection=on_connection,
            on_puback=lambda mid, ok: publisher.on_puback(mid, ok) if publisher else None,
        )
        publisher = OutboxPublisher(store=store, bridge=bridge)
        intake = Intake(
            runner=runner,
            store=store,
            bridge=bridge,
            config=config.mqtt,
            metrics=metrics,
            max_backlog=config.clips.max_backlog,
            replies_queued=replies_queued,
        )
        intake_holder.append(intake)
        parts.bridge = bridge
        tasks.append(asyncio.create_task(publisher.run(), name="outbox"))
        intake_task = asyncio.create_task(intake.run(), name="intake")

    watch_stop = asyncio.Event()
    tasks.append(
        asyncio.create_task(
            watch_recordings(
                index, runner.footage_changed, watch_stop, rescan_seconds=config.recordings.rescan_seconds
            ),
            name="watcher",
        )
    )
    tasks.append(asyncio.create_task(retention_loop(store, config.retention, metrics, watch_stop), name="retention"))
    server: _Server | None = None
    if config.http.enabled:
        from clipbridge.http.app import create_app

        server = _Server(
            uvicorn.Config(
                create_app(parts), host=config.http.host, port=config.http.port, log_config=None, access_log=False
            )
        )
        assert sock is not None
        tasks.append(asyncio.create_task(server.serve(sockets=[sock]), name="http"))

    for task in [*tasks, *([intake_task] if intake_task else [])]:
        task.add_done_callback(_report_death)
    resumed = runner.start()
    if resumed:
        logger.info("resumed %d unfinished job(s)", resumed)
    if parts.bridge is not None:
        parts.bridge.start()
    where = f" (HTTP on http://{config.http.host}:{config.http.port})" if config.http.enabled else ""
    logger.info("clipbridge running%s", where)

    await stop.wait()
    logger.info("shutting down: intake stops, running clips get %.0f s to finish", SHUTDOWN_GRACE_SECONDS)
    # Stop intake first: unacknowledged messages stay with the broker (redelivered to the next session, deduplicated).
    if intake_task is not None:
        intake_task.cancel()
        await asyncio.gather(intake_task, return_exceptions=True)
    await runner.stop(SHUTDOWN_GRACE_SECONDS)
    watch_stop.set()
    if publisher is not None:
        flushed = await publisher.flush(OUTBOX_FLUSH_SECONDS)
        if not flushed:
            logger.warning("%d repl(ies) not yet acknowledged; they are sent after restart", store.count_unsent())
    if parts.bridge is not None:
        parts.bridge.stop()
    if server is not None:
        server.should_exit = True
    for task in tasks:
        if task.get_name() != "http":
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    store.close()
    logger.info("clipbridge stopped")
