"""The page (#13) in a real browser: Playwright drives Debian's chromium (by path) against the real service.

Skipped, with the reason printed, where playwright or chromium is missing (`make test` installs both when root).
Screenshots go to test-artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from clipbridge.handlers.layout import Layout
from clipbridge.synth import record_segments
from tests.conftest import SEED_LAYOUT
from tests.harness import Service, TestClient, poll

try:
    from playwright.sync_api import Browser, Error, Page, expect, sync_playwright
except ImportError:  # the browser tests skip; the HTTP ones still run
    sync_playwright = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
SEED_BODY = {"camera_id": "camera1", "timestamp": "2025-08-29T14:30:15", "duration": 20}
TOKEN = "s3cret-page"


def find_chromium() -> str | None:
    for candidate in (
        os.environ.get("CLIPBRIDGE_CHROMIUM"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        pytest.skip("playwright is not installed: pip install -e '.[test]' (make test does)")
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium: apt-get install chromium (make test does as root), or set CLIPBRIDGE_CHROMIUM")
    with sync_playwright() as p:
        try:
            # Playwright's own browser download cannot be reached: Debian's chromium, by path.
            launched = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        except Error as exc:
            pytest.skip(f"chromium at {chromium} does not start: {str(exc).splitlines()[0]}")
        yield launched
        launched.close()


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """open_page(url, phone=False, timezone="UTC") -> a page in a fresh context; uncaught script errors fail the test."""
    contexts: list[Any] = []
    errors: list[str] = []

    def open_(url: str, *, phone: bool = False, timezone: str = "UTC") -> Page:
        size = {"width": 390, "height": 844} if phone else {"width": 1280, "height": 900}
        context = browser.new_context(viewport=size, timezone_id=timezone, is_mobile=phone, has_touch=phone)
        context.set_default_timeout(30_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"{url}: {exc}"))
        page.goto(url)
        return page

    yield open_
    for context in contexts:
        context.close()
    assert errors == [], errors


def shot(page: Page, name: str, *, full: bool = True) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full)


def make_clip(service: Service, token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=service.base_url, headers=headers, timeout=30) as http:
        clip_id = http.post("/clips", json=SEED_BODY).json()["clip_id"]
        done = poll(lambda: (c := http.get(f"/clips/{clip_id}").json())["status"] in ("done", "partial") and c,
                    timeout=60)  # fmt: skip
    assert done["status"] == "done" and done["snapshot_url"], done
    return done


def wait_video(page: Page, selector: str, ready: int) -> None:
    page.wait_for_function(f"document.querySelector({selector!r})?.readyState >= {ready}", timeout=30_000)


# -- without a browser -------------------------------------------------------------------------------------------


def test_the_page_and_its_files_open_without_the_token_and_nothing_else_is_served(own_service):
    service = own_service(http__api_token=TOKEN)
    with httpx.Client(base_url=service.base_url, timeout=30) as http:
        index = http.get("/")
        assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
        assert '<meta name="viewport"' in index.text and "/ui/app.js" in index.text
        for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css"), ("clips.js", "text/javascript")):
            answer = http.get(f"/ui/{name}")
            assert answer.status_code == 200 and answer.headers["content-type"].startswith(kind), name
        for bad in ("/ui/nope.js", "/ui/..%2Fpage.py", "/ui/%2e%2e%2fapp.py", "/ui/"):
            assert http.get(bad).status_code == 404, bad
        assert http.get("/clips").status_code == 401  # the API still needs the token
        assert "/" not in http.get("/openapi.json").json()["paths"]


# -- in the browser ----------------------------------------------------------------------------------------------


def test_the_list_shows_the_clip_with_its_snapshot_and_the_clip_plays_and_seeks(own_service, open_page):
    service = own_service()
    clip = make_clip(service)
    page = open_page(f"{service.base_url}/")
    row = page.locator(f'li.clip[data-clip-id="{clip["clip_id"]}"]')
    expect(row.locator(".badge")).to_have_text("done")
    expect(row.locator(".camera")).to_have_text("camera1")
    expect(row.locator("time")).to_have_text("2025-08-29 14:30:15")  # the browser is in UTC here
    image = row.locator("img.thumb")
    expect(image).to_have_attribute("alt", "Snapshot from camera1 at 2025-08-29 14:30:15")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    shot(page, "clips-desktop")

    row.locator("a").click()
    expect(page.locator("h1")).to_have_text("camera1 at 2025-08-29 14:30:15")
    expect(page.locator("h1")).to_be_focused()
    wait_video(page, "video", 3)  # HAVE_FUTURE_DATA: it plays
    seeked = page.locator("video").evaluate(
        "v => new Promise(done => { v.addEventListener('seeked', () => done(v.currentTime), {once: true});"
        " v.currentTime = 12; })"
    )
    assert abs(seeked - 12) < 0.5
    bar = page.locator(".clip-bar")
    expect(bar).to_have_attribute("aria-valuenow", "12.0")
    # The bar seeks from the keyboard too.
    page.locator("video").evaluate("v => v.addEventListener('seeked', () => { window.seekedTo = v.currentTime; })")
    bar.focus()
    bar.press("ArrowRight")
    page.wait_for_function("window.seekedTo !== undefined")
    assert abs(page.evaluate("window.seekedTo") - 13) < 0.5
    expect(bar.locator(".incident")).to_have_count(1)
    # Seen, not only present: the marker is the topmost element at its place on the bar (above the clip's span).
    on_top = """m => { const r = m.getBoundingClientRect();
                       return document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2) === m; }"""
    assert bar.locator(".incident").evaluate(on_top)
    signed = re.escape(clip["download_url"].split("?")[0]) + r"\?exp=\d+&sig=[0-9a-f]+"  # signed anew per answer
    expect(page.locator("a", has_text="Download")).to_have_attribute("href", re.compile(signed))
    expect(page.locator(".annotations a")).to_have_text(["JSON", "YAML", "TXT"])
    shot(page, "clip-desktop")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy link").click()
    expect(page.locator("#status")).to_have_text("Link copied.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert re.fullmatch(signed, copied), copied

    phone = open_page(f"{service.base_url}/", phone=True)
    phone_row = phone.locator(f'li.clip[data-clip-id="{clip["clip_id"]}"]')
    phone.wait_for_function("img => img.complete && img.naturalWidth > 0",
                            arg=phone_row.locator("img.thumb").element_handle())  # fmt: skip
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
    shot(phone, "clips-phone")
    phone_row.locator("a").click()
    wait_video(phone, "video", 1)
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # Without a clipboard (plain http on another host is no secure context), the link is shown selected instead.
    phone.evaluate("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    phone.get_by_role("button", name="Copy link").click()
    shown = phone.get_by_label(re.compile("^Link"))
    expect(shown).to_be_focused()
    expect(shown).to_have_value(re.compile(signed))
    assert shown.evaluate("i => i.readOnly && i.selectionStart === 0 && i.selectionEnd === i.value.length")
    shot(phone, "clip-phone")


def _record_live(ffmpeg: str, root: Path, start: datetime, seconds: int) -> None:
    cuts = [5.0 * (i + 1) for i in range(seconds // 5)]
    record_segments(
        ffmpeg, root=root, layout=Layout.create(SEED_LAYOUT), camera_id="live1", start=start, cut_points=cuts
    )


def test_a_live_incident_appears_and_turns_done_without_a_reload(start_service, broker, prefix, live_root, ffmpeg,
                                                                 open_page):  # fmt: skip
    service = start_service()
    page = open_page(f"{service.base_url}/")
    expect(page.locator(".summary")).to_contain_text("clips")  # the list has loaded (empty)
    page.evaluate("window.sameDocument = true")
    client = TestClient(broker.port)
    now = datetime.now(UTC).replace(microsecond=0)
    event = {
        "camera_id": "live1",
        "timestamp": now.isoformat(),
        "pre_seconds": 4,
        "post_seconds": 2,
        "event_id": "page-live",
    }
    client.publish(f"{prefix}/clips/requests", event)
    client.close()
    row = page.locator("li.clip", has=page.locator(".camera", has_text="live1"))
    expect(row.locator(".badge").first).to_have_text(re.compile("pending|waiting"))
    expect(row.locator(".thumb.placeholder")).to_be_visible()
    row.evaluate("li => { li.sameRow = true; }")
    shot(page, "live-waiting")
    _record_live(ffmpeg, live_root, now - timedelta(seconds=10), 20)  # the recorder closes segments past the window
    expect(row.locator(".badge").first).to_have_text("done", timeout=60_000)
    assert row.evaluate("li => li.sameRow === true")  # the same element, changed in place
    assert page.evaluate("window.sameDocument === true")  # no reload
    page.wait_for_function("img => img && img.complete && img.naturalWidth > 0",
                           arg=row.locator("img.thumb").element_handle())  # fmt: skip
    expect(page.locator("#status")).to_contain_text("is now done")
    shot(page, "live-done")


def test_the_camera_bar_shows_the_deleted_segment_as_a_gap_and_exports_a_picked_moment(own_service, open_page):
    service = own_service()
    page = open_page(f"{service.base_url}/#/cameras")
    card = page.locator('li.camera-card[data-camera-id="camgap"]')
    expect(card.locator(".live")).to_contain_text("stale")  # the fixture's footage is from 2025
    gaps = card.locator(".bar .gap")
    expect(gaps).not_to_have_count(0)
    found = gaps.evaluate_all("els => els.map(e => [e.dataset.start, e.dataset.end])")
    hole = [g for g in found if g[0] >= "2025-08-29T14:29:50"]  # the other gap is the day before the footage
    assert hole == [["2025-08-29T14:30:05.000Z", "2025-08-29T14:30:10.000Z"]], found
    expect(card.locator(".gaps summary")).to_have_text("2 gaps in this range")
    shot(page, "cameras-desktop")

    page.locator("#range").select_option("600")  # 10 minutes, ending at the newest footage (14:30:40)
    expect(card.locator(".scale span").first).to_have_text("2025-08-29 14:20:40")
    bar = card.locator(".bar")
    box = bar.bounding_box()
    assert box is not None
    bar.click(position={"x": box["width"] * 580 / 600, "y": box["height"] / 2})  # 14:30:20
    # A pixel is about a second here: 14:30:20 +- 2 s, ±15 s, holding the hole at 14:30:05-14:30:10.
    expect(card.locator(".export-result p").first).to_have_text(
        re.compile(r"camgap, 2025-08-29 14:30:0[3-7] to 14:30:3[3-7] \(1 gap\)")
    )
    wait_video(page, '[data-camera-id="camgap"] .export-video', 1)
    assert card.locator("a", has_text="Download the export").get_attribute("href").startswith("blob:")
    shot(page, "cameras-export")
    phone = open_page(f"{service.base_url}/#/cameras", phone=True)
    expect(phone.locator('li.camera-card[data-camera-id="camgap"] .bar .gap')).not_to_have_count(0)
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(phone, "cameras-phone", full=False)  # the first screen: ten cameras make a long page


def test_with_the_token_on_the_page_asks_once_and_plays_the_clip_by_its_signed_link(own_service, open_page):
    service = own_service(http__api_token=TOKEN)
    clip = make_clip(service, TOKEN)
    page = open_page(f"{service.base_url}/", timezone="Europe/Berlin")
    token = page.get_by_label("Token", exact=True)
    expect(token).to_be_focused()
    token.fill("wrong")
    token.press("Enter")
    expect(page.locator("#token-note")).to_contain_text("refused")
    shot(page, "token-asked")
    token.fill(TOKEN)
    page.get_by_role("button", name="Use token").click()
    row = page.locator(f'li.clip[data-clip-id="{clip["clip_id"]}"]')
    expect(row.locator("time")).to_have_text("2025-08-29 16:30:15")  # Berlin, UTC+2 in August
    page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                           arg=row.locator("img.thumb").element_handle())  # fmt: skip
    expect(page.locator("#token-panel")).to_be_hidden()

    row.locator("a").click()
    wait_video(page, "video", 3)
    src = page.locator("video").get_attribute("src") or ""
    assert "sig=" in src and "exp=" in src  # a signed link: a <video> cannot send the bearer header
    shot(page, "token-clip")

    # Kept for the tab: another view asks no more. The export is fetched with the header (it is not signed).
    page.get_by_role("link", name="Cameras").click()
    card = page.locator('li.camera-card[data-camera-id="camera1"]')
    card.get_by_label("Moment to export (±15 s)").fill("2025-08-29T16:30:15")  # local time: 14:30:15 UTC
    card.get_by_role("button", name="Export").click()
    expect(card.locator(".export-result p").first).to_have_text("camera1, 2025-08-29 16:30:00 to 16:30:30")
    wait_video(page, '[data-camera-id="camera1"] .export-video', 1)
    expect(page.locator("#token-panel")).to_be_hidden()
    card.get_by_label("Moment to export (±15 s)").fill("2030-01-01T00:00:00")
    card.get_by_role("button", name="Export").click()
    expect(card.locator(".export-result .error")).to_contain_text("no_footage")
