"""Signed links: every URL the service hands out carries `?exp=<unix>&sig=<hex>` and opens without a bearer token.

The signature is HMAC-SHA256 over the URL's path and its expiry, so it is bound to one file (another clip's
signature does not fit) and to one deadline (a changed `exp` does not fit). Pure functions: the caller gives the
time and the key.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

from clipbridge.errors import ClipError


def sign(path: str, expires: int, key: bytes) -> str:
    return hmac.new(key, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()


def signed_query(path: str, *, now: float, ttl: int, key: bytes) -> str:
    """The query string that makes `path` open without a token until now + ttl."""
    expires = int(now) + ttl
    return urlencode({"exp": expires, "sig": sign(path, expires, key)})


def check(path: str, exp: str | None, sig: str | None, *, key: bytes, now: float) -> None:
    """Raises ClipError(link_invalid) for a missing, malformed, tampered or foreign signature, link_expired for a
    valid one past its time."""
    if not exp or not sig:
        raise ClipError("link_invalid", "the link lacks its exp and sig parameters: ask for a new link")
    try:
        expires = int(exp)
    except ValueError:
        raise ClipError("link_invalid", "the link's exp is not a number: ask for a new link") from None
    if not hmac.compare_digest(sign(path, expires, key), sig.lower()):
        raise ClipError("link_invalid", "the link's signature does not match this file: it was changed, belongs to "
                        "another file, or was signed with another key; ask for a new link")  # fmt: skip
    if now > expires:
        raise ClipError("link_expired", f"the link expired {int(now - expires)} s ago: ask for a new link "
                        "(GET /clips/{clip_id} answers fresh ones)")  # fmt: skip
