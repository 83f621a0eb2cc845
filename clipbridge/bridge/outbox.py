"""Publish stored replies; a row is marked sent only when the broker acknowledges it (PUBACK)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from clipbridge.bridge.client import Connection, MqttBridge, PubAck
from clipbridge.errors import ClipError
from clipbridge.faults import pause_point
from clipbridge.handlers.store import Store

logger = logging.getLogger(__name__)


class OutboxPublisher:
    """`run()` publishes whenever `replies` is set (replies were queued here or, per a notification, elsewhere),
    the broker connection comes back, or `poll` seconds passed (the claims of an instance that died lapse)."""

    def __init__(
        self, *, store: Store, bridge: MqttBridge, replies: asyncio.Event, instance: str, poll: float, batch: int = 200
    ) -> None:
        self._store = store
        self._bridge = bridge
        self._replies = replies
        self._instance = instance
        self._poll = poll
        self._batch = batch
        # mid -> outbox row id. paho keeps unacknowledged QoS 1 messages (and their mids) across reconnects and
        # resends them itself; the rows stay claimed by this instance, so they are not published again by it.
        self._inflight: dict[int, int] = {}
        self._acked: list[int] = []
        self._flush_scheduled = False
        self._sent = asyncio.Event()
        self._marking: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._take_acks())
            group.create_task(self._publish_loop())

    async def _take_acks(self) -> None:
        while True:
            event = await self._bridge.acks.get()
            if isinstance(event, Connection):
                if event.connected:
                    self._replies.set()
            elif isinstance(event, PubAck):
                self._on_puback(event)

    def _on_puback(self, ack: PubAck) -> None:
        row = self._inflight.pop(ack.mid, None)
        if row is None:
            return  # the status topic, or a message from before a restart
        if not ack.ok:
            logger.error("the broker refused reply %d (not authorised for its topic?); it is not retried", row)
        self._done_with(row)

    def _done_with(self, row: int) -> None:
        """The row is acknowledged (or can never be sent): mark it, with others of the same burst."""
        self._acked.append(row)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_acked)

    def _flush_acked(self) -> None:
        self._flush_scheduled = False
        task = asyncio.get_running_loop().create_task(self._mark_acked())
        self._marking.add(task)
        task.add_done_callback(self._marking.discard)

    async def _mark_acked(self) -> None:
        """Mark a burst of PUBACKs sent in one transaction; kept for the next burst while the store is down."""
        rows, self._acked = self._acked, []
        try:
            await self._store.mark_sent(rows)
        except ClipError as exc:
            logger.error("cannot mark %d repl(ies) sent (%s); retried with the next acknowledgements", len(rows), exc)
            self._acked[:0] = rows
            return
        self._sent.set()
        self._sent.clear()

    async def _publish_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._replies.wait(), timeout=self._poll)
            self._replies.clear()
            if self._acked and not self._flush_scheduled:
                self._flush_acked()  # marks that failed while the store was down
            if await self._publish_once() == self._batch:
                self._replies.set()

    async def _publish_once(self) -> int:
        """Claim unsent replies and publish them; returns how many were claimed."""
        if not self._bridge.connected:
            return 0
        try:
            rows = await self._store.claim_replies(self._instance, limit=self._batch)
        except ClipError as exc:
            logger.error("cannot read the outbox: %s", exc.message)
            return 0
        if rows:
            pause_point("outbox_before_publish")
        for row in rows:
            try:
                mid = self._bridge.publish(row.topic, row.payload, row.correlation)
            except ValueError as exc:  # a topic the broker can never accept
                logger.error("reply %d to %r cannot be published (%s); dropped", row.id, row.topic, exc)
                self._done_with(row.id)
                continue
            self._inflight[mid] = row.id
        return len(rows)

    async def flush(self, timeout: float) -> bool:
        """Publish what is claimable and wait until this instance's replies are acknowledged and marked sent, or
        `timeout`; True if none of them is left."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await self._publish_once() == self._batch:
            pass
        while self._inflight or self._acked or await self._unsent_here():
            remaining = deadline - loop.time()
            if remaining <= 0 or not self._bridge.connected:
                return False
            try:
                await asyncio.wait_for(self._sent.wait(), timeout=remaining)
            except TimeoutError:
                return False
        return True

    async def _unsent_here(self) -> bool:
        """Alone, every unsent reply is this instance's to send; with peers, only those it has claimed (above)."""
        if self._store.shared:
            return False
        try:
            return await self._store.count_unsent() > 0
        except ClipError:
            return False
