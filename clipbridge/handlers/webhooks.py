"""Webhooks: each result (the same JSON as the MQTT reply) POSTed to the configured URLs, durably.

A delivery is queued in the store in the same transaction as the state change it reports (a finished job, a
rejection, an expiry), so none is lost across a crash; a sender claims due deliveries and POSTs them. 2xx is
delivered; a timeout, a connection error, 429 or 5xx is retried with exponential backoff and jitter (honouring
Retry-After) until `give_up_hours` after it was queued; any other answer (a 4xx: the receiver says the request
itself is wrong) is dropped at once, logged as `webhook_failed` and counted. At-least-once: a receiver may see a
delivery twice (after a crash mid-POST), and deduplicates by the X-Clipbridge-Delivery header.

Each body is signed when the webhook has a `secret`: X-Clipbridge-Signature is `sha256=` + the hex HMAC-SHA256 of
`<X-Clipbridge-Timestamp>.<body>` (the timestamp is signed too, so a captured delivery cannot be replayed later).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
import time
from collections.abc import Awaitable, Sequence

import httpx

from clipbridge import __version__
from clipbridge.config import WebhookConfig
from clipbridge.errors import ClipError, retry_delay
from clipbridge.handlers.store import Hook, HookRow, Store
from clipbridge.metrics import Metrics

logger = logging.getLogger(__name__)
logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per POST otherwise; outcomes are logged here
BATCH = 50


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Clipbridge-Signature value for a body sent at `timestamp` (unix seconds)."""
    return "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, now: float, tolerance: float = 300) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent (replays are refused)."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    return abs(now - sent) <= tolerance and hmac.compare_digest(sign(secret, sent, body), signature)


class Webhooks:
    """Which configured webhooks want an event: the deliveries to queue with it."""

    def __init__(self, configs: Sequence[WebhookConfig]) -> None:
        self._configs = list(configs)
        self.queued = asyncio.Event()  # set after deliveries were committed: the sender looks at once

    def hooks(self, event: str, body: bytes, clip_id: str | None = None) -> tuple[Hook, ...]:
        return tuple(Hook(w.key, event, body, clip_id) for w in self._configs if event in w.events)


class WebhookSender:
    """`run()` delivers due webhooks whenever `queued` is set or `poll` seconds passed (for retries that fell due
    and deliveries another instance queued or left behind)."""

    def __init__(
        self,
        *,
        store: Store,
        configs: Sequence[WebhookConfig],
        metrics: Metrics,
        instance: str,
        queued: asyncio.Event,
        poll: float,
    ) -> None:
        self._store = store
        self._configs = {w.key: w for w in configs}
        self._metrics = metrics
        self._instance = instance
        self._queued = queued
        self._poll = poll
        # A claim outlives the slowest POST of a batch (they run together), so no other sender takes it meanwhile.
        self._lease = max((w.timeout_seconds for w in configs), default=10.0) * 2 + 30

    async def run(self) -> None:
        headers = {"User-Agent": f"clipbridge/{__version__}", "Content-Type": "application/json"}
        async with httpx.AsyncClient(headers=headers, follow_redirects=False) as client:
            while True:
                self._queued.clear()
                try:
                    rows = await self._store.claim_hooks(self._instance, limit=BATCH, lease_seconds=self._lease)
                except ClipError as exc:
                    logger.error("webhook deliveries paused: %s", exc.message)
                    rows = []
                if rows:
                    await asyncio.gather(*(self._deliver(client, row) for row in rows))
                    if len(rows) == BATCH:
                        continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._queued.wait(), timeout=self._poll)

    async def _deliver(self, client: httpx.AsyncClient, row: HookRow) -> None:
        config = self._configs.get(row.webhook)
        if config is None:
            await self._drop(row, "failed", f"no webhook named {row.webhook!r} is configured any more")
            return
        stamp = int(time.time())
        headers = {
            "X-Clipbridge-Event": row.event,
            "X-Clipbridge-Delivery": str(row.id),
            "X-Clipbridge-Timestamp": str(stamp),
        }
        if config.secret:
            headers["X-Clipbridge-Signature"] = sign(config.secret, stamp, row.body)
        retry_after: float | None = None
        try:
            response = await client.post(config.url, content=row.body, headers=headers, timeout=config.timeout_seconds)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        else:
            code = response.status_code
            if 200 <= code < 300:
                await self._settle(row, self._store.hook_done(row.id, result="delivered"))
                self._metrics.webhook_deliveries.labels(result="delivered").inc()
                return
            error = f"HTTP {code} from {config.url}"
            if code != 429 and code < 500:
                await self._drop(row, "failed", error + " (a 4xx is not retried)")
                return
            retry_after = _retry_after(response.headers.get("Retry-After"))
        delay = retry_delay(row.attempts, first=config.retry_first_seconds, cap=config.retry_max_seconds)
        delay = max(delay * random.uniform(0.8, 1.2), retry_after or 0.0)
        if time.time() + delay - row.created_at > config.give_up_hours * 3600:
            await self._drop(row, "gave_up", f"{error}; still failing {config.give_up_hours:g} h after it was queued")
            return
        logger.info("webhook %s delivery %d: %s; retry %d in %.1f s", row.webhook, row.id, error, row.attempts + 1,
                    delay)  # fmt: skip
        await self._settle(row, self._store.hook_retry(row.id, delay_seconds=delay, error=error))
        self._metrics.webhook_deliveries.labels(result="retried").inc()

    async def _drop(self, row: HookRow, result: str, error: str) -> None:
        logger.warning("webhook_failed: webhook %s delivery %d (%s, clip event %s) dropped: %s",
                       row.webhook, row.id, result, row.event, error)  # fmt: skip
        await self._settle(row, self._store.hook_done(row.id, result=result, error=error))
        self._metrics.webhook_deliveries.labels(result=result).inc()

    async def _settle(self, row: HookRow, update: Awaitable[None]) -> None:
        """Record the outcome; if the store is down the claim lapses and the delivery is tried again (at least once)."""
        try:
            await update
        except ClipError as exc:
            logger.error("webhook delivery %d: outcome not recorded (%s); it will be tried again", row.id, exc.message)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), 3600.0)
    except ValueError:
        return None  # an HTTP date: our own backoff applies
