"""The job store's schema versioning: a file made by the first release upgrades in place, losing nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from clipbridge.errors import ClipError
from clipbridge.handlers.store import SqliteStore
from clipbridge.handlers.store.sqlite_schema import MIGRATIONS

FIRST_RELEASE_SCHEMA = Path(__file__).parent / "fixtures" / "store_schema_v0.sql"


def first_release_db(path: Path) -> None:
    """A database as clipbridge's first release left it: no user_version, a finished and an unfinished job, an
    unsent reply (made with that release's exact schema, kept in tests/fixtures)."""
    db = sqlite3.connect(path)
    db.executescript(FIRST_RELEASE_SCHEMA.read_text())
    cols = "clip_id, dedupe_key, event_id, camera_id, incident, window_start, window_end, metadata, source, status"
    cols += ", created_at, created_ts, updated_at"
    for clip_id, status in (("a1", "done"), ("b2", "waiting")):
        db.execute(
            f"INSERT INTO jobs ({cols}) VALUES (?, ?, NULL, 'camera1', '2025-08-29T14:30:15+00:00',"
            " '2025-08-29T14:30:00+00:00', '2025-08-29T14:30:20+00:00', '{\"zone\": \"B\"}', 'mqtt', ?,"
            " '2026-11-24T10:00:00.000Z', 1795000000.0, '2026-11-24T10:00:00.000Z')",
            (clip_id, f"id:{clip_id}", status),
        )
    db.execute("INSERT INTO reply_targets (clip_id, topic, correlation) VALUES ('b2', 'replies/x', x'01')")
    db.execute(
        "INSERT INTO outbox (clip_id, topic, payload, correlation, created_at) VALUES"
        " ('a1', 'replies/y', ?, x'02', '2026-11-24T10:00:01.000Z')",
        (b'{"status": "done"}',),
    )
    db.commit()
    db.close()


def test_a_first_release_database_upgrades_without_losing_jobs_or_unsent_replies(tmp_path):
    asyncio.run(upgrade_scenario(tmp_path / "clipbridge.db"))


async def upgrade_scenario(path: Path) -> None:
    first_release_db(path)
    store = SqliteStore(path=path)
    await store.open()
    try:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        [waiting] = await store.waiting(None)
        assert waiting.clip_id == "b2" and waiting.metadata == {"zone": "B"} and waiting.window.seconds == 20
        assert await store.count_unfinished() == 1
        [reply] = await store.claim_replies("i1")
        assert (reply.clip_id, reply.topic, reply.correlation) == ("a1", "replies/y", b"\x02")
        await store.ping()  # the health probe's table came with the migration
    finally:
        await store.close()
    # Opening again applies nothing and changes nothing.
    again = SqliteStore(path=path)
    await again.open()
    assert await again.count_unsent() == 1 and await again.count_unfinished() == 1
    await again.close()


def test_a_database_from_a_newer_release_is_refused_with_a_clear_error(tmp_path):
    path = tmp_path / "future.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(ClipError) as err:
        asyncio.run(SqliteStore(path=path).open())
    assert err.value.code == "storage_error" and "schema version" in err.value.message
