"""The SQLite schema as ordered migrations: `MIGRATIONS[n]` takes a file from `user_version` n to n + 1.

Never edit a released migration; add the next one. Version 1 is the schema of the first release (it had no
`user_version`, so a file from it reads as 0 and version 1's IF NOT EXISTS statements leave its tables alone).
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: jobs, where their replies go, the reply outbox, the files clips made.
    """
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
""",
    # 2: the /health write probe gets its table in the schema instead of creating it on first use.
    """
CREATE TABLE IF NOT EXISTS health (id INTEGER PRIMARY KEY, at TEXT);
""",
    # 3: several instances (claims, leases, heartbeats, where files are, deduplicated rejections). SQLite serves one
    # instance; the columns are the same as PostgreSQL's so both run the same code.
    """
ALTER TABLE jobs ADD COLUMN claimed_by TEXT;
ALTER TABLE jobs ADD COLUMN lease_until REAL;
ALTER TABLE jobs ADD COLUMN not_before REAL;
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs(status, created_ts);
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE files ADD COLUMN instance_id TEXT;
CREATE TABLE IF NOT EXISTS instances (
    id           TEXT PRIMARY KEY,
    base_url     TEXT NOT NULL,
    cameras      TEXT NOT NULL,
    started_at   REAL NOT NULL,
    heartbeat_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rejections (
    key        TEXT PRIMARY KEY,
    created_at REAL NOT NULL
);
""",
    # 4: webhook deliveries, queued with the state change they report and retried until delivered or given up.
    """
CREATE TABLE IF NOT EXISTS webhook_outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook     TEXT NOT NULL,
    event       TEXT NOT NULL,
    clip_id     TEXT,
    body        BLOB NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    due_at      REAL NOT NULL,
    claimed_by  TEXT,
    claim_until REAL,
    created_at  REAL NOT NULL,
    finished_at REAL,
    result      TEXT,
    last_error  TEXT
);
CREATE INDEX IF NOT EXISTS webhook_outbox_due ON webhook_outbox(due_at) WHERE finished_at IS NULL;
""",
    # 5: clips kept in object storage: the file's key in the bucket.
    """
ALTER TABLE files ADD COLUMN object_key TEXT;
""",
    # 6: secrets generated once and kept with the jobs (the key that signs links).
    """
CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);
""",
)
