"""Clips in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2) through boto3: uploaded and verified before the job
is `done`, served by presigned links, deleted in batches by retention.

Keys are `{prefix}{camera_id}/{YYYY}/{MM}/{DD}/{file}` (the incident's UTC date); a file's name holds its clip id,
so a job cut again after a crash uploads to the same key (idempotent). Request retries with backoff (5xx,
throttling, connection errors) are botocore's standard retry mode; the error code of what still fails is in the
`storage_error` message. Secrets are never logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError as BotoClientError

from clipbridge.config import S3Config
from clipbridge.errors import ClipError
from clipbridge.handlers.storage.base import Presigned
from clipbridge.model import FileKind, Job, StoredFile

logger = logging.getLogger(__name__)
CONTENT_TYPES: dict[FileKind, str] = {
    "video": "video/mp4",
    "json": "application/json",
    "yaml": "application/yaml",
    "txt": "text/plain; charset=utf-8",
    "jpg": "image/jpeg",
}
DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys
MB = 1024 * 1024


class S3Storage:
    def __init__(self, config: S3Config) -> None:
        self._config = config
        self._client = _client(config, attempts=config.max_attempts)
        # /health answers fast: one attempt, short timeouts.
        self._probe = _client(config.model_copy(update={"connect_timeout_seconds": 2.0, "read_timeout_seconds": 5.0}),
                              attempts=1)  # fmt: skip
        self._signer = (
            _client(config.model_copy(update={"endpoint_url": config.public_endpoint_url}), attempts=1)
            if config.public_endpoint_url
            else self._client
        )
        self._hasher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="s3-etag")
        part = config.multipart_threshold_mb * MB
        self._transfer = TransferConfig(multipart_threshold=part, multipart_chunksize=part)

    @property
    def shared(self) -> bool:
        return True

    def key_for(self, job: Job, name: str) -> str:
        day = job.window.incident.astimezone(UTC)
        return f"{self._config.prefix}{job.camera_id}/{day:%Y/%m/%d}/{name}"

    def keep(self, job: Job, files: Sequence[StoredFile]) -> tuple[StoredFile, ...]:
        kept = []
        for f in files:
            key = self.key_for(job, f.name)
            extra: dict[str, Any] = {
                "ContentType": CONTENT_TYPES[f.kind],
                "Metadata": {
                    "clip_id": job.clip_id,
                    "camera_id": job.camera_id,
                    "incident": job.window.incident.astimezone(UTC).isoformat(),
                },
            }
            if self._config.storage_class:
                extra["StorageClass"] = self._config.storage_class
            # The file's ETag is computed while it goes up (hashlib releases the GIL): the check costs no extra time.
            expected = self._hasher.submit(_etag, f, self._config.multipart_threshold_mb * MB)
            with _s3_errors(f"upload {f.name} to s3://{self._config.bucket}/{key}"):
                self._client.upload_file(str(f.path), self._config.bucket, key, ExtraArgs=extra, Config=self._transfer)
                self._verify(f, key, expected.result())
            kept.append(replace(f, object_key=key))
        if not self._config.keep_local_copy:
            for f in files:
                f.path.unlink(missing_ok=True)
        return tuple(kept)

    def _verify(self, f: StoredFile, key: str, expected: str) -> None:
        """The object is the file: same size, and the ETag S3 computes for a file uploaded in these parts."""
        head = self._client.head_object(Bucket=self._config.bucket, Key=key)
        if head["ContentLength"] != f.size:
            raise ClipError("storage_error", f"s3://{self._config.bucket}/{key} holds {head['ContentLength']} bytes, "
                            f"{f.name} has {f.size}: the upload did not complete")  # fmt: skip
        etag = str(head.get("ETag", "")).strip('"')
        if etag and not _encrypted(head) and etag != expected:
            raise ClipError("storage_error", f"s3://{self._config.bucket}/{key}: ETag {etag} is not the file's "
                            f"{expected}: the object differs from the clip")  # fmt: skip

    def discard(self, files: Sequence[StoredFile]) -> None:
        # The finished job's instance uploaded to the same keys (same clip id): its objects stay.
        for f in files:
            f.path.unlink(missing_ok=True)

    def delete(self, files: Sequence[StoredFile]) -> int:
        for f in files:
            f.path.unlink(missing_ok=True)  # a local copy, if one was kept
        keys = [f.object_key for f in files if f.object_key]
        for i in range(0, len(keys), DELETE_BATCH):
            batch = keys[i : i + DELETE_BATCH]
            with _s3_errors(f"delete {len(batch)} object(s) from s3://{self._config.bucket}"):
                answer = self._client.delete_objects(
                    Bucket=self._config.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            if errors := answer.get("Errors"):
                first = errors[0]
                raise ClipError("storage_error", f"S3 did not delete {len(errors)} object(s), e.g. "
                                f"{first.get('Key')}: {first.get('Code')}: {first.get('Message')}")  # fmt: skip
        return sum(f.size for f in files if f.object_key)

    def presign(self, file: StoredFile) -> Presigned | None:
        if not file.object_key:
            return None
        seconds = self._config.presign_seconds
        url = self._signer.generate_presigned_url(  # signing is local: no request is made
            "get_object", Params={"Bucket": self._config.bucket, "Key": file.object_key}, ExpiresIn=seconds
        )
        return Presigned(url, datetime.now(UTC) + timedelta(seconds=seconds))

    def check(self) -> dict[str, Any]:
        where = {"backend": "s3", "bucket": self._config.bucket, "endpoint": self._config.endpoint_url or "aws"}
        try:
            with _s3_errors(f"HEAD bucket {self._config.bucket}"):
                self._probe.head_bucket(Bucket=self._config.bucket)
        except ClipError as exc:
            return {**where, "ok": False, "error": exc.message}
        return {**where, "ok": True}

    def tidy(self, older_than: timedelta = timedelta(hours=1)) -> int:
        """Multipart uploads a crash left open under the prefix (their parts cost storage); younger ones may be
        another instance's upload in flight."""
        cutoff = datetime.now(UTC) - older_than
        aborted = 0
        with _s3_errors(f"list open uploads in s3://{self._config.bucket}/{self._config.prefix}"):
            pages = self._client.get_paginator("list_multipart_uploads")
            for page in pages.paginate(Bucket=self._config.bucket, Prefix=self._config.prefix):
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] < cutoff:
                        self._client.abort_multipart_upload(
                            Bucket=self._config.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        aborted += 1
        return aborted


def _client(config: S3Config, *, attempts: int) -> Any:
    secret = config.secret_access_key.get_secret_value() if config.secret_access_key else None
    return boto3.session.Session().client(
        "s3",
        endpoint_url=config.endpoint_url,
        region_name=config.region,
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=secret,
        config=BotoConfig(
            signature_version="s3v4",  # MinIO, R2 and every region take it; v2 links are refused by most
            s3={"addressing_style": config.addressing_style},
            retries={"mode": "standard", "max_attempts": attempts},
            connect_timeout=config.connect_timeout_seconds,
            read_timeout=config.read_timeout_seconds,
        ),
    )


@contextlib.contextmanager
def _s3_errors(doing: str) -> Any:
    """boto3's failures as storage_error with S3's own error code in the message."""
    try:
        yield
    except (BotoClientError, S3UploadFailedError) as exc:
        # upload_file wraps S3's answer in S3UploadFailedError; the answer is what a person needs.
        answer = exc if isinstance(exc, BotoClientError) else (exc.__cause__ or exc.__context__)
        if not isinstance(answer, BotoClientError):
            raise ClipError("storage_error", f"cannot {doing}: {exc}") from exc
        error = answer.response.get("Error", {})
        code = error.get("Code") or str(answer.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?"))
        message = _HTTP_MEANING.get(code) or error.get("Message") or ""  # a HEAD has no body: say what it means
        raise ClipError("storage_error", f"cannot {doing}: S3 error {code}{': ' + message if message else ''}") from exc
    except (BotoCoreError, OSError) as exc:  # no credentials, endpoint unreachable after the retries, ...
        raise ClipError("storage_error", f"cannot {doing}: {exc}") from exc


# HEAD answers carry no body: say what the status means.
_HTTP_MEANING = {
    "403": "access denied (check the credentials and the bucket policy)",
    "404": "no such bucket",
    "301": "the bucket is in another region (set storage.s3.region)",
    "400": "bad request (check storage.s3.region and addressing_style)",
}


def _etag(f: StoredFile, part: int) -> str:
    """The ETag S3 gives a file uploaded whole (its MD5) or in parts of `part` bytes (MD5 of the parts' MD5s)."""
    digests = []
    with f.path.open("rb") as fh:
        while chunk := fh.read(part):
            digests.append(hashlib.md5(chunk, usedforsecurity=False).digest())
    if f.size < part:
        return digests[0].hex() if digests else hashlib.md5(b"", usedforsecurity=False).hexdigest()
    return f"{hashlib.md5(b''.join(digests), usedforsecurity=False).hexdigest()}-{len(digests)}"


def _encrypted(head: dict[str, Any]) -> bool:
    """With SSE-KMS or SSE-C the ETag is not an MD5 of the content."""
    return head.get("ServerSideEncryption") == "aws:kms" or "SSECustomerAlgorithm" in head
