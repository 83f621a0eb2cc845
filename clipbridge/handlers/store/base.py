"""The job store's interface: what every backend (SQLite, PostgreSQL) offers the rest of the service.

Every state change that must survive a crash is one transaction: an intake batch (its new jobs, their reply
targets, the rejections and the replies it decided) is committed before any of its messages is acknowledged; a
finished job, its files and its outbox rows together. Work is claimed, not assigned: a worker claims a pending job
(or one whose lease expired) for its instance and renews the lease while it cuts; replies are claimed by an
instance before it publishes them. With one instance (SQLite) the same calls simply never meet a competitor.
Methods raise ClipError(storage_error) when the store cannot be reached or written.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from clipbridge.errors import ClipError
from clipbridge.model import ClipRecord, Job, JobStatus, NewJob, OutboxRow, ReplyTarget, StoredFile


@dataclass(frozen=True)
class Admission:
    """An accepted event: its job, where its answers go, and what intake decided to say at once."""

    job: NewJob
    target: ReplyTarget | None  # None for REST (the caller polls)
    redelivered: bool = False  # an answered target is not answered again (broker DUP, or a copy another instance got)
    announce: bool = False  # queue an immediate `pending`/`waiting` reply for a new job (mqtt.publish_accepted)


@dataclass(frozen=True)
class Admitted:
    job: Job
    created: bool


@dataclass(frozen=True)
class Hook:
    """A webhook delivery to queue in the same transaction as the state change it reports."""

    webhook: str  # the webhook's name in the config
    event: str  # done | partial | failed | rejected | expired
    body: bytes
    clip_id: str | None = None


@dataclass(frozen=True)
class HookRow:
    """A queued webhook delivery, as claimed by a sender."""

    id: int
    webhook: str
    event: str
    body: bytes
    attempts: int
    created_at: float  # epoch seconds


@dataclass(frozen=True)
class Reply:
    """An outbox row to queue. With a `dedupe_key`, only the first reply with that key is queued (a rejection of
    one event received by several instances is sent once), and its `hooks` with it."""

    topic: str
    payload: bytes
    correlation: bytes = b""
    clip_id: str | None = None
    dedupe_key: str | None = None
    hooks: tuple[Hook, ...] = ()


@dataclass(frozen=True)
class Instance:
    """A running clipbridge, as its heartbeat row says."""

    id: str
    base_url: str
    cameras: dict[str, str] = field(default_factory=dict)  # camera id -> the IANA time zone of its source
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None


Notice = Literal["jobs", "outbox"]

# Builds the reply payload for a job as the store holds it (with its files), inside the admitting transaction.
ReplyBuilder = Callable[[Job, list[StoredFile]], bytes]


class Store(Protocol):
    @property
    def shared(self) -> bool:
        """True when other instances may use the same store (PostgreSQL)."""

    def describe(self) -> str: ...
    async def open(self) -> None:
        """Connect and create or migrate the schema."""

    async def close(self) -> None: ...
    async def ping(self) -> None:
        """A write that proves the store is writable (for /health)."""

    async def secret(self, name: str, candidate: str) -> str:
        """The value kept under `name`; `candidate` becomes it if there is none yet (the first instance wins)."""

    # -- intake ---------------------------------------------------------------------------------------------------
    async def admit(
        self, admissions: Sequence[Admission], rejections: Sequence[Reply], reply_for: ReplyBuilder
    ) -> list[Admitted]:
        """One transaction: insert each job unless its dedupe key exists, record reply targets, queue the
        rejections, the announcements of new jobs and the answers to duplicates of finished ones."""

    # -- jobs -----------------------------------------------------------------------------------------------------
    async def get(self, clip_id: str) -> Job | None: ...
    async def claim(self, instance: str, cameras: Sequence[str] | None, lease_seconds: float) -> Job | None:
        """Take the oldest pending job that is due (or one whose lease expired) of these cameras (None: any)."""

    async def renew(self, clip_id: str, instance: str, lease_seconds: float) -> bool:
        """Extend this instance's lease; False if the job is no longer ours."""

    async def release(
        self, clip_id: str, instance: str, *, status: Literal["pending", "waiting"], delay_seconds: float = 0.0
    ) -> None:
        """Give a claimed job back (a retry after `delay_seconds`, a shutdown, or a wait for footage)."""

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
        """Close the job, register its files, queue one reply per target and the webhook deliveries, atomically;
        False (nothing written) if the job is no longer claimed by this instance (another took it over)."""

    async def waiting(self, cameras: Sequence[str] | None) -> list[Job]:
        """Jobs waiting for footage of these cameras (None: any)."""

    async def wake(self, clip_ids: Sequence[str]) -> int:
        """Waiting jobs whose footage is there become pending; returns how many did."""

    async def recover(self, instance: str) -> int:
        """At start: what a previous life of this instance held (running jobs, claimed replies) is released."""

    async def count_busy(self) -> int:
        """Jobs that need a worker now (pending, processing); waiting ones hold none until their footage exists."""

    async def count_unfinished(self) -> int: ...
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
        """Newest first; returns (page, total matching)."""

    # -- outbox ---------------------------------------------------------------------------------------------------
    async def claim_replies(self, instance: str, *, limit: int = 200) -> list[OutboxRow]:
        """Unsent replies not claimed by a live instance, now claimed by this one (oldest first). A claim lasts
        as long as its instance lives: paho resends what is in flight itself, so nothing is published twice by
        one live instance; a dead instance's claims lapse and another publishes its rows (at-least-once)."""

    async def mark_sent(self, outbox_ids: Sequence[int]) -> None: ...
    async def count_unsent(self) -> int: ...

    # -- webhook deliveries ---------------------------------------------------------------------------------------
    async def claim_hooks(self, instance: str, *, limit: int, lease_seconds: float) -> list[HookRow]:
        """Due deliveries (oldest first) not claimed by another sender within its lease, now claimed by this one."""

    async def hook_done(self, hook_id: int, *, result: str, error: str | None = None) -> None:
        """The delivery is over: `delivered`, or given up (`failed`, `expired`) with the reason."""

    async def hook_retry(self, hook_id: int, *, delay_seconds: float, error: str) -> None:
        """Try again after `delay_seconds`; counts an attempt and releases the claim."""

    async def count_hooks_pending(self) -> int: ...

    # -- files ----------------------------------------------------------------------------------------------------
    async def file(self, name: str) -> StoredFile | None: ...
    async def files_of(self, clip_id: str) -> list[StoredFile]: ...

    # -- retention ------------------------------------------------------------------------------------------------
    async def expirable(self, *, created_before: datetime, instance: str) -> list[str]:
        """Finished clips whose files this instance holds (on its disk, or in the shared bucket), created before the
        cutoff, oldest first."""

    async def stored_bytes(self, instance: str) -> list[tuple[str, int]]:
        """(clip_id, bytes of its files) for every clip whose files this instance holds (as expirable), oldest first."""

    async def expire(self, clip_id: str, hooks: Sequence[Hook] = ()) -> None: ...
    async def prune_rejections(self, older_than: datetime) -> int: ...
    def exclusive(self, name: str) -> AbstractAsyncContextManager[bool]:
        """Across instances, at most one holds `name` at a time: yields True if this one got it (never waits)."""

    # -- instances ------------------------------------------------------------------------------------------------
    async def heartbeat(self, instance: Instance) -> None: ...
    async def peers(self) -> list[Instance]:
        """Live instances (heartbeat younger than the store's liveness threshold), this one included."""

    async def leave(self, instance_id: str) -> None: ...
    def notifications(self) -> AsyncIterator[Notice]:
        """What other instances did that this one should look at (new jobs, replies to send); PostgreSQL's
        LISTEN/NOTIFY. An embedded store has no other instances: the iterator never yields."""
