"""The embedded job store: SQLite in WAL mode, `synchronous=FULL`, schema versioned with `PRAGMA user_version`.

One instance, one connection, used from the event loop's thread: each call is a few local statements (an fsync
for a commit), so the async methods run them directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from clipbridge.errors import ClipError
from clipbridge.handlers.store.base import Admission, Admitted, Hook, Instance, Notice, Reply, ReplyBuilder
from clipbridge.handlers.store.rows import job_from_row, record_json
from clipbridge.handlers.store.sqlite_hooks import SqliteHooks, insert_hooks
from clipbridge.handlers.store.sqlite_schema import MIGRATIONS
from clipbridge.model import BUSY, UNFINISHED, WITH_FILES, ClipRecord, Job, JobStatus, OutboxRow, StoredFile, iso


def _in(statuses: Sequence[str]) -> str:
    """`IN ('a', 'b')` for a fixed status group from model.py (never user input)."""
    return "IN (" + ", ".join(f"'{s}'" for s in statuses) + ")"


class SqliteStore(SqliteHooks):
    """Construct, then `await open()` (creates or migrates the schema)."""

    shared = False

    def __init__(self, *, path: Path, liveness_seconds: float = 15.0) -> None:
        self._path = path
        self._liveness = liveness_seconds  # an instance silent this long is dead; its reply claims lapse
        self._db: sqlite3.Connection | None = None

    def describe(self) -> str:
        return str(self._path)

    async def open(self) -> None:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: a job acknowledged to the broker must survive a power cut, not only a process crash.
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=5000")
            migrate(db)
        except (sqlite3.Error, OSError) as exc:
            raise ClipError("storage_error", f"cannot open the job store {self._path}: {exc}") from exc
        db.row_factory = sqlite3.Row
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("SqliteStore.open() was not called")
        return self._db

    def _tx(self) -> _Transaction:
        return _Transaction(self.db)

    async def ping(self) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO health (id, at) VALUES (1, ?)", (_now(),))

    async def secret(self, name: str, candidate: str) -> str:
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)", (name, candidate))
            return str(db.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()[0])

    # -- intake -------------------------------------------------------------------------------------------------

    async def admit(
        self, admissions: Sequence[Admission], rejections: Sequence[Reply], reply_for: ReplyBuilder
    ) -> list[Admitted]:
        out: list[Admitted] = []
        with self._tx() as db:
            for reply in rejections:
                if reply.dedupe_key is not None:
                    cursor = db.execute(
                        "INSERT OR IGNORE INTO rejections (key, created_at) VALUES (?, ?)",
                        (reply.dedupe_key, time.time()),
                    )
                    if cursor.rowcount == 0:
                        continue
                _insert_outbox(db, reply)
                insert_hooks(db, reply.hooks)
            for adm in admissions:
                new = adm.job
                row = db.execute("SELECT * FROM jobs WHERE dedupe_key = ?", (new.dedupe_key,)).fetchone()
                created = row is None
                if created:
                    stamp = datetime.now(UTC)
                    db.execute(
                        "INSERT INTO jobs (clip_id, dedupe_key, event_id, camera_id, incident, window_start,"
                        " window_end, metadata, source, status, created_at, created_ts, updated_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            new.clip_id,
                            new.dedupe_key,
                            new.event_id,
                            new.camera_id,
                            new.window.incident.isoformat(),
                            new.window.start.isoformat(),
                            new.window.end.isoformat(),
                            json.dumps(new.metadata),
                            new.source,
                            new.status,
                            iso(stamp),
                            stamp.timestamp(),
                            iso(stamp),
                        ),
                    )
                    row = db.execute("SELECT * FROM jobs WHERE clip_id = ?", (new.clip_id,)).fetchone()
                job = job_from_row(row)
                if adm.target is not None:
                    cursor = db.execute(
                        "INSERT OR IGNORE INTO reply_targets (clip_id, topic, correlation) VALUES (?, ?, ?)",
                        (job.clip_id, adm.target.topic, adm.target.correlation),
                    )
                    known = cursor.rowcount == 0
                    # An answered target is not answered again when this is a copy of a message already seen (a
                    # broker redelivery after a crash between commit and PUBACK, whose resumed job may have replied).
                    answer = (created and adm.announce) or (job.finished and not (known and adm.redelivered))
                    if answer:
                        payload = reply_for(job, self._files(db, job.clip_id))
                        _insert_outbox(db, Reply(adm.target.topic, payload, adm.target.correlation, job.clip_id))
                out.append(Admitted(job, created))
        return out

    # -- jobs ---------------------------------------------------------------------------------------------------

    async def get(self, clip_id: str) -> Job | None:
        row = self.db.execute("SELECT * FROM jobs WHERE clip_id = ?", (clip_id,)).fetchone()
        return job_from_row(row) if row else None

    async def claim(self, instance: str, cameras: Sequence[str] | None, lease_seconds: float) -> Job | None:
        now = time.time()
        only = f" AND camera_id IN ({', '.join('?' * len(cameras))})" if cameras is not None else ""
        if cameras is not None and not cameras:
            return None
        with self._tx() as db:
            row = db.execute(
                "UPDATE jobs SET status = 'processing', claimed_by = ?, lease_until = ?, attempts = attempts + 1,"
                " not_before = NULL, updated_at = ? WHERE clip_id = (SELECT clip_id FROM jobs WHERE"
                " ((status = 'pending' AND (not_before IS NULL OR not_before <= ?))"
                f" OR (status = 'processing' AND lease_until < ?)){only} ORDER BY created_ts LIMIT 1) RETURNING *",
                (instance, now + lease_seconds, _now(), now, now, *(cameras or ())),
            ).fetchone()
        return job_from_row(row) if row else None

    async def renew(self, clip_id: str, instance: str, lease_seconds: float) -> bool:
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE jobs SET lease_until = ? WHERE clip_id = ? AND claimed_by = ? AND status = 'processing'",
                (time.time() + lease_seconds, clip_id, instance),
            )
        return cursor.rowcount == 1

    async def release(
        self, clip_id: str, instance: str, *, status: Literal["pending", "waiting"], delay_seconds: float = 0.0
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET status = ?, claimed_by = NULL, lease_until = NULL, not_before = ?, updated_at = ?"
                " WHERE clip_id = ? AND (claimed_by = ? OR claimed_by IS NULL) AND status NOT IN"
                " ('done', 'partial', 'failed', 'expired')",
                (status, time.time() + delay_seconds if delay_seconds else None, _now(), clip_id, instance),
            )

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
        stamp = iso(completed_at)
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE jobs SET status = ?, result = ?, error_code = ?, error_message = ?, updated_at = ?,"
                " completed_at = ?, lease_until = NULL WHERE clip_id = ? AND (claimed_by = ? OR claimed_by IS NULL)"
                f" AND status {_in(UNFINISHED)}",
                (
                    status,
                    record_json(record),
                    error.code if error else None,
                    error.message if error else None,
                    stamp,
                    stamp,
                    clip_id,
                    instance,
                ),
            )
            if cursor.rowcount != 1:
                return False
            for f in files:
                db.execute(
                    "INSERT OR REPLACE INTO files (name, clip_id, kind, path, size, instance_id, object_key)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (f.name, f.clip_id, f.kind, str(f.path), f.size, instance, f.object_key),
                )
            targets = db.execute("SELECT topic, correlation FROM reply_targets WHERE clip_id = ?", (clip_id,))
            for topic, correlation in targets.fetchall():
                _insert_outbox(db, Reply(topic, reply_payload, correlation, clip_id))
            insert_hooks(db, hooks)
        return True

    async def waiting(self, cameras: Sequence[str] | None) -> list[Job]:
        rows = self.db.execute("SELECT * FROM jobs WHERE status = 'waiting' ORDER BY created_ts").fetchall()
        wanted = set(cameras) if cameras is not None else None
        return [job_from_row(r) for r in rows if wanted is None or r["camera_id"] in wanted]

    async def wake(self, clip_ids: Sequence[str]) -> int:
        with self._tx() as db:
            cursor = db.executemany(
                "UPDATE jobs SET status = 'pending', updated_at = ? WHERE clip_id = ? AND status = 'waiting'",
                [(_now(), c) for c in clip_ids],
            )
        return cursor.rowcount

    async def recover(self, instance: str) -> int:
        # One instance per SQLite file: whatever was running belonged to this instance's previous life.
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE jobs SET status = 'pending', claimed_by = NULL, lease_until = NULL, updated_at = ?"
                " WHERE status = 'processing'",
                (_now(),),
            )
            db.execute("UPDATE outbox SET claimed_by = NULL WHERE sent_at IS NULL AND claimed_by IS NOT NULL")
            db.execute("UPDATE webhook_outbox SET claimed_by = NULL, claim_until = NULL WHERE finished_at IS NULL")
        return cursor.rowcount

    async def count_busy(self) -> int:
        return int(self.db.execute(f"SELECT COUNT(*) FROM jobs WHERE status {_in(BUSY)}").fetchone()[0])

    async def count_unfinished(self) -> int:
        return int(self.db.execute(f"SELECT COUNT(*) FROM jobs WHERE status {_in(UNFINISHED)}").fetchone()[0])

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
        if camera_id is not None:
            where.append("camera_id = ?")
            args.append(camera_id)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if since is not None:
            where.append("created_ts >= ?")
            args.append(since.timestamp())
        if until is not None:
            where.append("created_ts < ?")
            args.append(until.timestamp())
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        total = int(self.db.execute(f"SELECT COUNT(*) FROM jobs{clause}", args).fetchone()[0])
        rows = self.db.execute(
            f"SELECT * FROM jobs{clause} ORDER BY created_ts DESC, clip_id LIMIT ? OFFSET ?", [*args, limit, offset]
        ).fetchall()
        return [job_from_row(r) for r in rows], total

    # -- outbox -------------------------------------------------------------------------------------------------

    async def claim_replies(self, instance: str, *, limit: int = 200) -> list[OutboxRow]:
        with self._tx() as db:
            rows = db.execute(
                "UPDATE outbox SET claimed_by = ? WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NULL"
                " AND (claimed_by IS NULL OR claimed_by NOT IN (SELECT id FROM instances WHERE heartbeat_at > ?))"
                " ORDER BY id LIMIT ?) RETURNING id, clip_id, topic, payload, correlation",
                (instance, time.time() - self._liveness, limit),
            ).fetchall()
        return sorted((OutboxRow(r[0], r[1], r[2], bytes(r[3]), bytes(r[4])) for r in rows), key=lambda r: r.id)

    async def mark_sent(self, outbox_ids: Sequence[int]) -> None:
        if not outbox_ids:
            return
        stamp = _now()
        with self._tx() as db:
            db.executemany("UPDATE outbox SET sent_at = ? WHERE id = ?", [(stamp, i) for i in outbox_ids])

    async def count_unsent(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0])

    # -- files --------------------------------------------------------------------------------------------------

    async def file(self, name: str) -> StoredFile | None:
        row = self.db.execute(
            "SELECT name, clip_id, kind, path, size, instance_id, object_key FROM files WHERE name = ?", (name,)
        ).fetchone()
        return _file(row) if row else None

    async def files_of(self, clip_id: str) -> list[StoredFile]:
        return self._files(self.db, clip_id)

    @staticmethod
    def _files(db: sqlite3.Connection, clip_id: str) -> list[StoredFile]:
        rows = db.execute(
            "SELECT name, clip_id, kind, path, size, instance_id, object_key FROM files WHERE clip_id = ?", (clip_id,)
        )
        return [_file(r) for r in rows.fetchall()]

    # -- retention ----------------------------------------------------------------------------------------------

    async def expirable(self, *, created_before: datetime, instance: str) -> list[str]:
        rows = self.db.execute(
            f"SELECT clip_id FROM jobs WHERE status {_in(WITH_FILES)} AND created_ts < ? ORDER BY created_ts",
            (created_before.timestamp(),),
        ).fetchall()
        return [r[0] for r in rows]

    async def stored_bytes(self, instance: str) -> list[tuple[str, int]]:
        rows = self.db.execute(
            "SELECT f.clip_id, SUM(f.size) FROM files f JOIN jobs j ON j.clip_id = f.clip_id"
            " GROUP BY f.clip_id ORDER BY MIN(j.created_ts)"
        ).fetchall()
        return [(r[0], int(r[1])) for r in rows]

    async def expire(self, clip_id: str, hooks: Sequence[Hook] = ()) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM files WHERE clip_id = ?", (clip_id,))
            db.execute("UPDATE jobs SET status = 'expired', updated_at = ? WHERE clip_id = ?", (_now(), clip_id))
            insert_hooks(db, hooks)

    async def prune_rejections(self, older_than: datetime) -> int:
        with self._tx() as db:
            return db.execute("DELETE FROM rejections WHERE created_at < ?", (older_than.timestamp(),)).rowcount

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        yield True  # one instance per SQLite file: nobody to exclude

    # -- instances ----------------------------------------------------------------------------------------------

    async def heartbeat(self, instance: Instance) -> None:
        now = time.time()
        started = instance.started_at.timestamp() if instance.started_at else now
        with self._tx() as db:
            db.execute(
                "INSERT INTO instances (id, base_url, cameras, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET base_url = excluded.base_url, cameras = excluded.cameras,"
                " heartbeat_at = excluded.heartbeat_at",
                (instance.id, instance.base_url, json.dumps(instance.cameras), started, now),
            )

    async def peers(self) -> list[Instance]:
        rows = self.db.execute(
            "SELECT id, base_url, cameras, started_at, heartbeat_at FROM instances WHERE heartbeat_at > ? ORDER BY id",
            (time.time() - self._liveness,),
        ).fetchall()
        return [
            Instance(r[0], r[1], json.loads(r[2]), datetime.fromtimestamp(r[3], UTC), datetime.fromtimestamp(r[4], UTC))
            for r in rows
        ]

    async def leave(self, instance_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM instances WHERE id = ?", (instance_id,))

    async def notifications(self) -> AsyncIterator[Notice]:
        await asyncio.Future()  # no other instance can write this file: nothing ever comes
        yield "jobs"  # pragma: no cover


def migrate(db: sqlite3.Connection) -> int:
    """Apply the migrations newer than the file's `user_version`, each in its own transaction; returns the version."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise ClipError(
            "storage_error",
            f"the job store has schema version {version}; this clipbridge knows up to {len(MIGRATIONS)}",
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in script.split(";\n"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise ClipError("storage_error", f"the job store is not writable: {exc}") from exc
        return self._db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.Error as err:
                self._db.execute("ROLLBACK")
                raise ClipError("storage_error", f"the job store could not commit: {err}") from err
        self._db.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise ClipError("storage_error", f"the job store failed: {exc}") from exc


def _now() -> str:
    return iso(datetime.now(UTC))


def _insert_outbox(db: sqlite3.Connection, reply: Reply) -> None:
    db.execute(
        "INSERT INTO outbox (clip_id, topic, payload, correlation, created_at) VALUES (?, ?, ?, ?, ?)",
        (reply.clip_id, reply.topic, reply.payload, reply.correlation, _now()),
    )


def _file(row: sqlite3.Row | tuple[object, ...]) -> StoredFile:
    name, clip_id, kind, path, size, instance_id, object_key = tuple(row)
    return StoredFile(str(name), str(clip_id), kind, Path(str(path)), int(size), instance_id, object_key)
