"""Section 9, timeline (#13): `GET /cameras/{id}/timeline` over 1 day and 7 days of 5 s segments (one camera,
empty files named as the seed's recorder names them, one hour deleted each day), in-process: the index lookup, the
merge and the JSON answer, as the route does them. Target: a day within 50 ms."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import summary
from clipbridge.config import load_config
from clipbridge.handlers.index import RecordingsIndex
from clipbridge.handlers.replies import GapOut
from clipbridge.handlers.timeline import by_name
from clipbridge.http.coverage import SpanOut, Timeline
from clipbridge.model import iso
from tests.conftest import SEED_LAYOUT, config_env

DAY0 = datetime(2025, 8, 22, tzinfo=UTC)
TARGET_DAY_MS = 50.0


def _tree(root: Path, days: int) -> int:
    folder = root / "camtl"
    folder.mkdir(parents=True, exist_ok=True)
    made = 0
    for i in range(days * 17280):
        t = DAY0 + timedelta(seconds=5 * i)
        if t.hour == 3:
            continue  # the recorder lost an hour each night
        (folder / f"camtl_{t:%Y%m%d_%H%M%S}.mp4").touch()
        made += 1
    return made


def _answer(index: RecordingsIndex, start: datetime, end: datetime) -> str:
    segments = index.candidates("camtl", start, end)
    starts = [s.start for s in segments]
    spans, gaps = by_name(starts, start=start, end=end, tolerance=0.5)
    return Timeline(
        camera_id="camtl", start=iso(start), end=iso(end), segments=len(segments),
        spans=[SpanOut(start=iso(s.start), end=iso(s.end)) for s in spans],
        gaps=[GapOut(start=iso(g.start), end=iso(g.end), seconds=g.seconds, reason=g.reason) for g in gaps],
    ).model_dump_json()  # fmt: skip


def section_timeline(base: Path, runs: int = 20) -> dict[str, Any]:
    root = base / "timeline"
    files = _tree(root, 7)
    config = load_config(None, env=config_env(base / "timeline-out", [{"root": str(root), "layout": SEED_LAYOUT}]))
    index = RecordingsIndex(config=config.recordings)
    index.scan()
    out: dict[str, Any] = {"files": files}
    for name, days in (("day", 1), ("week", 7)):
        start, end = DAY0, DAY0 + timedelta(days=days)
        times = []
        for _ in range(runs):
            began = time.perf_counter()
            _answer(index, start, end)
            times.append(time.perf_counter() - began)
        out[name] = summary(times)
    out["met"] = out["day"]["median_ms"] <= TARGET_DAY_MS
    return out
