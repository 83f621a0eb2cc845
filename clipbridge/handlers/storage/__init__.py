"""Where finished clips are kept: on this instance's disk (`local`) or in an S3-compatible bucket (`s3`).

One seam, chosen once from `storage.backend` by `make_storage`; the job runner, retention, the side-app and the
replies talk to `ClipStorage` and do not know which they have.
"""

from __future__ import annotations

from clipbridge.config import Config
from clipbridge.handlers.storage.base import ClipStorage, Presigned
from clipbridge.handlers.storage.local import LocalStorage

__all__ = ["ClipStorage", "LocalStorage", "Presigned", "make_storage"]


def make_storage(config: Config) -> ClipStorage:
    """The clip storage `storage.backend` names (the one place that chooses)."""
    if config.storage.backend == "s3":
        from clipbridge.handlers.storage.s3 import S3Storage  # boto3 is the optional `s3` extra

        return S3Storage(config.storage.s3)
    return LocalStorage(config.clips.output_dir)
