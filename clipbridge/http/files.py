"""Files the service made, served by looking their name up in the store (a path from a request is never opened)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from clipbridge.errors import ClipError
from clipbridge.http.deps import Parts, PartsDep
from clipbridge.http.models import ERRORS
from clipbridge.model import FileKind, StoredFile

router = APIRouter()
MEDIA_TYPES: dict[FileKind, str] = {
    "video": "video/mp4",
    "json": "application/json",
    "yaml": "application/yaml",
    "txt": "text/plain",
    "jpg": "image/jpeg",
}
_ANNOTATION_TYPES: dict[str, Any] = {"content": {"application/json": {}, "application/yaml": {}, "text/plain": {}}}


@router.get(
    "/clips/{clip_id}/annotation",
    response_class=Response,
    responses={**ERRORS, 200: {"description": "the annotation file", **_ANNOTATION_TYPES}},
)
async def get_annotation(
    clip_id: str, parts: PartsDep, request: Request, format: Literal["json", "yaml", "txt"] = "json"
) -> Response:
    found = next((f for f in await parts.store.files_of(clip_id) if f.kind == format), None)
    if found is None:
        raise ClipError("not_found", f"clip {clip_id[:80]!r} has no {format} annotation")
    return _serve(parts, found, f"/annotations/{found.name}", request)


@router.api_route(
    "/videos/{name}",
    methods=["GET", "HEAD"],  # HEAD: players and `curl -I` ask for the size first
    response_class=Response,
    responses={
        **ERRORS,
        200: {"description": "the clip", "content": {"video/mp4": {}}},
        206: {"description": "the requested byte range", "content": {"video/mp4": {}}},
        416: {"description": "range not satisfiable"},
    },
)
async def get_video(name: str, parts: PartsDep, request: Request) -> Response:
    """The clip file, with HTTP Range support (206) so players can seek; 307 to the instance that holds it."""
    return _serve(parts, await _lookup(parts, name, ("video",)), f"/videos/{name}", request)


@router.api_route(
    "/annotations/{name}",
    methods=["GET", "HEAD"],
    response_class=Response,
    responses={**ERRORS, 200: {"description": "an annotation file", **_ANNOTATION_TYPES}},
)
async def get_annotation_file(name: str, parts: PartsDep, request: Request) -> Response:
    return _serve(parts, await _lookup(parts, name, ("json", "yaml", "txt")), f"/annotations/{name}", request)


@router.api_route(
    "/snapshots/{name}",
    methods=["GET", "HEAD"],
    response_class=Response,
    responses={**ERRORS, 200: {"description": "the JPEG at the incident time", "content": {"image/jpeg": {}}}},
)
async def get_snapshot(name: str, parts: PartsDep, request: Request) -> Response:
    return _serve(parts, await _lookup(parts, name, ("jpg",)), f"/snapshots/{name}", request)


async def _lookup(parts: Parts, name: str, kinds: tuple[FileKind, ...]) -> StoredFile:
    found = await parts.store.file(name)
    if found is None or found.kind not in kinds:
        raise ClipError("not_found", f"no file named {name[:80]!r}")
    return found


def _serve(parts: Parts, f: StoredFile, path: str, request: Request) -> Response:
    """A file in the bucket by a redirect to a freshly presigned link; this instance's file from its disk; another
    instance's by a redirect to that instance."""
    if f.object_key is not None:
        direct = parts.storage.presign(f)
        if direct is None:
            raise ClipError(
                "storage_error", f"{f.name!r} is in object storage, which this instance is not configured for"
            )
        return RedirectResponse(direct.url, status_code=307)
    if f.instance_id is not None and f.instance_id != parts.membership.id:
        holder = parts.membership.url_of(f.instance_id)
        if holder is None:
            raise ClipError("storage_error", f"instance {f.instance_id!r}, which holds {f.name!r}, is not running")
        query = f"?{request.url.query}" if request.url.query else ""  # a signed link stays signed
        return RedirectResponse(holder.rstrip("/") + path + query, status_code=307)
    if not f.path.is_file():
        raise ClipError("not_found", f"no file named {f.name[:80]!r}")
    return FileResponse(f.path, media_type=MEDIA_TYPES[f.kind], filename=f.name, content_disposition_type="inline")
