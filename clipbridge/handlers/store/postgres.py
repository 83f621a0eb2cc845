"""The shared job store: PostgreSQL through psycopg 3's async pool, for several instances.

Claims use `FOR UPDATE SKIP LOCKED`, so instances never wait for each other's rows; an intake batch is a handful of
set-based statements (`unnest` arrays), not a round trip per event; `pg_notify` tells the other instances about new
jobs and replies. Times that decide claims and liveness are the database's `now()`, one clock for every instance.
Any database error becomes ClipError(storage_error): the callers pause and retry, nothing crashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from clipbridge.errors import ClipError, retry_delay
from clipbridge.handlers.store.base import Admission, Admitted, Hook, Instance, Notice, Reply, ReplyBuilder
from clipbridge.handlers.store.postgres_hooks import PostgresHooks, insert_hooks
from clipbridge.handlers.store.postgres_schema import MIGRATE_LOCK, MIGRATIONS
from clipbridge.handlers.store.rows import job_from_row, record_json
from clipbridge.model import BUSY, UNFINISHED, WITH_FILES, ClipRecord, Job, JobStatus, OutboxRow, StoredFile

logger = logging.getLogger(__name__)
# The pool logs every failed reconnection attempt (several a second while the database is away); the store says it
# once when the database goes and once when it is back.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
CHANNEL = "clipbridge"
_FINISHED_SQL = "('done', 'partial', 'failed', 'expired')"


def _in(statuses: Sequence[str]) -> str:
    return "IN (" + ", ".join(f"'{s}'" for s in statuses) + ")"


class PostgresStore(PostgresHooks):
    """Construct, then `await open()`: waits for the database (logging each attempt), then migrates."""

    shared = True

    def __init__(self, *, url: str, description: str, pool_size: int, connect_timeout: float,
                 liveness_seconds: float = 15.0, instance_id: str = "") -> None:  # fmt: skip
        self._url = url
        # Notifications carry the sender's id: an instance skips its own (it acted on them already).
        self._me = instance_id
        self._description = description
        self._timeout = connect_timeout
        self._liveness = liveness_seconds
        self._down_since: float | None = None
        self._up_since = 0.0  # loop time since which the database has answered (open, or the end of an outage)
        self._pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=connect_timeout,
            kwargs={"autocommit": True, "connect_timeout": max(1, round(connect_timeout))},
            reconnect_timeout=0,  # never give up reconnecting: an outage ends, the service stays
        )

    def _notice(self, kind: Notice) -> str:
        return f"{kind} {self._me}" if self._me else kind

    def describe(self) -> str:
        return self._description

    async def open(self) -> None:
        attempt = 0
        while True:
            try:
                await self._pool.open(wait=True, timeout=self._timeout)
                break
            except (PoolTimeout, psycopg.Error) as exc:
                delay = retry_delay(attempt, first=0.5, cap=5.0)
                logger.warning("job store %s unreachable (%s); retrying in %.1f s", self._description, exc, delay)
                await asyncio.sleep(delay)  # sleep-ok: backoff while the database is down
                attempt += 1
        async with self._tx() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            await conn.execute("CREATE TABLE IF NOT EXISTS clipbridge_schema (version integer NOT NULL)")
            row = await (await conn.execute("SELECT version FROM clipbridge_schema")).fetchone()
            version = row[0] if row else 0
            if row is None:
                await conn.execute("INSERT INTO clipbridge_schema (version) VALUES (0)")
            if version > len(MIGRATIONS):
                raise ClipError("storage_error", f"the job store has schema version {version}; "
                                f"this clipbridge knows up to {len(MIGRATIONS)}")  # fmt: skip
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                await conn.execute(script)  # our own literal DDL
                await conn.execute("UPDATE clipbridge_schema SET version = %s", (number,))
                logger.info("job store %s: schema migrated to version %d", self._description, number)
        self._up_since = asyncio.get_running_loop().time()

    async def close(self) -> None:
        await self._pool.close()

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        try:
            async with self._pool.connection() as conn, conn.transaction():
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            self._went_away(exc)
            raise ClipError("storage_error", f"the job store {self._description} failed: {_short(exc)}") from exc
        except psycopg.Error as exc:
            raise ClipError("storage_error", f"the job store {self._description} failed: {_short(exc)}") from exc
        if self._down_since is not None:
            self._up_since = asyncio.get_running_loop().time()
            away = self._up_since - self._down_since
            self._down_since = None
            logger.warning("job store %s available again after %.0f s: intake and workers resume",
                           self._description, away)  # fmt: skip

    def _settled(self, seconds: float) -> bool:
        """Answering for `seconds`: only then are stale leases and heartbeats signs of a dead peer. Right after an
        outage every peer looks dead (none could renew); each gets that long to renew before its work is taken."""
        return asyncio.get_running_loop().time() - self._up_since >= seconds

    def _went_away(self, exc: Exception) -> None:
        if self._down_since is None:
            self._down_since = asyncio.get_running_loop().time()
            logger.error("job store %s unavailable (%s): intake stops acknowledging (the broker keeps the events), "
                         "workers pause; retrying until it is back", self._description, _short(exc))  # fmt: skip

    async def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        async with self._tx() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(sql, args)
            return await cursor.fetchall()

    async def _value(self, sql: str, args: Sequence[Any] = ()) -> Any:
        async with self._tx() as conn:
            row = await (await conn.execute(sql, args)).fetchone()
            return row[0] if row else None

    async def ping(self) -> None:
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO health (id, at) VALUES (1, now()) ON CONFLICT (id) DO UPDATE SET at = excluded.at"
            )

    async def secret(self, name: str, candidate: str) -> str:
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO secrets (name, value) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING", (name, candidate)
            )
            row = await (await conn.execute("SELECT value FROM secrets WHERE name = %s", (name,))).fetchone()
            assert row is not None  # inserted above, or there already
            return str(row[0])

    # -- intake -------------------------------------------------------------------------------------------------

    async def admit(
        self, admissions: Sequence[Admission], rejections: Sequence[Reply], reply_for: ReplyBuilder
    ) -> list[Admitted]:
        async with self._tx() as conn:
            cur = conn.cursor(row_factory=dict_row)
            outbox = await self._keep_first(cur, rejections)
            jobs: dict[str, Job] = {}
            created: set[str] = set()
            if admissions:
                news = [a.job for a in admissions]
                await cur.execute(
                    "INSERT INTO jobs (clip_id, dedupe_key, event_id, camera_id, incident, window_start, window_end,"
                    " metadata, source, status) SELECT c, k, e, cam, i, s, w, m::jsonb, src, st FROM unnest("
                    "%s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[],"
                    " %s::timestamptz[], %s::text[], %s::text[], %s::text[]) AS t(c, k, e, cam, i, s, w, m, src, st)"
                    " ON CONFLICT (dedupe_key) DO NOTHING RETURNING clip_id",
                    (
                        [n.clip_id for n in news],
                        [n.dedupe_key for n in news],
                        [n.event_id for n in news],
                        [n.camera_id for n in news],
                        [n.window.incident for n in news],
                        [n.window.start for n in news],
                        [n.window.end for n in news],
                        [json.dumps(n.metadata) for n in news],
                        [n.source for n in news],
                        [n.status for n in news],
                    ),
                )
                created = {r["clip_id"] for r in await cur.fetchall()}
                await cur.execute("SELECT * FROM jobs WHERE dedupe_key = ANY(%s)", ([n.dedupe_key for n in news],))
                jobs = {r["dedupe_key"]: job_from_row(r) for r in await cur.fetchall()}
                targeted = [(jobs[a.job.dedupe_key], a) for a in admissions if a.target is not None]
                new_targets: set[tuple[str, str, bytes]] = set()
                if targeted:
                    await cur.execute(
                        "INSERT INTO reply_targets (clip_id, topic, correlation) SELECT * FROM unnest("
                        "%s::text[], %s::text[], %s::bytea[]) ON CONFLICT DO NOTHING RETURNING clip_id, topic,"
                        " correlation",
                        (
                            [j.clip_id for j, _ in targeted],
                            [a.target.topic for _, a in targeted if a.target],
                            [a.target.correlation for _, a in targeted if a.target],
                        ),
                    )
                    new_targets = {(r["clip_id"], r["topic"], bytes(r["correlation"])) for r in await cur.fetchall()}
                answering = [
                    (job, a)
                    for job, a in targeted
                    if a.target is not None
                    and (
                        (a.job.clip_id in created and a.announce)
                        or (
                            job.finished
                            and not (
                                a.redelivered and (job.clip_id, a.target.topic, a.target.correlation) not in new_targets
                            )
                        )
                    )
                ]
                files = await self._files_of_many(cur, [j.clip_id for j, _ in answering if j.finished])
                for job, a in answering:
                    assert a.target is not None
                    payload = reply_for(job, files.get(job.clip_id, []))
                    outbox.append(Reply(a.target.topic, payload, a.target.correlation, job.clip_id))
            await _insert_outbox(cur, outbox)
            await insert_hooks(cur, [h for r in outbox for h in r.hooks])
            if created:
                await cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self._notice("jobs")))
            if outbox:
                await cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self._notice("outbox")))
        # Created: this admission's own job was inserted (not an earlier one of the same key, in or before the batch).
        return [Admitted(jobs[a.job.dedupe_key], a.job.clip_id in created) for a in admissions]

    @staticmethod
    async def _keep_first(cur: psycopg.AsyncCursor[dict[str, Any]], replies: Sequence[Reply]) -> list[Reply]:
        """Replies without a dedupe key, and those whose key no instance recorded before."""
        keys = [r.dedupe_key for r in replies if r.dedupe_key is not None]
        fresh: set[str] = set()
        if keys:
            await cur.execute(
                "INSERT INTO rejections (key) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING RETURNING key", (keys,)
            )
            fresh = {r["key"] for r in await cur.fetchall()}
        kept = []
        for r in replies:
            if r.dedupe_key is None:
                kept.append(r)
            elif r.dedupe_key in fresh:
                fresh.discard(r.dedupe_key)  # the first of a batch's copies only
                kept.append(r)
        return kept

    # -- jobs ---------------------------------------------------------------------------------------------------

    async def get(self, clip_id: str) -> Job | None:
        rows = await self._rows("SELECT * FROM jobs WHERE clip_id = %s", (clip_id,))
        return job_from_row(rows[0]) if rows else None

    async def claim(self, instance: str, cameras: Sequence[str] | None, lease_seconds: float) -> Job | None:
        if cameras is not None and not cameras:
            return None
        only = " AND camera_id = ANY(%s)" if cameras is not None else ""
        expired = " OR (status = 'processing' AND lease_until < now())" if self._settled(lease_seconds) else ""
        rows = await self._rows(
            "UPDATE jobs SET status = 'processing', claimed_by = %s, lease_until = now() + make_interval(secs => %s),"
            " attempts = attempts + 1, not_before = NULL, updated_at = now() WHERE clip_id = (SELECT clip_id FROM jobs"
            f" WHERE ((status = 'pending' AND (not_before IS NULL OR not_before <= now())){expired}){only}"
            " ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING *",
            (instance, lease_seconds, *([list(cameras)] if cameras is not None else [])),
        )
        return job_from_row(rows[0]) if rows else None

    async def renew(self, clip_id: str, instance: str, lease_seconds: float) -> bool:
        rows = await self._rows(
            "UPDATE jobs SET lease_until = now() + make_interval(secs => %s) WHERE clip_id = %s AND claimed_by = %s"
            " AND status = 'processing' RETURNING clip_id",
            (lease_seconds, clip_id, instance),
        )
        return bool(rows)

    async def release(
        self, clip_id: str, instance: str, *, status: Literal["pending", "waiting"], delay_seconds: float = 0.0
    ) -> None:
        async with self._tx() as conn:
            await conn.execute(
                "UPDATE jobs SET status = %s, claimed_by = NULL, lease_until = NULL, updated_at = now(),"
                " not_before = CASE WHEN %s > 0 THEN now() + make_interval(secs => %s) END"
                f" WHERE clip_id = %s AND (claimed_by = %s OR claimed_by IS NULL) AND status NOT IN {_FINISHED_SQL}",
                (status, delay_seconds, delay_seconds, clip_id, instance),
            )
            await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self._notice("jobs")))

    async def finish(
        self,
        clip_id: str,
        instance: str,
        *,
        status: JobStatus,
        record: ClipRecord | None,
        error: ClipError | None,
        files: Sequence[StoredFile],
        reply_payload: bytes,
        completed_at: datetime,
        hooks: Sequence[Hook] = (),
    ) -> bool:
        async with self._tx() as conn:
            cursor = await conn.execute(
                "UPDATE jobs SET status = %s, result = %s::jsonb, error_code = %s, error_message = %s, updated_at = %s,"
                " completed_at = %s, lease_until = NULL WHERE clip_id = %s AND (claimed_by = %s OR claimed_by IS NULL)"
                f" AND status {_in(UNFINISHED)}",
                (
                    status,
                    record_json(record),
                    error.code if error else None,
                    error.message if error else None,
                    completed_at,
                    completed_at,
                    clip_id,
                    instance,
                ),
            )
            if cursor.rowcount != 1:
                return False
            for f in files:
                await conn.execute(
                    "INSERT INTO files (name, clip_id, kind, path, size, instance_id, object_key)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET clip_id = excluded.clip_id,"
                    " kind = excluded.kind, path = excluded.path, size = excluded.size,"
                    " instance_id = excluded.instance_id, object_key = excluded.object_key",
                    (f.name, f.clip_id, f.kind, str(f.path), f.size, instance, f.object_key),
                )
            await conn.execute(
                "INSERT INTO outbox (clip_id, topic, payload, correlation) SELECT clip_id, topic, %s, correlation"
                " FROM reply_targets WHERE clip_id = %s",
                (reply_payload, clip_id),
            )
            await insert_hooks(conn.cursor(), hooks)
            await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self._notice("outbox")))
        return True

    async def waiting(self, cameras: Sequence[str] | None) -> list[Job]:
        if cameras is None:
            rows = await self._rows("SELECT * FROM jobs WHERE status = 'waiting' ORDER BY created_at")
        else:
            rows = await self._rows(
                "SELECT * FROM jobs WHERE status = 'waiting' AND camera_id = ANY(%s) ORDER BY created_at",
                (list(cameras),),
            )
        return [job_from_row(r) for r in rows]

    async def wake(self, clip_ids: Sequence[str]) -> int:
        async with self._tx() as conn:
            cursor = await conn.execute(
                "UPDATE jobs SET status = 'pending', updated_at = now() WHERE clip_id = ANY(%s) AND status = 'waiting'",
                (list(clip_ids),),
            )
            if cursor.rowcount:
                await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self._notice("jobs")))
            return cursor.rowcount

    async def recover(self, instance: str) -> int:
        async with self._tx() as conn:
            cursor = await conn.execute(
                "UPDATE jobs SET status = 'pending', claimed_by = NULL, lease_until = NULL, updated_at = now()"
                " WHERE status = 'processing' AND claimed_by = %s",
                (instance,),
            )
            await conn.execute(
                "UPDATE outbox SET claimed_by = NULL WHERE sent_at IS NULL AND claimed_by = %s", (instance,)
            )
            await conn.execute(
                "UPDATE webhook_outbox SET claimed_by = NULL, claim_until = NULL WHERE finished_at IS NULL"
                " AND claimed_by = %s",
                (instance,),
            )
            return cursor.rowcount

    async def count_busy(self) -> int:
        return int(await self._value(f"SELECT COUNT(*) FROM jobs WHERE status {_in(BUSY)}"))

    async def count_unfinished(self) -> int:
        return int(await self._value(f"SELECT COUNT(*) FROM jobs WHERE status {_in(UNFINISHED)}"))

    async def list_jobs(
        self,
        *,
        camera_id: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Job], int]:
        where: list[str] = []
        args: list[object] = []
        for clause, value in (("camera_id = %s", camera_id), ("status = %s", status), ("created_at >= %s", since),
                              ("created_at < %s", until)):  # fmt: skip
            if value is not None:
                where.append(clause)
                args.append(value)
        sql = (" WHERE " + " AND ".join(where)) if where else ""
        total = int(await self._value(f"SELECT COUNT(*) FROM jobs{sql}", args))
        rows = await self._rows(f"SELECT * FROM jobs{sql} ORDER BY created_at DESC, clip_id LIMIT %s OFFSET %s",
                                [*args, limit, offset])  # fmt: skip
        return [job_from_row(r) for r in rows], total

    # -- outbox -------------------------------------------------------------------------------------------------

    async def claim_replies(self, instance: str, *, limit: int = 200) -> list[OutboxRow]:
        # A reply claimed by an instance that left, or stopped heartbeating, is taken over (its PUBACK may never come).
        fresh = f" AND i.heartbeat_at > now() - make_interval(secs => {float(self._liveness)})"
        dead = f" OR NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = o.claimed_by{fresh if self._settled(self._liveness) else ''})"
        rows = await self._rows(
            "UPDATE outbox SET claimed_by = %s WHERE id IN (SELECT o.id FROM outbox o WHERE o.sent_at IS NULL"
            f" AND (o.claimed_by IS NULL{dead}) ORDER BY o.id LIMIT %s FOR UPDATE SKIP LOCKED)"
            " RETURNING id, clip_id, topic, payload, correlation",
            (instance, limit),
        )
        return sorted(
            (OutboxRow(r["id"], r["clip_id"], r["topic"], bytes(r["payload"]), bytes(r["correlation"])) for r in rows),
            key=lambda r: r.id,
        )

    async def mark_sent(self, outbox_ids: Sequence[int]) -> None:
        if outbox_ids:
            async with self._tx() as conn:
                await conn.execute("UPDATE outbox SET sent_at = now() WHERE id = ANY(%s)", (list(outbox_ids),))

    async def count_unsent(self) -> int:
        return int(await self._value("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL"))

    # -- files --------------------------------------------------------------------------------------------------

    async def file(self, name: str) -> StoredFile | None:
        rows = await self._rows("SELECT * FROM files WHERE name = %s", (name,))
        return _file(rows[0]) if rows else None

    async def files_of(self, clip_id: str) -> list[StoredFile]:
        return [_file(r) for r in await self._rows("SELECT * FROM files WHERE clip_id = %s", (clip_id,))]

    @staticmethod
    async def _files_of_many(
        cur: psycopg.AsyncCursor[dict[str, Any]], clip_ids: list[str]
    ) -> dict[str, list[StoredFile]]:
        out: dict[str, list[StoredFile]] = {}
        if clip_ids:
            await cur.execute("SELECT * FROM files WHERE clip_id = ANY(%s)", (clip_ids,))
            for r in await cur.fetchall():
                out.setdefault(r["clip_id"], []).append(_file(r))
        return out

    # -- retention ----------------------------------------------------------------------------------------------

    async def expirable(self, *, created_before: datetime, instance: str) -> list[str]:
        rows = await self._rows(
            f"SELECT j.clip_id FROM jobs j WHERE j.status {_in(WITH_FILES)} AND j.created_at < %s AND EXISTS"
            " (SELECT 1 FROM files f WHERE f.clip_id = j.clip_id AND (f.instance_id = %s OR f.object_key IS NOT NULL))"
            " ORDER BY j.created_at",
            (created_before, instance),
        )
        return [r["clip_id"] for r in rows]

    async def stored_bytes(self, instance: str) -> list[tuple[str, int]]:
        rows = await self._rows(
            "SELECT f.clip_id, SUM(f.size) AS bytes FROM files f JOIN jobs j ON j.clip_id = f.clip_id"
            " WHERE f.instance_id = %s OR f.object_key IS NOT NULL GROUP BY f.clip_id ORDER BY MIN(j.created_at)",
            (instance,),
        )
        return [(r["clip_id"], int(r["bytes"])) for r in rows]

    async def expire(self, clip_id: str, hooks: Sequence[Hook] = ()) -> None:
        async with self._tx() as conn:
            await conn.execute("DELETE FROM files WHERE clip_id = %s", (clip_id,))
            await conn.execute("UPDATE jobs SET status = 'expired', updated_at = now() WHERE clip_id = %s", (clip_id,))
            await insert_hooks(conn.cursor(), hooks)

    async def prune_rejections(self, older_than: datetime) -> int:
        async with self._tx() as conn:
            return (await conn.execute("DELETE FROM rejections WHERE created_at < %s", (older_than,))).rowcount

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        """A session advisory lock held on one pooled connection for the duration."""
        try:
            async with self._pool.connection() as conn:
                got = await (await conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (name,))).fetchone()
                held = bool(got and got[0])
                try:
                    yield held
                finally:
                    if held:
                        await conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (name,))
        except (psycopg.Error, PoolTimeout) as exc:
            raise ClipError("storage_error", f"the job store {self._description} failed: {_short(exc)}") from exc

    # -- instances ----------------------------------------------------------------------------------------------

    async def heartbeat(self, instance: Instance) -> None:
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO instances (id, base_url, cameras, started_at, heartbeat_at)"
                " VALUES (%s, %s, %s::jsonb, COALESCE(%s, now()), now()) ON CONFLICT (id) DO UPDATE SET"
                " base_url = excluded.base_url, cameras = excluded.cameras, heartbeat_at = now()",
                (instance.id, instance.base_url, json.dumps(instance.cameras), instance.started_at),
            )

    async def peers(self) -> list[Instance]:
        rows = await self._rows(
            "SELECT * FROM instances WHERE heartbeat_at > now() - make_interval(secs => %s) ORDER BY id",
            (self._liveness,),
        )
        return [Instance(r["id"], r["base_url"], r["cameras"], r["started_at"], r["heartbeat_at"]) for r in rows]

    async def leave(self, instance_id: str) -> None:
        async with self._tx() as conn:
            await conn.execute("DELETE FROM instances WHERE id = %s", (instance_id,))

    async def notifications(self) -> AsyncIterator[Notice]:
        """LISTEN on a connection of its own; after a lost connection, reconnect and report both kinds (what was
        notified meanwhile is unknown)."""
        attempt = 0
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True,
                                                             connect_timeout=max(1, round(self._timeout)))  # fmt: skip
            except psycopg.Error as exc:
                delay = retry_delay(attempt, first=0.5, cap=5.0)
                log = logger.warning if attempt == 0 else logger.debug  # once per outage; _tx says the rest
                log("LISTEN on %s failed (%s); retrying in %.1f s", self._description, _short(exc), delay)
                await asyncio.sleep(delay)  # sleep-ok: backoff while the database is down
                attempt += 1
                continue
            try:
                await conn.execute(f"LISTEN {CHANNEL}")
                if attempt:
                    yield "jobs"
                    yield "outbox"
                attempt = 0
                async for notify in conn.notifies():
                    kind, _, sender = notify.payload.partition(" ")
                    if kind in ("jobs", "outbox") and not (sender and sender == self._me):
                        yield kind  # type: ignore[misc]
            except psycopg.Error as exc:
                logger.warning("LISTEN connection to %s lost: %s", self._description, _short(exc))
                attempt = 1
            finally:
                await conn.close()


async def _insert_outbox(cur: psycopg.AsyncCursor[dict[str, Any]], replies: Sequence[Reply]) -> None:
    if replies:
        await cur.execute(
            "INSERT INTO outbox (clip_id, topic, payload, correlation) SELECT * FROM unnest(%s::text[], %s::text[],"
            " %s::bytea[], %s::bytea[])",
            (
                [r.clip_id for r in replies],
                [r.topic for r in replies],
                [r.payload for r in replies],
                [r.correlation for r in replies],
            ),
        )


def _file(r: dict[str, Any]) -> StoredFile:
    return StoredFile(
        r["name"], r["clip_id"], r["kind"], Path(r["path"]), int(r["size"]), r["instance_id"], r["object_key"]
    )


def _short(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
