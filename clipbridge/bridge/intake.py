"""Incident messages in: validate, commit the job (or the rejection) to the store, then acknowledge."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from clipbridge.bridge.client import Incoming, MqttBridge
from clipbridge.config import MqttConfig
from clipbridge.errors import ClipError
from clipbridge.faults import pause_point
from clipbridge.handlers.incident import decode_payload
from clipbridge.handlers.jobs import JobRunner
from clipbridge.handlers.results import rejection, result_for, to_bytes
from clipbridge.handlers.store import NewJob, ReplyTarget, Store
from clipbridge.metrics import Metrics

logger = logging.getLogger(__name__)


def topic_matches(filter_: str, topic: str) -> list[str] | None:
    """The levels matched by `+` wildcards if `topic` matches `filter_`, else None."""
    f, t = filter_.split("/"), topic.split("/")
    plus: list[str] = []
    for i, level in enumerate(f):
        if level == "#":
            return plus
        if i >= len(t):
            return None
        if level == "+":
            plus.append(t[i])
        elif level != t[i]:
            return None
    return plus if len(f) == len(t) else None


def publishable(topic: str | None) -> bool:
    return bool(topic) and not (set(topic or "") & {"#", "+", "\x00"}) and not (topic or "").startswith("$")


class Intake:
    """Consumes the queue paho's thread fills; one store transaction per batch, then the batch's PUBACKs."""

    def __init__(
        self,
        *,
        runner: JobRunner,
        store: Store,
        bridge: MqttBridge,
        config: MqttConfig,
        metrics: Metrics,
        max_backlog: int,
        replies_queued: Callable[[], None],
    ) -> None:
        self._runner = runner
        self._store = store
        self._bridge = bridge
        self._config = config
        self._metrics = metrics
        self._max_backlog = max_backlog
        self._replies_queued = replies_queued
        self.queue: asyncio.Queue[Incoming] = asyncio.Queue()

    def put(self, msg: Incoming) -> None:
        self.queue.put_nowait(msg)

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty() and len(batch) < 500:
                batch.append(self.queue.get_nowait())
            pause_point("intake_before_commit")
            await self._commit_with_retry(batch)
            pause_point("intake_before_ack")
            # Backpressure: with too many jobs needing a worker, hold the acks; the broker keeps the rest of the backlog
            # (at most ReceiveMaximum messages are ever in flight to us). Jobs waiting for live footage hold no worker.
            while self._store.count_busy() > self._max_backlog:
                await asyncio.sleep(0.5)  # sleep-ok: polling the backlog level, not synchronising
            for msg in batch:
                self._bridge.ack(msg)

    async def _commit_with_retry(self, batch: Sequence[Incoming]) -> None:
        delay = 0.5
        while True:
            try:
                self._commit(batch)
                return
            except ClipError as exc:  # the store cannot write: never ack, never drop; try again
                logger.error("cannot commit %d incoming message(s): %s; retrying in %.1f s", len(batch), exc, delay)
                await asyncio.sleep(delay)  # sleep-ok: backoff while the disk is unwritable
                delay = min(delay * 2, 10.0)
            except Exception:
                # A bug must not stop the consumer: isolate the message that triggers it and answer it.
                logger.exception("unexpected error in a batch of %d; handling its messages one by one", len(batch))
                try:
                    for msg in batch:
                        try:
                            self._commit([msg])
                        except ClipError:
                            raise  # the store: retry the batch (what was committed is deduplicated)
                        except Exception as exc:
                            logger.exception("message on %s could not be handled", msg.topic)
                            self._reject_unexpected(msg, exc)
                    return
                except ClipError as exc:
                    logger.error("cannot commit: %s; retrying in %.1f s", exc, delay)
                    await asyncio.sleep(delay)  # sleep-ok: backoff while the disk is unwritable
                    delay = min(delay * 2, 10.0)

    def _reject_unexpected(self, msg: Incoming, exc: Exception) -> None:
        error = ClipError(
            "internal_error", f"clipbridge could not handle this event ({type(exc).__name__}); see its log"
        )
        target = self._error_target(msg, None)
        try:
            self._store.queue_reply(target.topic, to_bytes(rejection(error)), target.correlation)
        except ClipError:
            logger.error("could not even store the rejection for a message on %s", msg.topic)
        self._metrics.mqtt_messages.labels(result="rejected").inc()
        self._metrics.clip_errors.labels(type=error.code).inc()
        self._replies_queued()

    def _commit(self, batch: Sequence[Incoming]) -> None:
        accepted: list[tuple[NewJob, ReplyTarget]] = []
        dups: list[bool] = []
        rejected: list[tuple[str | None, str, bytes, bytes]] = []
        for msg in batch:
            raw: dict[str, Any] = {}
            try:
                raw = _peek(msg.payload, self._config.max_payload_bytes)
                event = decode_payload(msg.payload, max_bytes=self._config.max_payload_bytes)
                topic_camera = self._camera_from_topic(msg.topic)
                new, _ = self._runner.prepare(event, topic_camera=topic_camera, topic=msg.topic, source="mqtt")
                accepted.append((new, self._reply_target(msg, event.reply_to, new.camera_id)))
                dups.append(msg.dup)
            except ClipError as exc:
                self._metrics.mqtt_messages.labels(result="rejected").inc()
                self._metrics.clip_errors.labels(type=exc.code).inc()
                target = self._error_target(msg, raw.get("reply_to"))
                event_id = raw.get("event_id") if isinstance(raw.get("event_id"), str) else None
                camera_id = raw.get("camera_id") if isinstance(raw.get("camera_id"), str) else None
                payload = to_bytes(rejection(exc, event_id=event_id, camera_id=camera_id))
                rejected.append((None, target.topic, payload, target.correlation))
                logger.info("rejected a message on %s: %s", msg.topic, exc)
        if rejected:
            self._store.queue_replies(rejected)
        results = self._runner.accept(accepted, dups) if accepted else []
        for (job, created), (_, target) in zip(results, accepted, strict=True):
            self._metrics.mqtt_messages.labels(result="accepted" if created else "duplicate").inc()
            if created and self._config.publish_accepted:
                accepted_reply = to_bytes(result_for(job, [], ""))
                self._store.queue_reply(target.topic, accepted_reply, target.correlation, clip_id=None)
        if rejected or results:
            self._replies_queued()

    def _camera_from_topic(self, topic: str) -> str | None:
        for filter_ in self._config.request_topics:
            plus = topic_matches(filter_, topic)
            if plus:
                return plus[0]
        return None

    def _reply_target(self, msg: Incoming, reply_to: str | None, camera_id: str) -> ReplyTarget:
        """MQTT v5 Response Topic (correlation data copied verbatim), else the payload's reply_to, else the result topic."""
        if publishable(msg.response_topic):
            return ReplyTarget(msg.response_topic or "", msg.correlation or b"")
        if reply_to:
            return ReplyTarget(reply_to, msg.correlation or b"")
        return ReplyTarget(self._config.result_topic.format(camera_id=camera_id), msg.correlation or b"")

    def _error_target(self, msg: Incoming, reply_to: object) -> ReplyTarget:
        if publishable(msg.response_topic):
            return ReplyTarget(msg.response_topic or "", msg.correlation or b"")
        if isinstance(reply_to, str) and publishable(reply_to) and len(reply_to) <= 512:
            return ReplyTarget(reply_to, msg.correlation or b"")
        return ReplyTarget(self._config.error_topic, msg.correlation or b"")


def _peek(payload: bytes, max_bytes: int) -> dict[str, Any]:
    """Best-effort look at a payload (for routing a rejection); never raises."""
    try:
        raw = json.loads(payload.decode("utf-8")) if len(payload) <= max_bytes else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}
    return raw if isinstance(raw, dict) else {}
