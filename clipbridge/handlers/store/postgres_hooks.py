"""PostgreSQL's webhook deliveries: queued inside the transactions of postgres.py, claimed (SKIP LOCKED, with a
lease on the database's clock) and settled by each instance's sender."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from clipbridge.handlers.store.base import Hook, HookRow


async def insert_hooks(cur: psycopg.AsyncCursor[Any], hooks: Sequence[Hook]) -> None:
    if hooks:
        await cur.execute(
            "INSERT INTO webhook_outbox (webhook, event, clip_id, body) SELECT * FROM unnest(%s::text[], %s::text[],"
            " %s::text[], %s::bytea[])",
            ([h.webhook for h in hooks], [h.event for h in hooks], [h.clip_id for h in hooks], [h.body for h in hooks]),
        )


class PostgresHooks:
    """Mixed into PostgresStore, which provides `_rows`, `_value` and `_tx`."""

    async def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def _value(self, sql: str, args: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    async def claim_hooks(self, instance: str, *, limit: int, lease_seconds: float) -> list[HookRow]:
        rows = await self._rows(
            "UPDATE webhook_outbox SET claimed_by = %s, claim_until = now() + make_interval(secs => %s)"
            " WHERE id IN (SELECT id FROM webhook_outbox WHERE finished_at IS NULL AND due_at <= now()"
            " AND (claim_until IS NULL OR claim_until < now()) ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)"
            " RETURNING id, webhook, event, body, attempts, extract(epoch FROM created_at) AS created",
            (instance, lease_seconds, limit),
        )
        return sorted(
            (HookRow(r["id"], r["webhook"], r["event"], bytes(r["body"]), r["attempts"], float(r["created"]))
             for r in rows),
            key=lambda r: r.id,
        )  # fmt: skip

    async def hook_done(self, hook_id: int, *, result: str, error: str | None = None) -> None:
        await self._rows(
            "UPDATE webhook_outbox SET finished_at = now(), result = %s, last_error = %s, attempts = attempts + 1,"
            " claimed_by = NULL, claim_until = NULL WHERE id = %s RETURNING id",
            (result, error, hook_id),
        )

    async def hook_retry(self, hook_id: int, *, delay_seconds: float, error: str) -> None:
        await self._rows(
            "UPDATE webhook_outbox SET due_at = now() + make_interval(secs => %s), last_error = %s,"
            " attempts = attempts + 1, claimed_by = NULL, claim_until = NULL WHERE id = %s RETURNING id",
            (delay_seconds, error, hook_id),
        )

    async def count_hooks_pending(self) -> int:
        return int(await self._value("SELECT COUNT(*) FROM webhook_outbox WHERE finished_at IS NULL"))
