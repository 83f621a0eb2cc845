"""Clips on this instance's disk, as the first release kept them: the files the clipper wrote are the stored ones."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clipbridge.handlers.storage.base import Presigned
from clipbridge.model import Job, StoredFile

logger = logging.getLogger(__name__)


class LocalStorage:
    def __init__(self, output_dir: Path) -> None:
        self._dir = output_dir

    @property
    def shared(self) -> bool:
        return False

    def keep(self, job: Job, files: Sequence[StoredFile]) -> tuple[StoredFile, ...]:
        return tuple(files)  # already where they are served from

    def discard(self, files: Sequence[StoredFile]) -> None:
        for f in files:
            f.path.unlink(missing_ok=True)

    def delete(self, files: Sequence[StoredFile]) -> int:
        freed = 0
        for f in files:
            try:
                size = f.path.stat().st_size
                f.path.unlink()
                freed += size
            except FileNotFoundError:
                pass
            except OSError as exc:
                logger.warning("retention could not delete %s: %s", f.path, exc)
        return freed

    def tidy(self) -> int:
        return 0  # the clipper removes its own temporary files at start

    def presign(self, file: StoredFile) -> Presigned | None:
        return None

    def check(self) -> dict[str, Any]:
        where = self._dir
        while not where.exists() and where != where.parent:  # created with the first clip
            where = where.parent
        ok = where.is_dir() and os.access(where, os.W_OK)
        return {"backend": "local", "ok": ok, "detail": str(self._dir)} | ({} if ok else {"error": "not writable"})
