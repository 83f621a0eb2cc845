"""The job store: SQLite in WAL mode. Jobs, where their replies go, the reply outbox and the files clips made.

Used from the asyncio thread only. Every state change that must survive a crash is one transaction: a job and its
reply target are committed before the MQTT message is acknowledged; a finished job and its outbox rows together.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clipbridge.errors import ClipError

TERMINAL = ("done", "partial", "failed", "expired")
UNFINISHED = ("pending", "waiting", "processing")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    clip_id       TEXT PRIMARY KEY,
    dedupe_key    TEXT NOT NULL UNIQUE,
    event_id      TEXT,
    camera_id     TEXT NOT NULL,
    incident      TEXT NOT NULL,
    window_start  TEXT NOT NULL,
    window_end    TEXT NOT NULL,
    metadata      TEXT NOT NULL,
    source        TEXT NOT NULL,
    status        TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    result        TEXT,
    error_code    TEXT,
    error_message TEXT,
    created_at    TEXT NOT NULL,
    created_ts    REAL NOT NULL,
    updated_at    TEXT NOT NULL,
    completed_at  TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE INDEX IF NOT EXISTS jobs_camera_created ON jobs(camera_id, created_ts);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_ts);
CREATE TABLE IF NOT EXISTS reply_targets (
    clip_id     TEXT NOT NULL REFERENCES jobs(clip_id),
    topic       TEXT NOT NULL,
    correlation BLOB NOT NULL,
    UNIQUE (clip_id, topic, correlation)
);
CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    clip_id     TEXT,
    topic       TEXT NOT NULL,
    payload     BLOB NOT NULL,
    correlation BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    sent_at     TEXT
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox(id) WHERE sent_at IS NULL;
CREATE TABLE IF NOT EXISTS files (
    name    TEXT PRIMARY KEY,
    clip_id TEXT NOT NULL REFERENCES jobs(clip_id),
    kind    TEXT NOT NULL,
    path    TEXT NOT NULL,
    size    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS files_clip ON files(clip_id);
"""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class NewJob:
    clip_id: str
    dedupe_key: str
    event_id: str | None
    camera_id: str
    incident: datetime
    window_start: datetime
    window_end: datetime
    metadata: dict[str, Any]
    source: str
    status: str = "pending"  # "waiting" when the window ends in the future: no worker needs to see it yet


@dataclass(frozen=True)
class ReplyTarget:
    topic: str
    correlation: bytes = b""


@dataclass(frozen=True)
class Job:
    clip_id: str
    dedupe_key: str
    event_id: str | None
    camera_id: str
    incident: datetime
    window_start: datetime
    window_end: datetime
    metadata: dict[str, Any]
    source: str
    status: str
    attempts: int
    result: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    created_at: str
    updated_at: str
    completed_at: str | None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class OutboxRow:
    id: int
    clip_id: str | None
    topic: str
    payload: bytes
    correlation: bytes


@dataclass(frozen=True)
class StoredFile:
    name: str
    clip_id: str
    kind: str
    path: Path
    size: int


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


class Store:
    """Construct, then `open()`; all methods raise ClipError(storage_error) when SQLite cannot write."""

    def __init__(self, *, path: Path) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: a job acknowledged to the broker must survive a power cut, not only a process crash.
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise ClipError("storage_error", f"cannot open the job store {self._path}: {exc}") from exc
        db.row_factory = sqlite3.Row
        self._db = db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("Store.open() was not called")
        return self._db

    def _tx(self) -> _Transaction:
        return _Transaction(self.db)

    # -- intake -------------------------------------------------------------------------------------------------

    def submit_many(self, items: Sequence[tuple[NewJob, ReplyTarget | None]]) -> list[tuple[Job, bool, bool]]:
        """Insert each job unless its dedupe key exists; record its reply target. One transaction for the batch.

        Returns (job, created, target_known) per item; the caller answers duplicates of finished jobs itself.
        """
        out: list[tuple[Job, bool, bool]] = []
        with self._tx() as db:
            for new, target in items:
                row = db.execute("SELECT * FROM jobs WHERE dedupe_key = ?", (new.dedupe_key,)).fetchone()
                created = row is None
                if created:
                    stamp = now_iso()
                    db.execute(
                        "INSERT INTO jobs (clip_id, dedupe_key, event_id, camera_id, incident, window_start,"
                        " window_end, metadata, source, status, created_at, created_ts, updated_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            new.clip_id,
                            new.dedupe_key,
                            new.event_id,
                            new.camera_id,
                            new.incident.isoformat(),
                            new.window_start.isoformat(),
                            new.window_end.isoformat(),
                            json.dumps(new.metadata),
                            new.source,
                            new.status,
                            stamp,
                            datetime.now(UTC).timestamp(),
                            stamp,
                        ),
                    )
                    row = db.execute("SELECT * FROM jobs WHERE clip_id = ?", (new.clip_id,)).fetchone()
                job = _job(row)
                known = False
                if target is not None:
                    cursor = db.execute(
                        "INSERT OR IGNORE INTO reply_targets (clip_id, topic, correlation) VALUES (?, ?, ?)",
                        (job.clip_id, target.topic, target.correlation),
                    )
                    known = cursor.rowcount == 0
                out.append((job, created, known))
        return out

    def queue_reply(self, topic: str, payload: bytes, correlation: bytes = b"", clip_id: str | None = None) -> None:
        with self._tx() as db:
            _insert_outbox(db, clip_id, topic, payload, correlation)

    def queue_replies(self, rows: Iterable[tuple[str | None, str, bytes, bytes]]) -> None:
        """(clip_id, topic, payload, correlation) rows in one transaction."""
        with self._tx() as db:
            for clip_id, topic, payload, correlation in rows:
                _insert_outbox(db, clip_id, topic, payload, correlation)

    # -- jobs ---------------------------------------------------------------------------------------------------

    def get(self, clip_id: str) -> Job | None:
        row = self.db.execute("SELECT * FROM jobs WHERE clip_id = ?", (clip_id,)).fetchone()
        return _job(row) if row else None

    def set_status(self, clip_id: str, status: str, *, attempt: bool = False) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET status = ?, attempts = attempts + ?, updated_at = ? WHERE clip_id = ?",
                (status, 1 if attempt else 0, now_iso(), clip_id),
            )

    def finish(
        self,
        clip_id: str,
        *,
        status: str,
        result: dict[str, Any] | None,
        error: ClipError | None,
        files: Sequence[StoredFile],
        reply_payload: bytes,
        completed_at: str,
    ) -> Job:
        """Close the job, register its files and queue one reply per target, atomically."""
        stamp = completed_at
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET status = ?, result = ?, error_code = ?, error_message = ?, updated_at = ?,"
                " completed_at = ? WHERE clip_id = ?",
                (
                    status,
                    json.dumps(result) if result is not None else None,
                    error.code if error else None,
                    error.message if error else None,
                    stamp,
                    stamp,
                    clip_id,
                ),
            )
            for f in files:
                db.execute(
                    "INSERT OR REPLACE INTO files (name, clip_id, kind, path, size) VALUES (?, ?, ?, ?, ?)",
                    (f.name, f.clip_id, f.kind, str(f.path), f.size),
                )
            targets = db.execute("SELECT topic, correlation FROM reply_targets WHERE clip_id = ?", (clip_id,))
            for topic, correlation in targets.fetchall():
                _insert_outbox(db, clip_id, topic, reply_payload, correlation)
            row = db.execute("SELECT * FROM jobs WHERE clip_id = ?", (clip_id,)).fetchone()
        return _job(row)

    def unfinished(self) -> list[Job]:
        rows = self.db.execute(
            "SELECT * FROM jobs WHERE status IN ('pending', 'waiting', 'processing') ORDER BY created_ts"
        ).fetchall()
        return [_job(r) for r in rows]

    def count_busy(self) -> int:
        """Jobs that need a worker now (pending, processing); waiting ones hold none until their footage exists."""
        return int(self.db.execute("SELECT COUNT(*) FROM jobs WHERE status IN ('pending', 'processing')").fetchone()[0])

    def count_unfinished(self) -> int:
        return int(
            self.db.execute(
                "SELECT COUNT(*) FROM jobs WHERE status IN ('pending', 'waiting', 'processing')"
            ).fetchone()[0]
        )

    def list_jobs(
        self,
        *,
        camera_id: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Job], int]:
        """Newest first; returns (page, total matching)."""
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
        return [_job(r) for r in rows], total

    # -- outbox -------------------------------------------------------------------------------------------------

    def unsent(self, *, exclude: Iterable[int] = (), limit: int = 500) -> list[OutboxRow]:
        skip = set(exclude)
        rows = self.db.execute(
            "SELECT id, clip_id, topic, payload, correlation FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT ?",
            (limit + len(skip),),
        ).fetchall()
        return [OutboxRow(r[0], r[1], r[2], bytes(r[3]), bytes(r[4])) for r in rows if r[0] not in skip][:limit]

    def mark_sent(self, outbox_ids: Sequence[int]) -> None:
        if not outbox_ids:
            return
        stamp = now_iso()
        with self._tx() as db:
            db.executemany("UPDATE outbox SET sent_at = ? WHERE id = ?", [(stamp, i) for i in outbox_ids])

    def count_unsent(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0])

    # -- files --------------------------------------------------------------------------------------------------

    def file(self, name: str) -> StoredFile | None:
        row = self.db.execute("SELECT name, clip_id, kind, path, size FROM files WHERE name = ?", (name,)).fetchone()
        return StoredFile(row[0], row[1], row[2], Path(row[3]), row[4]) if row else None

    def files_of(self, clip_id: str) -> list[StoredFile]:
        rows = self.db.execute("SELECT name, clip_id, kind, path, size FROM files WHERE clip_id = ?", (clip_id,))
        return [StoredFile(r[0], r[1], r[2], Path(r[3]), r[4]) for r in rows.fetchall()]

    def expirable(self, *, created_before: datetime) -> list[str]:
        """Finished clips with files, created before the cutoff, oldest first."""
        rows = self.db.execute(
            "SELECT clip_id FROM jobs WHERE status IN ('done', 'partial') AND created_ts < ? ORDER BY created_ts",
            (created_before.timestamp(),),
        ).fetchall()
        return [r[0] for r in rows]

    def stored_bytes(self) -> list[tuple[str, int]]:
        """(clip_id, bytes of its files) for every clip that has files, oldest first."""
        rows = self.db.execute(
            "SELECT f.clip_id, SUM(f.size) FROM files f JOIN jobs j ON j.clip_id = f.clip_id"
            " GROUP BY f.clip_id ORDER BY MIN(j.created_ts)"
        ).fetchall()
        return [(r[0], int(r[1])) for r in rows]

    def expire(self, clip_id: str) -> None:
        """The clip's files are gone: forget them and mark the job expired (it still answers, without downloads)."""
        with self._tx() as db:
            db.execute("DELETE FROM files WHERE clip_id = ?", (clip_id,))
            db.execute("UPDATE jobs SET status = 'expired', updated_at = ? WHERE clip_id = ?", (now_iso(), clip_id))

    def ping(self) -> None:
        """A write that proves the store is writable (for /health)."""
        with self._tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS health (id INTEGER PRIMARY KEY, at TEXT)")
            db.execute("INSERT OR REPLACE INTO health (id, at) VALUES (1, ?)", (now_iso(),))


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


def _insert_outbox(db: sqlite3.Connection, clip_id: str | None, topic: str, payload: bytes, correlation: bytes) -> None:
    db.execute(
        "INSERT INTO outbox (clip_id, topic, payload, correlation, created_at) VALUES (?, ?, ?, ?, ?)",
        (clip_id, topic, payload, correlation, now_iso()),
    )


def _job(row: sqlite3.Row) -> Job:
    return Job(
        clip_id=row["clip_id"],
        dedupe_key=row["dedupe_key"],
        event_id=row["event_id"],
        camera_id=row["camera_id"],
        incident=_dt(row["incident"]),
        window_start=_dt(row["window_start"]),
        window_end=_dt(row["window_end"]),
        metadata=json.loads(row["metadata"]),
        source=row["source"],
        status=row["status"],
        attempts=row["attempts"],
        result=json.loads(row["result"]) if row["result"] else None,
        error_code=row["error_code"],
        error_message=row["error_message"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        completed_at=row["completed_at"],
    )
