"""Incident messages in: decide each one, commit the batch's decisions in one transaction, then acknowledge."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from clipbridge.bridge.client import Incoming, MqttBridge
from clipbridge.bridge.topic import Wildcard
from clipbridge.config import MqttConfig
from clipbridge.errors import ClipError, retry_delay
from clipbridge.faults import pause_point
from clipbridge.handlers.formats.model import Ignored
from clipbridge.handlers.formats.translators import Native, Translator, translator_for
from clipbridge.handlers.incident import decode_json
from clipbridge.handlers.jobs import JobRunner
from clipbridge.handlers.replies import Routing, rejection, to_bytes
from clipbridge.handlers.store import Admission, Reply
from clipbridge.metrics import Metrics
from clipbridge.model import ErrorCode

logger = logging.getLogger(__name__)
BATCH = 500


@dataclass(frozen=True)
class Rejected:
    reply: Reply
    code: ErrorCode


@dataclass(frozen=True)
class Decisions:
    admissions: list[Admission]
    rejections: list[Rejected]
    ignored: list[Ignored] = field(default_factory=list)


class Intake:
    """Consumes `bridge.messages`; one store transaction per batch, then the batch's PUBACKs."""

    def __init__(
        self,
        *,
        runner: JobRunner,
        bridge: MqttBridge,
        config: MqttConfig,
        metrics: Metrics,
        max_backlog: int,
        copies_elsewhere: bool,
    ) -> None:
        self._runner = runner
        # With a shared store every instance receives every event: an event it sees may already be answered (by
        # the instance that cut it), and a rejection must be sent once, not once per instance.
        self._copies_elsewhere = copies_elsewhere
        self._bridge = bridge
        self._config = config
        self._metrics = metrics
        self._max_backlog = max_backlog
        clips = runner.clips
        self._routes = [(Wildcard(t.topic), translator_for(t, clips)) for t in config.request_topics]
        self._routing = Routing(result_topic=config.result_topic, error_topic=config.error_topic)

    async def run(self) -> None:
        messages = self._bridge.messages
        while True:
            batch = [await messages.get()]
            while not messages.empty() and len(batch) < BATCH:
                batch.append(messages.get_nowait())
            pause_point("intake_before_commit")
            await self._commit_with_retry(batch)
            pause_point("intake_before_ack")
            # Backpressure: with too many jobs needing a worker, hold the acks; the broker keeps the rest of the backlog
            # (at most ReceiveMaximum messages are ever in flight to us). Jobs waiting for live footage hold no worker.
            while await self._runner.busy() > self._max_backlog:
                await asyncio.sleep(0.5)  # sleep-ok: polling the backlog level, not synchronising
            for msg in batch:
                self._bridge.ack(msg)

    async def _commit_with_retry(self, batch: Sequence[Incoming]) -> None:
        attempt = 0
        while True:
            try:
                try:
                    await self._commit(self.decide(batch))
                except ClipError:
                    raise
                except Exception:
                    # A bug must not stop the consumer: isolate the message that triggers it and answer it.
                    logger.exception("unexpected error in a batch of %d; handling its messages one by one", len(batch))
                    await self._one_by_one(batch)
                return
            except ClipError as exc:  # the store cannot write: never ack, never drop; try again
                delay = retry_delay(attempt, first=0.5, cap=10.0)
                logger.error("cannot commit %d incoming message(s): %s; retrying in %.1f s", len(batch), exc, delay)
                await asyncio.sleep(delay)  # sleep-ok: backoff while the store is unwritable
                attempt += 1

    def decide(self, batch: Sequence[Incoming]) -> Decisions:
        """Parse each payload once and turn it into a job to admit or a rejection to send."""
        decisions = Decisions([], [])
        for msg in batch:
            self._decide_into(msg, decisions)
        return decisions

    def _decide_into(self, msg: Incoming, out: Decisions) -> None:
        raw: Any = None
        topic_camera, translator = self._route(msg.topic)
        try:
            raw = decode_json(msg.payload, max_bytes=self._config.max_payload_bytes)
            event = translator.translate(raw)
            if isinstance(event, Ignored):
                out.ignored.append(event)
                logger.debug("ignored a message on %s: %s", msg.topic, event.reason)
                return
            new = self._runner.prepare(event, topic_camera=topic_camera, topic=msg.topic, source="mqtt")
        except ClipError as exc:
            out.rejections.append(self._rejection(msg, raw, translator.identify(raw), exc))
            logger.info("rejected a message on %s: %s", msg.topic, exc)
            return
        target = self._routing.result_target(msg.response_topic, msg.correlation, event.reply_to, new.camera_id)
        out.admissions.append(
            Admission(
                new, target, redelivered=msg.dup or self._copies_elsewhere, announce=self._config.publish_accepted
            )
        )

    async def _one_by_one(self, batch: Sequence[Incoming]) -> None:
        for msg in batch:
            try:
                await self._commit(self.decide([msg]))
            except ClipError:
                raise  # the store: retry the batch (what was committed is deduplicated)
            except Exception as exc:
                logger.exception("message on %s could not be handled", msg.topic)
                error = ClipError(
                    "internal_error", f"clipbridge could not handle this event ({type(exc).__name__}); see its log"
                )
                await self._commit(Decisions([], [self._rejection(msg, None, (None, None), error)]))

    def _rejection(self, msg: Incoming, raw: Any, ids: tuple[str | None, str | None], error: ClipError) -> Rejected:
        reply_to = raw.get("reply_to") if isinstance(raw, dict) else None
        target = self._routing.error_target(msg.response_topic, msg.correlation, reply_to)
        payload = to_bytes(rejection(error, event_id=ids[0], camera_id=ids[1]))
        hooks = self._runner.webhooks.hooks("rejected", payload)
        key = None
        if self._copies_elsewhere:
            digest = hashlib.sha256()
            for part in (msg.topic.encode(), target.topic.encode(), target.correlation, msg.payload):
                digest.update(len(part).to_bytes(8, "big") + part)
            key = digest.hexdigest()
        return Rejected(Reply(target.topic, payload, target.correlation, dedupe_key=key, hooks=hooks), error.code)

    async def _commit(self, decisions: Decisions) -> None:
        admitted = await self._runner.admit(decisions.admissions, [r.reply for r in decisions.rejections])
        if any(r.reply.hooks for r in decisions.rejections):
            self._runner.webhooks.queued.set()
        if decisions.ignored:
            self._metrics.mqtt_messages.labels(result="ignored").inc(len(decisions.ignored))
        for rejected in decisions.rejections:
            self._metrics.mqtt_messages.labels(result="rejected").inc()
            self._metrics.clip_errors.labels(type=rejected.code).inc()
        for a in admitted:
            self._metrics.mqtt_messages.labels(result="accepted" if a.created else "duplicate").inc()

    def _route(self, topic: str) -> tuple[str | None, Translator]:
        """The first request topic that matches: its translator, and the camera its `+` names (if any)."""
        for wildcard, translator in self._routes:
            plus = wildcard.match(topic)
            if plus is not None:
                return (plus[0] if plus and translator.camera_from_topic else None), translator
        return None, Native()
