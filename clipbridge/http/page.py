"""The page for people (#13): `/` and its static files under `/ui/`, open without the token.

The page holds no data: it is plain HTML, CSS and JavaScript (no build step) that calls the REST API, asking for the
token when the API answers 401. Files are served by name from a list made at import: a request's path is never opened.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from clipbridge.errors import ClipError

STATIC = Path(__file__).resolve().parent / "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
FILES = {p.name: p for p in sorted(STATIC.iterdir()) if p.suffix in MEDIA_TYPES} if STATIC.is_dir() else {}
# Revalidate every time: a new release's page must not run against an old script from the cache.
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}

router = APIRouter(include_in_schema=False)


def _file(name: str) -> FileResponse:
    path = FILES.get(name)
    if path is None:
        raise ClipError("not_found", f"no page file named {name[:80]!r}")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=HEADERS)


@router.get("/")
async def index() -> FileResponse:
    """The page: clips, a clip, cameras (hash routes)."""
    return _file("index.html")


@router.get("/ui/{name}")
async def asset(name: str) -> FileResponse:
    return _file(name)
