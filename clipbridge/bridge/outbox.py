"""Publish stored replies; a row is marked sent only when the broker acknowledges it (PUBACK)."""

from __future__ import annotations

import asyncio
import logging

from clipbridge.bridge.client import MqttBridge
from clipbridge.faults import pause_point
from clipbridge.handlers.store import Store

logger = logging.getLogger(__name__)


class OutboxPublisher:
    def __init__(self, *, store: Store, bridge: MqttBridge, batch: int = 200) -> None:
        self._store = store
        self._bridge = bridge
        self._batch = batch
        self._wake = asyncio.Event()
        # mid -> outbox row id. paho keeps unacknowledged QoS 1 messages (and their mids) across reconnects and
        # resends them itself, so rows in flight are not published again until the process restarts.
        self._inflight: dict[int, int] = {}
        self._acked: list[int] = []
        self._flush_scheduled = False
        self._sent = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def on_connection(self, connected: bool) -> None:
        if connected:
            self._wake.set()

    def on_puback(self, mid: int, ok: bool) -> None:
        row = self._inflight.pop(mid, None)
        if row is None:
            return  # the status topic, or a message from before a restart
        if not ok:
            logger.error("the broker refused reply %d (not authorised for its topic?); it is not retried", row)
        self._acked.append(row)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_acked)

    def _flush_acked(self) -> None:
        """Mark a burst of PUBACKs sent in one transaction."""
        self._flush_scheduled = False
        rows, self._acked = self._acked, []
        self._store.mark_sent(rows)
        self._sent.set()
        self._sent.clear()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._bridge.connected:
                continue
            # Rows acknowledged but not yet marked sent are excluded too, or this pass would publish them again.
            rows = self._store.unsent(exclude=[*self._inflight.values(), *self._acked], limit=self._batch)
            if rows:
                pause_point("outbox_before_publish")
            for row in rows:
                try:
                    mid = self._bridge.publish(row.topic, row.payload, row.correlation)
                except ValueError as exc:  # a topic the broker can never accept
                    logger.error("reply %d to %r cannot be published (%s); dropped", row.id, row.topic, exc)
                    self._store.mark_sent([row.id])
                    continue
                self._inflight[mid] = row.id
            if len(rows) == self._batch:
                self._wake.set()

    async def flush(self, timeout: float) -> bool:
        """Wait until every stored reply is acknowledged, or `timeout`; True if none is left."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self.wake()
        while self._store.count_unsent() > 0:
            remaining = deadline - loop.time()
            if remaining <= 0 or not self._bridge.connected:
                return False
            try:
                await asyncio.wait_for(self._sent.wait(), timeout=remaining)
            except TimeoutError:
                return False
        return True
