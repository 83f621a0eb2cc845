"""The PostgreSQL schema as ordered migrations, applied at start under an advisory lock (several instances starting
together migrate once). `MIGRATIONS[n]` takes the database from version n to n + 1; never edit a released one."""

from __future__ import annotations

MIGRATE_LOCK = 0x636C6970  # pg_advisory_xact_lock key for migrations ("clip")

MIGRATIONS: tuple[str, ...] = (
    # 1: jobs, where their replies go, the reply outbox, the files clips made and which instance holds them,
    # instances and their heartbeats, deduplicated rejections, the health probe.
    """
CREATE TABLE jobs (
    clip_id       text PRIMARY KEY,
    dedupe_key    text NOT NULL UNIQUE,
    event_id      text,
    camera_id     text NOT NULL,
    incident      timestamptz NOT NULL,
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL,
    metadata      jsonb NOT NULL,
    source        text NOT NULL,
    status        text NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    result        jsonb,
    error_code    text,
    error_message text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    claimed_by    text,
    lease_until   timestamptz,
    not_before    timestamptz
);
CREATE INDEX jobs_claimable ON jobs (created_at) WHERE status IN ('pending', 'processing');
CREATE INDEX jobs_waiting ON jobs (camera_id) WHERE status = 'waiting';
CREATE INDEX jobs_created ON jobs (created_at);
CREATE INDEX jobs_camera_created ON jobs (camera_id, created_at);
CREATE TABLE reply_targets (
    clip_id     text NOT NULL REFERENCES jobs (clip_id),
    topic       text NOT NULL,
    correlation bytea NOT NULL,
    UNIQUE (clip_id, topic, correlation)
);
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    clip_id     text,
    topic       text NOT NULL,
    payload     bytea NOT NULL,
    correlation bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    claimed_by  text
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
CREATE TABLE files (
    name        text PRIMARY KEY,
    clip_id     text NOT NULL REFERENCES jobs (clip_id),
    kind        text NOT NULL,
    path        text NOT NULL,
    size        bigint NOT NULL,
    instance_id text
);
CREATE INDEX files_clip ON files (clip_id);
CREATE TABLE instances (
    id           text PRIMARY KEY,
    base_url     text NOT NULL,
    cameras      jsonb NOT NULL,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL
);
CREATE TABLE rejections (
    key        text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE health (id integer PRIMARY KEY, at timestamptz NOT NULL);
""",
    # 2: webhook deliveries, queued with the state change they report and retried until delivered or given up.
    """
CREATE TABLE webhook_outbox (
    id          bigserial PRIMARY KEY,
    webhook     text NOT NULL,
    event       text NOT NULL,
    clip_id     text,
    body        bytea NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    due_at      timestamptz NOT NULL DEFAULT now(),
    claimed_by  text,
    claim_until timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    result      text,
    last_error  text
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (due_at) WHERE finished_at IS NULL;
""",
    # 3: clips kept in object storage: the file's key in the bucket.
    """
ALTER TABLE files ADD COLUMN object_key text;
""",
    # 4: secrets generated once and shared by every instance (the key that signs links).
    """
CREATE TABLE secrets (name text PRIMARY KEY, value text NOT NULL);
""",
)
