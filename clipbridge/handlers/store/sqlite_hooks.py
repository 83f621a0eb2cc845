"""SQLite's webhook deliveries: queued inside the transactions of sqlite.py, claimed and settled by the sender."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager

from clipbridge.handlers.store.base import Hook, HookRow


def insert_hooks(db: sqlite3.Connection, hooks: Sequence[Hook]) -> None:
    now = time.time()
    db.executemany(
        "INSERT INTO webhook_outbox (webhook, event, clip_id, body, due_at, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        [(h.webhook, h.event, h.clip_id, h.body, now, now) for h in hooks],
    )


class SqliteHooks:
    """Mixed into SqliteStore, which provides `db` and `_tx()`."""

    @property
    def db(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    async def claim_hooks(self, instance: str, *, limit: int, lease_seconds: float) -> list[HookRow]:
        now = time.time()
        with self._tx() as db:
            rows = db.execute(
                "UPDATE webhook_outbox SET claimed_by = ?, claim_until = ? WHERE id IN (SELECT id FROM webhook_outbox"
                " WHERE finished_at IS NULL AND due_at <= ? AND (claim_until IS NULL OR claim_until < ?)"
                " ORDER BY id LIMIT ?) RETURNING id, webhook, event, body, attempts, created_at",
                (instance, now + lease_seconds, now, now, limit),
            ).fetchall()
        return sorted((HookRow(r[0], r[1], r[2], bytes(r[3]), r[4], r[5]) for r in rows), key=lambda r: r.id)

    async def hook_done(self, hook_id: int, *, result: str, error: str | None = None) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE webhook_outbox SET finished_at = ?, result = ?, last_error = ?, attempts = attempts + 1,"
                " claimed_by = NULL, claim_until = NULL WHERE id = ?",
                (time.time(), result, error, hook_id),
            )

    async def hook_retry(self, hook_id: int, *, delay_seconds: float, error: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE webhook_outbox SET due_at = ?, last_error = ?, attempts = attempts + 1, claimed_by = NULL,"
                " claim_until = NULL WHERE id = ?",
                (time.time() + delay_seconds, error, hook_id),
            )

    async def count_hooks_pending(self) -> int:
        row = self.db.execute("SELECT COUNT(*) FROM webhook_outbox WHERE finished_at IS NULL").fetchone()
        return int(row[0])
