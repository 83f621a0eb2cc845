"""The job store: one interface (base.Store); the backend is chosen here, from the config, and nowhere else."""

from __future__ import annotations

from clipbridge.config import Config
from clipbridge.errors import ClipError
from clipbridge.handlers.store.base import (
    Admission,
    Admitted,
    Hook,
    HookRow,
    Instance,
    Notice,
    Reply,
    ReplyBuilder,
    Store,
)
from clipbridge.handlers.store.sqlite import SqliteStore

__all__ = [
    "Admission",
    "Admitted",
    "Hook",
    "HookRow",
    "Instance",
    "Notice",
    "Reply",
    "ReplyBuilder",
    "SqliteStore",
    "Store",
    "make_store",
]


def make_store(config: Config) -> Store:
    """The configured backend, constructed (not yet opened)."""
    store = config.store
    liveness = 3 * config.instance.heartbeat_seconds
    if store.backend == "sqlite":
        return SqliteStore(path=store.sqlite_path, liveness_seconds=liveness)
    try:
        from clipbridge.handlers.store.postgres import PostgresStore
    except ImportError as exc:
        raise ClipError(
            "config_error",
            f"store.url is PostgreSQL but psycopg is not installed: pip install 'clipbridge[postgres]' ({exc})",
        ) from exc
    assert store.url is not None
    return PostgresStore(url=store.url, description=store.describe(), pool_size=store.pool_size,
                         connect_timeout=store.connect_timeout_seconds, liveness_seconds=liveness,
                         instance_id=config.instance.id)  # fmt: skip
