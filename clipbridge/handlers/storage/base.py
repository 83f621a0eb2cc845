"""What a clip storage is: the protocol the job runner, retention and the side-app use, and a presigned link."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from clipbridge.model import Job, StoredFile


@dataclass(frozen=True)
class Presigned:
    url: str
    expires_at: datetime


class ClipStorage(Protocol):
    @property
    def shared(self) -> bool:
        """True when every instance reaches every file (a bucket), False for one instance's disk."""
        ...

    def keep(self, job: Job, files: Sequence[StoredFile]) -> tuple[StoredFile, ...]:
        """Make a finished clip's files durable where they are served from; returns them as stored. Blocking;
        raises ClipError(storage_error) when they could not be kept (nothing of them is served then)."""
        ...

    def discard(self, files: Sequence[StoredFile]) -> None:
        """Drop the local copies of files whose job was not recorded (another instance finished it)."""
        ...

    def delete(self, files: Sequence[StoredFile]) -> int:
        """Remove stored files (retention); returns the bytes freed. Blocking; raises ClipError(storage_error)."""
        ...

    def presign(self, file: StoredFile) -> Presigned | None:
        """A direct, expiring link to the file for clients that never talk to the side-app; None for local files."""
        ...

    def tidy(self) -> int:
        """At start: remove what an interrupted run left in the storage (S3: stale multipart uploads); how many."""
        ...

    def check(self) -> dict[str, Any]:
        """Health: where files go and whether that place answers (`ok`). Blocking."""
        ...
