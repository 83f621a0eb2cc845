"""The FastAPI side-app: clip status, listing, submission, downloads with Range, cameras, health, metrics.

`create_app` gets its dependencies explicitly; routes read them through `Annotated` dependencies (deps.py). Every
route is `async def`: the job store is used from the event loop's thread only. HTTP status codes live in http/ only:
error codes are the same as in MQTT replies.
"""

from __future__ import annotations

import secrets
import time

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from clipbridge import __version__
from clipbridge.config import Config
from clipbridge.errors import ClipError, describe_validation
from clipbridge.handlers.index import RecordingsIndex
from clipbridge.handlers.instances import Membership
from clipbridge.handlers.jobs import JobRunner
from clipbridge.handlers.replies import Links
from clipbridge.handlers.signing import check
from clipbridge.handlers.storage.base import ClipStorage
from clipbridge.handlers.storage.local import LocalStorage
from clipbridge.handlers.store import Store
from clipbridge.http import clips, coverage, files, page, status
from clipbridge.http.deps import BrokerState, Parts
from clipbridge.metrics import Metrics

STATUS_FOR_CODE = {
    "payload_too_large": 413,
    "not_found": 404,
    "unauthorized": 401,
    "link_invalid": 403,
    "link_expired": 403,
    "storage_error": 503,
    "index_scanning": 503,
    "shutting_down": 503,
}


def error_response(code: str, message: str, default: int = 422) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=STATUS_FOR_CODE.get(code, default))


def create_app(
    *,
    config: Config,
    store: Store,
    runner: JobRunner,
    index: RecordingsIndex,
    metrics: Metrics,
    links: Links,
    ffmpeg: str,
    broker: BrokerState | None,
    membership: Membership,
    storage: ClipStorage | None = None,
    signing_key: bytes | None = None,
) -> FastAPI:
    storage = storage or LocalStorage(config.clips.output_dir)
    key = signing_key or secrets.token_bytes(32)
    parts = Parts(config, store, runner, index, metrics, links, ffmpeg, broker, membership, storage)
    token = config.http.api_token

    async def require_token(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "")
        if not (given.startswith("Bearer ") and secrets.compare_digest(given[7:].encode(), token.encode())):
            raise ClipError("unauthorized", "a valid 'Authorization: Bearer <token>' header is required")

    async def require_token_or_signature(request: Request) -> None:
        """Files open with a signed link (what replies hand out) or, without one, the bearer token."""
        query = request.query_params
        if "sig" in query or "exp" in query:
            check(request.url.path, query.get("exp"), query.get("sig"), key=key, now=time.time())
        else:
            await require_token(request)

    app = FastAPI(
        title="clipbridge",
        version=__version__,
        description="Clips of camera footage around incidents, cut losslessly from recorder segments.",
    )
    app.state.parts = parts

    @app.exception_handler(ClipError)
    async def clip_error(request: Request, exc: ClipError) -> JSONResponse:
        return error_response(exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response("invalid_request", describe_validation(exc, skip=("body",), root="body"))

    guarded = [Depends(require_token)]
    app.include_router(clips.router, dependencies=guarded)
    app.include_router(files.router, dependencies=[Depends(require_token_or_signature)])
    app.include_router(status.cameras_router, dependencies=guarded)
    app.include_router(coverage.router, dependencies=guarded)
    app.include_router(status.router)
    app.include_router(page.router)  # the page itself is open: its API calls carry the token
    return app
