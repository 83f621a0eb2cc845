"""Signed links (#13): the URLs the service hands out open without the bearer token, until they expire, for the one
file they were signed for. The signing itself is a pure function (a table); the rest runs a real `clipbridge run`."""

from __future__ import annotations

import time

import httpx
import pytest

from clipbridge.errors import ClipError
from clipbridge.handlers.signing import check, sign, signed_query
from tests.test_http import SEED_BODY, submit, wait_done

KEY = b"k" * 32
NOW = 1_800_000_000.0
GOOD = sign("/videos/a.mp4", int(NOW) + 60, KEY)


@pytest.mark.parametrize(
    ("path", "exp", "sig", "key", "now", "code"),
    [
        ("/videos/a.mp4", str(int(NOW) + 60), GOOD, KEY, NOW, None),
        ("/videos/a.mp4", str(int(NOW) + 60), GOOD.upper(), KEY, NOW, None),  # hex is hex
        ("/videos/a.mp4", str(int(NOW) + 60), GOOD, KEY, NOW + 60, None),  # the last second still opens
        ("/videos/a.mp4", str(int(NOW) + 60), GOOD, KEY, NOW + 61, "link_expired"),
        ("/videos/b.mp4", str(int(NOW) + 60), GOOD, KEY, NOW, "link_invalid"),  # another file's signature
        ("/annotations/a.mp4", str(int(NOW) + 60), GOOD, KEY, NOW, "link_invalid"),
        ("/videos/a.mp4", str(int(NOW) + 3600), GOOD, KEY, NOW, "link_invalid"),  # a later exp written in
        ("/videos/a.mp4", str(int(NOW) + 60), GOOD, b"other", NOW, "link_invalid"),  # another service's key
        ("/videos/a.mp4", str(int(NOW) + 60), GOOD[:-1] + "0", KEY, NOW, "link_invalid"),
        ("/videos/a.mp4", "soon", GOOD, KEY, NOW, "link_invalid"),
        ("/videos/a.mp4", None, GOOD, KEY, NOW, "link_invalid"),
        ("/videos/a.mp4", str(int(NOW) + 60), None, KEY, NOW, "link_invalid"),
        ("/videos/a.mp4", str(int(NOW) + 60), "", KEY, NOW, "link_invalid"),
    ],
)
def test_check(path, exp, sig, key, now, code):
    if code is None:
        check(path, exp, sig, key=key, now=now)
        return
    with pytest.raises(ClipError) as caught:
        check(path, exp, sig, key=key, now=now)
    assert caught.value.code == code and "new link" in caught.value.message


def test_signed_query_round_trips():
    query = dict(part.split("=") for part in signed_query("/videos/x.mp4", now=NOW, ttl=90, key=KEY).split("&"))
    assert query["exp"] == str(int(NOW) + 90)
    check("/videos/x.mp4", query["exp"], query["sig"], key=KEY, now=NOW + 90)


def test_with_the_token_on_handed_out_links_open_without_it_and_nothing_else_does(own_service):
    service = own_service(http__api_token="s3cret", http__signing_key="a-fixed-key-for-this-test")
    bearer = {"Authorization": "Bearer s3cret"}
    with httpx.Client(base_url=service.base_url, headers=bearer, timeout=30) as http:
        clip = wait_done(http, submit(http, SEED_BODY)["clip_id"])
        other = wait_done(http, submit(http, {**SEED_BODY, "timestamp": "2025-08-29T14:30:16"})["clip_id"])
    link = clip["download_url"]
    assert "?exp=" in link and "&sig=" in link
    whole = httpx.get(link, timeout=30)  # plain GET, as curl, a <video> or a chat preview does
    assert whole.status_code == 200 and len(whole.content) == clip["file_size"]
    part = httpx.get(link, headers={"Range": "bytes=0-99"}, timeout=30)
    assert part.status_code == 206 and part.content == whole.content[:100]
    assert httpx.get(clip["annotations"]["json"], timeout=30).json()["clip_id"] == clip["clip_id"]
    snapshot = httpx.get(clip["snapshot_url"], timeout=30)  # the incident's frame, as an <img> loads it
    assert snapshot.status_code == 200 and snapshot.headers["content-type"] == "image/jpeg"
    assert snapshot.content[:3] == b"\xff\xd8\xff" and clip["warnings"] == []

    path, query = link.split("?")
    exp, sig = (p.split("=")[1] for p in query.split("&"))
    stale = signed_query(path.removeprefix(service.base_url), now=time.time() - 7200, ttl=3600,
                         key=b"a-fixed-key-for-this-test")  # fmt: skip
    refusals = {
        "tampered": f"{path}?exp={exp}&sig={sig[:-1]}{'1' if sig.endswith('0') else '0'}",
        "later exp": f"{path}?exp={int(exp) + 1000}&sig={sig}",
        "other clip's signature": f"{path}?{other['download_url'].split('?')[1]}",
        "expired": f"{path}?{stale}",
    }
    for case, url in refusals.items():
        answer = httpx.get(url, timeout=30)
        assert answer.status_code == 403, case
        assert answer.json()["error"]["code"] == ("link_expired" if case == "expired" else "link_invalid"), case
    # Without a signature a file still needs the token; the API always does.
    assert httpx.get(path, timeout=30).status_code == 401
    assert httpx.get(path, headers=bearer, timeout=30).status_code == 200
    assert httpx.get(f"{service.base_url}/clips", params={"exp": exp, "sig": sig}, timeout=30).status_code == 401
