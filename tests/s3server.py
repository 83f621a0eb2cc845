"""A real S3-protocol server for the tests: moto's standalone server over HTTP on a free port.

No S3 server is packaged for Debian or PyPI except emulators; moto's server speaks the S3 REST protocol (SigV4,
multipart, presigned GETs with Range) and the service talks to it with the same boto3 code as to AWS or MinIO.
What moto does not do: check the signature or the expiry of presigned URLs (with its IAM checks on, presigned GETs
fail outright); `PresignGate` below adds that check. With `auth=True` it checks request signatures and access keys
(wrong credentials -> 403), as S3 does.

`FlakyLink` is a TCP proxy in front of it: the endpoint going away mid-upload, and coming back, for real
connections (moto itself cannot be restarted without losing its buckets).

`PresignGate` is the check moto leaves out: an HTTP front door that verifies a presigned GET as S3 does (SigV4 query
signature recomputed with botocore's own signer and the bucket owner's secret, expiry from X-Amz-Date +
X-Amz-Expires) and answers 403 with S3's error codes, else forwards the request (Range included) to moto.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import boto3
import httpx
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials

from tests.harness import free_port, poll

POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


class S3Server:
    def __init__(self, workdir: Path, *, auth: bool = False, bucket: str = "clips") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.bucket = bucket
        self.access_key, self.secret_key = "test-access", "test-secret"
        env = dict(os.environ)
        if auth:  # the first four requests (below) set up a user; every one after them is checked
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = "4"
        self._log = (workdir / f"moto-{self.port}.log").open("wb")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        poll(self._answers, timeout=30)
        if auth:
            iam = self._client("iam")
            iam.create_user(UserName="clipbridge")
            key = iam.create_access_key(UserName="clipbridge")["AccessKey"]
            iam.put_user_policy(UserName="clipbridge", PolicyName="s3", PolicyDocument=json.dumps(POLICY))
            self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]
        self.client().create_bucket(Bucket=bucket)

    def _answers(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
            return True
        return False

    def _client(self, service: str, **kw: Any) -> Any:
        return boto3.session.Session().client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=kw.pop("access_key", self.access_key),
            aws_secret_access_key=kw.pop("secret_key", self.secret_key),
            config=BotoConfig(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def client(self, **kw: Any) -> Any:
        return self._client("s3", **kw)

    def objects(self, prefix: str = "") -> dict[str, int]:
        """key -> size of every object under the prefix."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}

    def settings(self, endpoint: str | None = None, **extra: Any) -> dict[str, Any]:
        """Service overrides (conftest's config_env keys) for storage in this server's bucket."""
        return {
            "storage__backend": "s3",
            "storage__s3__bucket": self.bucket,
            "storage__s3__endpoint_url": endpoint or self.url,
            "storage__s3__region": "us-east-1",
            "storage__s3__access_key_id": self.access_key,
            "storage__s3__secret_access_key": self.secret_key,
            **{f"storage__s3__{k}": v for k, v in extra.items()},
        }

    def stop(self) -> None:
        self._proc.kill()
        self._proc.wait(timeout=10)
        self._log.close()


class FlakyLink:
    """A TCP proxy to `upstream_port` that can go down (connections cut, new ones closed at once) and come back."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._down = False
        self._cut_after: int | None = None  # client->server bytes left before the link goes down
        self.refused = 0  # connections closed at once while down
        threading.Thread(target=self._accept, daemon=True).start()

    def down_after(self, nbytes: int) -> None:
        """Go down once `nbytes` more bytes went upstream (the middle of the next large upload)."""
        with self._lock:
            self._cut_after = nbytes

    def up(self) -> None:
        with self._lock:
            self._down = False

    @property
    def down(self) -> bool:
        return self._down

    def _go_down(self) -> None:
        self._down, self._cut_after = True, None
        for s in list(self._open):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._down:
                    self.refused += 1
                    conn.close()
                    continue
                upstream = socket.create_connection(("127.0.0.1", self._upstream))
                self._open.update((conn, upstream))
            threading.Thread(target=self._pump, args=(conn, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, conn, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, outbound: bool) -> None:
        try:
            while data := src.recv(65536):
                if outbound:
                    with self._lock:
                        if self._cut_after is not None:
                            if len(data) >= self._cut_after:
                                dst.sendall(data[: self._cut_after])
                                self._go_down()
                                return
                            self._cut_after -= len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(src)
                self._open.discard(dst)
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            self._go_down()


def presign_refusal(url: str, secret: str, now: datetime) -> tuple[str, str] | None:
    """(S3 error code, message) for a presigned GET S3 would refuse, None for one it accepts."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = dict(query)
    try:
        access_key, _, region, service, _ = given["X-Amz-Credential"].split("/")
        signed_at = datetime.strptime(given["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        expires = int(given["X-Amz-Expires"])
        signature = given["X-Amz-Signature"]
    except (KeyError, ValueError):
        return "AccessDenied", "Query-string authentication requires the X-Amz-* parameters"
    if now > signed_at + timedelta(seconds=expires):
        return "AccessDenied", "Request has expired"
    unsigned = parts._replace(query=urlencode([(k, v) for k, v in query if k != "X-Amz-Signature"], quote_via=quote))
    auth = S3SigV4QueryAuth(Credentials(access_key, secret), service, region, expires=expires)
    request = AWSRequest(method="GET", url=unsigned.geturl(), headers={"Host": parts.netloc})
    request.context["timestamp"] = given["X-Amz-Date"]
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    if expected != signature:
        return "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided"
    return None


class PresignGate:
    """Presigned GETs checked as S3 checks them, then served by moto (see the module docstring)."""

    FORWARDED = ("content-type", "content-length", "content-range", "accept-ranges", "etag", "last-modified")

    def __init__(self, server: S3Server) -> None:
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = f"http://{self.headers['Host']}{self.path}"
                refused = presign_refusal(url, server.secret_key, datetime.now(UTC))
                if refused is not None:
                    gate.refused.append(refused[0])
                    body = f"<Error><Code>{refused[0]}</Code><Message>{refused[1]}</Message></Error>".encode()
                    self.send_response(403)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                wanted = {"Range": self.headers["Range"]} if self.headers.get("Range") else {}
                answer = httpx.get(server.url + self.path, headers=wanted, timeout=30)
                self.send_response(answer.status_code)
                for name in PresignGate.FORWARDED:
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.refused: list[str] = []
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


@contextlib.contextmanager
def s3_server(workdir: Path, **kw: Any) -> Iterator[S3Server]:
    server = S3Server(workdir, **kw)
    try:
        yield server
    finally:
        server.stop()
