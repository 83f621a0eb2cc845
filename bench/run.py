"""Benchmark clipbridge start to finish on synthetic 1080p footage (under 10 minutes on 2 cores).

Run from the repository root: `.venv/bin/python -m bench.run` (`--quick` for small N while developing,
`--sections 1,2` for some sections only).

1. Clip cost: `Clipper.make_clip` in-process (warm and cold probe cache) vs a bare `ffmpeg -f concat -c copy` of the
   same four segments with the same binary, interleaved, and vs `cat` of the same bytes (the I/O floor). One
   informational row runs clipbridge's exact FFmpeg argv without `-movflags +faststart` (what faststart costs; the
   spec requires it, so it stays).
2. End-to-end: MQTT v5 publish -> reply, footage on disk, sequential incidents.
3. Live: windows ending in the future while a writer thread renames 5 s segments into place in real time.
4. Burst: incidents over 20 cameras published at once.
5. Intake: events persisted and acknowledged per second (windows a day ahead: no FFmpeg), vs the broker's own rate.
6. Index scale: cold `RecordingsIndex.scan`, `candidates()` lookups and RSS over 100k and 1M empty segment files.

Everything listens on 127.0.0.1: our own mosquitto (tests.harness.Broker, plus the settings of the shipped
mosquitto/dev.conf, e.g. set_tcp_nodelay true) and the real `clipbridge run` process (tests.harness.Service).
Footage and outputs live in a temporary folder removed at the end. Results go to bench/results/<date>.json (plus .md
and profiles); the tables are printed on stdout. Nothing sleeps to synchronise: waits are on MQTT messages, log
lines, thread conditions and the REST API. The one paced thing is the live writer (sleep-ok).

Every row measures the code as it is: nothing is monkeypatched. The run also profiles the clip path (pyinstrument
in-process) and the service during end-to-end incidents (py-spy attached), and the intake if it misses its target.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import queue
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from clipbridge.config import RecordingsConfig, SourceConfig, load_config
from clipbridge.handlers.annotations import write_annotations
from clipbridge.handlers.clipper import Clipper, ClipRequest
from clipbridge.handlers.ffmpeg import clip_argv, concat_playlist, resolve_ffmpeg, run_command
from clipbridge.handlers.index import RecordingsIndex
from clipbridge.handlers.layout import Layout
from clipbridge.handlers.planner import Window, plan_clip
from clipbridge.handlers.probe import ProbeCache, clip_duration
from clipbridge.synth import record_segments
from tests.conftest import SEED_LAYOUT, config_env
from tests.harness import MOSQUITTO, Broker, LogWatcher, Service, TestClient, correlation_of, free_port, poll

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
DEBIAN_FFMPEG = Path("/usr/bin/ffmpeg")
DEV_CONF = REPO / "mosquitto" / "dev.conf"
BROKER_OWN = {"listener", "persistence_location"}  # set by tests.harness.Broker for each instance

SEGMENT_SECONDS = 5
SEGMENTS = 6  # 14:29:55 .. 14:30:25: the seed window 14:30:00-14:30:20 is four of them, with a neighbour each side
T0 = datetime(2025, 8, 29, 14, 29, 55, tzinfo=UTC)
INCIDENT = datetime(2025, 8, 29, 14, 30, 15, tzinfo=UTC)  # the seed example: 15 s after 14:30:00, duration 20
SEED_EVENT = {"timestamp": "2025-08-29T14:30:15", "duration": 20}
CAMERA = "cam1080"
LIVE_CAMERA = "live1"
LAYOUT = Layout.create(SEED_LAYOUT)
OLD = (T0 - timedelta(days=1)).timestamp()  # mtime that makes the on-disk footage "settled"
RUN = uuid.uuid4().hex[:8]  # event ids are unique per run: nothing is deduplicated
BUDGET_SECONDS = 570.0  # the whole run must stay under 10 minutes; section 6 shrinks to fit what is left

TARGET_CLIP_RATIO = 1.10
TARGET_E2E_MARGIN_MS = 30.0
TARGET_LIVE_P95_MS = 1000.0
TARGET_INTAKE_RATE = 2000.0


@dataclass(frozen=True)
class Sizes:
    clip_runs: int
    e2e: int
    profile_incidents: int
    rejections: int
    live: int
    burst_cameras: int
    burst_per_camera: int
    intake: int
    intake_profile: int
    index_scales: tuple[int, ...]
    lookups: int


FULL = Sizes(20, 100, 30, 20, 12, 20, 10, 5000, 2000, (100_000, 1_000_000), 1000)
QUICK = Sizes(5, 10, 5, 5, 4, 4, 3, 500, 300, (10_000, 50_000), 200)


# -- small helpers ------------------------------------------------------------------------------------------------


def _pct(xs: Sequence[float], p: float) -> float:
    """Percentile with linear interpolation over sorted values."""
    if len(xs) == 1:
        return xs[0]
    k = (len(xs) - 1) * p / 100.0
    lo = math.floor(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(seconds: Sequence[float]) -> dict[str, float]:
    """n, median, p95, p99, min, max in milliseconds."""
    xs = sorted(s * 1000.0 for s in seconds)
    return {
        "n": len(xs),
        "median_ms": round(statistics.median(xs), 2),
        "p95_ms": round(_pct(xs, 95), 2),
        "p99_ms": round(_pct(xs, 99), 2),
        "min_ms": round(xs[0], 2),
        "max_ms": round(xs[-1], 2),
    }


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def first_line(argv: list[str]) -> str:
    try:
        run = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        return f"unavailable ({exc.strerror})"
    text = (run.stdout or run.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def code_state() -> dict[str, Any]:
    """The commit measured, and the files outside bench/ that differ from it (the run measures the working tree)."""
    head = first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    status = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    )
    changed = [line[3:] for line in status.stdout.splitlines() if not line[3:].startswith("bench/")]
    return {"head": head, "uncommitted_outside_bench": changed}


def machine(ffmpeg: str) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
        platform.processor() or "unknown",
    )
    meminfo = Path("/proc/meminfo").read_text()
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", meminfo)[1])  # type: ignore[index]
    return {
        "nproc": int(first_line(["nproc"])),
        "cpu_model": model,
        "mem_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "ffmpeg_bundled": {"path": ffmpeg, "version": first_line([ffmpeg, "-version"])},
        "ffmpeg_debian": (
            {"path": str(DEBIAN_FFMPEG), "version": first_line([str(DEBIAN_FFMPEG), "-version"])}
            if os.access(DEBIAN_FFMPEG, os.X_OK)
            else None
        ),
        "mosquitto": first_line([MOSQUITTO or "mosquitto", "-h"]),
        "loadavg_at_start": loadavg(),
    }


def vmrss_kb() -> int:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text())
    return int(match[1]) if match else 0


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(utime+stime of the process, cutime+cstime of its waited-for children, e.g. FFmpeg) in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def dev_conf_settings() -> str:
    """The shipped mosquitto/dev.conf minus what the test broker sets per instance (port, persistence folder): appended
    to tests.harness.Broker's config, so the bench's broker runs with the shipped settings (later lines win)."""
    lines = [line.strip() for line in DEV_CONF.read_text().splitlines()]
    kept = [line for line in lines if line and not line.startswith("#") and line.split()[0] not in BROKER_OWN]
    assert "set_tcp_nodelay true" in kept, f"{DEV_CONF} no longer sets set_tcp_nodelay true"
    return "".join(f"{line}\n" for line in kept)


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def histograms(service: Service) -> dict[str, tuple[float, float]]:
    """(sum, count) of the service's clip_ffmpeg_seconds and clip_latency_seconds, from /metrics."""
    with urllib.request.urlopen(f"{service.base_url}/metrics", timeout=30) as response:
        text = response.read().decode()
    found: dict[str, tuple[float, float]] = {}
    for metric in ("clip_ffmpeg_seconds", "clip_latency_seconds"):
        values = []
        for part in ("sum", "count"):
            match = re.search(rf"^{metric}_{part} ([0-9.eE+-]+)$", text, re.M)
            values.append(float(match[1]) if match else 0.0)
        found[metric] = (values[0], values[1])
    return found


def mean_ms(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]], metric: str) -> float:
    total = after[metric][0] - before[metric][0]
    count = after[metric][1] - before[metric][1]
    return round(total / count * 1000, 2) if count else float("nan")


def source(root: Path) -> dict[str, str]:
    return {"root": str(root), "layout": SEED_LAYOUT, "timezone": "UTC"}


def seed_window() -> Window:
    return Window(INCIDENT, INCIDENT - timedelta(seconds=15), INCIDENT + timedelta(seconds=5))


def interleave(variants: dict[str, Callable[[], float]], runs: int) -> dict[str, list[float]]:
    """Alternate the variants (A/B/...), rotating the order each round; one discarded warm-up run each."""
    names = list(variants)
    for name in names:
        variants[name]()
    out: dict[str, list[float]] = {name: [] for name in names}
    for i in range(runs):
        k = i % len(names)
        for name in [*names[k:], *names[:k]]:
            out[name].append(variants[name]())
    return out


# -- footage ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Footage:
    ffmpeg: str
    root: Path  # seed layout: cam1080 plus the burst cameras
    live_root: Path  # the live camera, written during section 3
    segments: list[Path]  # cam1080's six 1080p segments
    burst_cameras: list[str]
    generate_seconds: float


def make_footage(base: Path, ffmpeg: str, burst_cameras: int) -> Footage:
    """Six 5 s segments of 1080p H.264 + AAC at 16 Mb/s (about 10 MB each), encoded once.

    The burst cameras get hard links to the same files under their own names: the same bytes, no extra encoding
    (their probe caches are still cold in the service: the cache is keyed by path).
    """
    root, live_root = base / "recordings", base / "live"
    started = time.perf_counter()
    segments = record_segments(
        ffmpeg,
        root=root,
        layout=LAYOUT,
        camera_id=CAMERA,
        start=T0,
        cut_points=[float(SEGMENT_SECONDS * i) for i in range(1, SEGMENTS + 1)],
        size="1920x1080",
        bitrate="16M",
        gop_seconds=1.0,
    )
    generate_seconds = time.perf_counter() - started
    for path in segments:
        os.utime(path, (OLD, OLD))
    cameras = [f"burst{i:02d}" for i in range(burst_cameras)]
    for camera in cameras:
        for k, path in enumerate(segments):
            target = root / LAYOUT.render(camera, T0 + timedelta(seconds=SEGMENT_SECONDS * k))
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
    # The live camera is known to the service from the start: one segment an hour old.
    hour_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    old = live_root / LAYOUT.render(LIVE_CAMERA, hour_ago)
    old.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(segments[0], old)
    os.utime(old, (hour_ago.timestamp() + SEGMENT_SECONDS,) * 2)
    return Footage(ffmpeg, root, live_root, segments, cameras, generate_seconds)


# -- section 1: clip cost -----------------------------------------------------------------------------------------


def bare_runner(exe: str, playlist: Path, out: Path) -> Callable[[], float]:
    """The bare `ffmpeg -f concat -safe 0 -i list -c copy out.mp4` (plus -y/-nostdin/-loglevel, as clipbridge)."""
    argv = [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    argv += ["-f", "concat", "-safe", "0", "-i", str(playlist), "-c", "copy", str(out)]
    return argv_runner(argv, out)


def argv_runner(argv: list[str], out: Path) -> Callable[[], float]:
    """Run an FFmpeg argv as is (the last argument is `out`, removed after each run)."""
    assert argv[-1] == str(out), argv

    def run() -> float:
        started = time.perf_counter()
        subprocess.run(argv, stdin=subprocess.DEVNULL, check=True)
        elapsed = time.perf_counter() - started
        out.unlink()
        return elapsed

    return run


def cat_runner(paths: list[Path], out: Path) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        with out.open("wb") as fh:
            subprocess.run(["cat", *map(str, paths)], stdout=fh, check=True)
        elapsed = time.perf_counter() - started
        out.unlink()
        return elapsed

    return run


def section_clip_cost(fx: Footage, base: Path, sizes: Sizes, stamp: str) -> dict[str, Any]:
    work = base / "clipcost"
    cfg = load_config(None, env=config_env(work, [source(fx.root)]))
    index = RecordingsIndex(config=cfg.recordings)
    index.scan()
    clipper = Clipper(index=index, clips=cfg.clips, recordings=cfg.recordings, ffmpeg=fx.ffmpeg)
    window = seed_window()
    segs = [s.path for s in index.candidates(CAMERA, window.start, window.end)]
    assert len(segs) == 4, segs
    work.mkdir(parents=True, exist_ok=True)
    plain = work / "bare.txt"
    plain.write_text("".join(f"file '{p}'\n" for p in segs))
    ids = itertools.count()
    ffmpeg_part: list[float] = []
    records: list[dict[str, Any]] = []
    # clipbridge's exact argv for this window (the playlist and argv Clipper._render builds), minus +faststart
    argv, playlist = render_argv(fx, cfg, clipper, window, work)
    i = argv.index("-movflags")
    assert argv[i + 1] == "+faststart", argv
    no_faststart = [*argv[:i], *argv[i + 2 : -1], str(work / "no-faststart.mp4")]

    def clip(cold: bool, part: list[float] | None = None) -> Callable[[], float]:
        def run() -> float:
            if cold:
                index.probes = ProbeCache(max_duration=cfg.recordings.max_segment_seconds)
            request = ClipRequest(clip_id=f"bench{next(ids):06d}", camera_id=CAMERA, window=window, source="bench")
            started = time.perf_counter()
            outcome = clipper.make_clip(request)
            elapsed = time.perf_counter() - started
            if outcome.status != "done":
                raise RuntimeError(f"clip status {outcome.status}")
            if part is not None:
                part.append(outcome.ffmpeg_seconds)
            records[:] = [outcome.record]
            outcome.video_path.unlink()
            for path in outcome.annotation_paths.values():
                path.unlink()
            return elapsed

        return run

    variants: dict[str, Callable[[], float]] = {
        "clipbridge_warm": clip(cold=False, part=ffmpeg_part),
        "bare_bundled": bare_runner(fx.ffmpeg, plain, work / "bare.mp4"),
        "ffmpeg_no_faststart": argv_runner(no_faststart, work / "no-faststart.mp4"),
        "clipbridge_cold": clip(cold=True),
        "cat": cat_runner(segs, work / "cat.bin"),
    }
    debian_note = None
    if os.access(DEBIAN_FFMPEG, os.X_OK):
        variants["bare_debian"] = bare_runner(str(DEBIAN_FFMPEG), plain, work / "bare-debian.mp4")
    else:
        debian_note = f"{DEBIAN_FFMPEG} is not installed: row skipped"
    times = interleave(variants, sizes.clip_runs)
    out: dict[str, Any] = {name: summary(values) for name, values in times.items()}
    out["input_bytes"] = sum(p.stat().st_size for p in segs)
    out["clipbridge_ffmpeg_part"] = summary(ffmpeg_part[1:])
    bare = out["bare_bundled"]["median_ms"]
    out["ratio_warm"] = round(out["clipbridge_warm"]["median_ms"] / bare, 3)
    out["ratio_cold"] = round(out["clipbridge_cold"]["median_ms"] / bare, 3)
    out["ratio_no_faststart"] = round(out["ffmpeg_no_faststart"]["median_ms"] / bare, 3)
    out["no_faststart_argv"] = " ".join(Path(a).name if a.startswith(str(base)) else a for a in no_faststart)
    out["ratio_cat"] = round(out["cat"]["median_ms"] / bare, 3)
    if "bare_debian" in out:
        out["ratio_debian"] = round(out["bare_debian"]["median_ms"] / bare, 3)
    out["debian_note"] = debian_note
    out["phases"] = clip_phases(fx, cfg, clipper, index, window, work, records[0], plain, argv, sizes.clip_runs)
    playlist.unlink()
    out["profile"] = profile_clip(clipper, window, ids, 10, RESULTS / f"{stamp}-clip-profile.txt")
    return out


def clip_phases(
    fx: Footage,
    cfg: Any,
    clipper: Clipper,
    index: RecordingsIndex,
    window: Window,
    work: Path,
    record: dict[str, Any],
    plain: Path,
    render: list[str],
    runs: int,
) -> dict[str, Any]:
    """The steps of make_clip timed one by one (same functions, same inputs), interleaved like the main loop."""
    footage = clipper.gather(CAMERA, window)
    out = work / "phase.mp4"
    argv = [*render[:-1], str(out)]
    i = argv.index("-movflags")
    no_faststart = argv[:i] + argv[i + 2 :]
    reference = work / "reference.mp4"
    run_command([*argv[:-1], str(reference)], timeout=120)

    def timed(fn: Callable[[], Any], after: Callable[[], Any] = lambda: None) -> Callable[[], float]:
        def run() -> float:
            started = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - started
            after()
            return elapsed

        return run

    def cold_gather() -> None:
        index.probes = ProbeCache(max_duration=cfg.recordings.max_segment_seconds)
        clipper.gather(CAMERA, window)

    variants = {
        "ffmpeg, clipbridge argv (-map, +faststart, -avoid_negative_ts)": timed(
            lambda: run_command(argv, timeout=120), out.unlink
        ),
        "ffmpeg, clipbridge argv without -movflags +faststart": timed(
            lambda: run_command(no_faststart, timeout=120), out.unlink
        ),
        "ffmpeg, bare concat": bare_runner(fx.ffmpeg, plain, work / "bare.mp4"),
        "clip_duration(output clip) in Clipper._render": timed(lambda: clip_duration(reference)),
        "write_annotations (json, yaml, txt; fsync each)": timed(
            lambda: write_annotations(record, work / "ann", "phase")
        ),
        "gather, cold probe cache (4 PyAV probes)": timed(cold_gather),
        "gather, warm probe cache": timed(lambda: clipper.gather(CAMERA, window)),
        "plan_clip": timed(
            lambda: plan_clip(window, footage, trim=cfg.clips.trim, gap_tolerance=cfg.recordings.gap_tolerance_seconds)
        ),
    }
    times = interleave(variants, runs)
    reference.unlink()
    return {name: summary(values) for name, values in times.items()}


def render_argv(fx: Footage, cfg: Any, clipper: Clipper, window: Window, work: Path) -> tuple[list[str], Path]:
    """The playlist and FFmpeg argv that Clipper._render builds for this window (output: work/render.mp4)."""
    footage = clipper.gather(CAMERA, window)
    plan = plan_clip(window, footage, trim=cfg.clips.trim, gap_tolerance=cfg.recordings.gap_tolerance_seconds)
    playlist = work / "plan.ffconcat"
    playlist.write_text(concat_playlist(plan.items), encoding="utf-8")
    info = plan.items[0].footage.info
    assert info is not None
    argv = clip_argv(
        fx.ffmpeg,
        playlist,
        work / "render.mp4",
        video_codec=info.params.video_codec,
        audio_codec=info.params.audio_codec,
    )
    return argv, playlist


def profile_clip(clipper: Clipper, window: Window, ids: Iterator[int], runs: int, text_path: Path) -> dict[str, Any]:
    """pyinstrument over `runs` warm make_clip calls: inclusive ms per clip of the functions that matter."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return {"skipped": "pyinstrument is not installed (.venv/bin/pip install pyinstrument)"}
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(runs):
        outcome = clipper.make_clip(
            ClipRequest(clip_id=f"prof{next(ids):06d}", camera_id=CAMERA, window=window, source="bench")
        )
        outcome.video_path.unlink()
        for path in outcome.annotation_paths.values():
            path.unlink()
    profiler.stop()
    RESULTS.mkdir(parents=True, exist_ok=True)
    text_path.write_text(profiler.output_text(unicode=False, color=False))
    totals: Counter[str] = Counter()

    def walk(frame: Any, seen: frozenset[str]) -> None:
        key = f"{Path(frame.file_path or '?').stem}.{frame.function}"
        if key not in seen:
            totals[key] += frame.time
            seen = seen | {key}
        for child in frame.children:
            walk(child, seen)

    root = profiler.last_session.root_frame()
    walk(root, frozenset())
    wanted = ("make_clip", "_render", "run_command", "communicate", "clip_duration", "write_annotations", "gather")
    wanted += ("atomic_write_text", "fsync", "render", "_record", "plan_clip", "replace", "concat_playlist")
    rows = [
        {"function": key, "ms_per_clip": round(seconds * 1000 / runs, 2)}
        for key, seconds in totals.most_common()
        if key.split(".")[-1] in wanted
    ]
    return {"runs": runs, "file": str(text_path.relative_to(REPO)), "inclusive": rows[:14]}


# -- MQTT client for the benchmark --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    mono: float  # time.monotonic() (CLOCK_MONOTONIC: comparable across processes)
    wall: float
    topic: str
    payload: dict[str, Any]


class Client:
    """A v5 paho client (tests.harness.TestClient) that stamps every arriving message on paho's thread."""

    def __init__(self, port: int, topics: list[str] | None = None) -> None:
        self._arrivals: queue.Queue[tuple[float, float, mqtt.MQTTMessage]] = queue.Queue()
        self.test = TestClient(port, subscribe=topics or [])
        self.test.client.on_message = self._on_message
        # Our side of the connection must not add Nagle stalls (a PUBLISH right after a PUBACK waits for the
        # broker's delayed ACK, 40 ms): the numbers are about the service and the broker, not this client.
        sock = self.test.client.socket()
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._early: dict[bytes, Arrival] = {}

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self._arrivals.put((time.monotonic(), time.time(), msg))

    def publish(
        self, topic: str, payload: dict[str, Any] | bytes, *, response_topic: str | None = None, corr: bytes = b""
    ) -> mqtt.MQTTMessageInfo:
        props = None
        if response_topic:
            props = Properties(PacketTypes.PUBLISH)
            props.ResponseTopic = response_topic
            props.CorrelationData = corr
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.test.client.publish(topic, body, qos=1, properties=props)

    def wait(
        self, correlations: set[bytes], timeout: float, each: Callable[[Arrival], None] = lambda a: None
    ) -> dict[bytes, Arrival]:
        """The replies carrying these correlation ids (waits on the arrival queue, bounded by `timeout`)."""
        deadline = time.monotonic() + timeout
        got = {c: self._early.pop(c) for c in list(correlations) if c in self._early}
        for arrival in got.values():
            each(arrival)
        while len(got) < len(correlations):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(correlations) - len(got)} repl(ies) missing after {timeout:g} s")
            try:
                mono, wall, msg = self._arrivals.get(timeout=remaining)
            except queue.Empty:
                continue
            arrival = Arrival(mono, wall, msg.topic, json.loads(msg.payload))
            corr = correlation_of(msg) or b""
            if corr in correlations:
                got[corr] = arrival
                each(arrival)
            else:
                self._early[corr] = arrival
        return got

    def close(self) -> None:
        self.test.close()


def start_service(base: Path, broker: Broker, fx: Footage, name: str, **overrides: object) -> Service:
    """`clipbridge run` (the package as it is) on our broker, with its default settings unless overridden."""
    work = base / name
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    settings: dict[str, object] = {
        "mqtt__port": broker.port,
        "mqtt__client_id": f"bench-{name}-{RUN}",
        "http__port": port,
        "http__public_base_url": f"http://127.0.0.1:{port}",
        **overrides,
    }
    env = config_env(work, [source(fx.root), source(fx.live_root)], **settings)
    service = Service(env, work)
    service.start()
    return service


def stop_service(service: Service | None) -> None:
    if service is None or service.proc is None:
        return
    try:
        service.stop()
    except subprocess.TimeoutExpired:
        service.kill9()


def remove_clip(output_dir: Path, reply: dict[str, Any]) -> None:
    """Clips are deleted as soon as they are answered: 200 x 40 MB need not reach the disk."""
    if reply.get("video_file"):
        (output_dir / reply["video_file"]).unlink(missing_ok=True)


# -- py-spy (attach to the service) -------------------------------------------------------------------------------

_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*?)(?::\d+)?\)$")
_SCAFFOLD = {"cli.main", "__main__.<module>", "service.run_service", "service._main", "service.serve"}


class PySpy:
    """`py-spy record --idle --format raw` on a pid until stopped; idle samples included (waits count too)."""

    def __init__(self, pid: int, out: Path, rate: int = 250) -> None:
        self.out, self.rate = out, rate
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        argv = [exe, "record", "--pid", str(pid), "--rate", str(rate), "--nonblocking", "--idle"]
        argv += ["--format", "raw", "-o", str(out)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.log = LogWatcher(self.proc.stdout)
        self.log.wait_for("Sampling process", timeout=30)

    @staticmethod
    def available() -> bool:
        return bool(shutil.which("py-spy")) or Path(sys.executable).with_name("py-spy").exists()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=60)
        self.log.join()

    def inclusive(self, per: int, top: int = 16) -> list[dict[str, Any]]:
        """clipbridge functions by inclusive wall time (all threads), in ms per unit of work (`per` units)."""
        totals: Counter[str] = Counter()
        for line in self.out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            seen: set[str] = set()
            for frame in stack.split(";"):
                match = _FRAME.match(frame)
                if not match or "clipbridge" not in match["file"]:
                    continue
                key = f"{Path(match['file']).stem}.{match['func']}"
                if key not in seen and key not in _SCAFFOLD:
                    seen.add(key)
                    totals[key] += int(count)
        return [
            {"function": key, "ms_per_unit": round(samples / self.rate * 1000 / per, 2), "samples": samples}
            for key, samples in totals.most_common(top)
        ]


# -- section 2: end-to-end ----------------------------------------------------------------------------------------


def one_incident(client: Client, output_dir: Path, tag: str, camera: str = CAMERA) -> float:
    corr = f"{tag}".encode()
    started = time.monotonic()
    client.publish(
        f"cameras/{camera}/incidents",
        {**SEED_EVENT, "event_id": f"{RUN}-{tag}"},
        response_topic="bench/r/e2e",
        corr=corr,
    )
    arrival = client.wait({corr}, timeout=120)[corr]
    if arrival.payload.get("status") != "done":
        raise RuntimeError(f"incident {tag}: {arrival.payload}")
    remove_clip(output_dir, arrival.payload)
    return arrival.mono - started


def rejection_rtt(client: Client, runs: int) -> dict[str, float]:
    """Publish -> reply for an event that is rejected at intake (unknown camera): MQTT both ways plus one commit."""
    times = []
    for i in range(runs):
        corr = f"reject-{i}".encode()
        started = time.monotonic()
        client.publish(
            "cameras/nosuchcamera/incidents",
            {**SEED_EVENT, "event_id": f"{RUN}-rej-{i}"},
            response_topic="bench/r/rej",
            corr=corr,
        )
        arrival = client.wait({corr}, timeout=30)[corr]
        if arrival.payload.get("status") != "rejected":
            raise RuntimeError(f"expected a rejection: {arrival.payload}")
        times.append(arrival.mono - started)
    return summary(times)


def e2e_run(service: Service, client: Client, n: int, tag: str) -> dict[str, Any]:
    """n sequential incidents (footage on disk); latency summary plus the service's own view from /metrics."""
    output_dir = service.workdir / "videos"
    before = histograms(service)
    latencies = [one_incident(client, output_dir, f"{tag}-{i}") for i in range(n)]
    after = histograms(service)
    stats = summary(latencies)
    mean = round(statistics.fmean(latencies) * 1000, 2)
    job = mean_ms(before, after, "clip_latency_seconds")
    return {
        "latency": stats,
        "mean_ms": mean,
        "ffmpeg_part_mean_ms": mean_ms(before, after, "clip_ffmpeg_seconds"),
        "job_mean_ms": job,  # intake commit -> job finished (clip_latency_seconds)
        "outside_job_mean_ms": round(mean - job, 2),  # MQTT in and out, intake, outbox
    }


def section_e2e(service: Service, client: Client, sizes: Sizes, bare_ms: float, stamp: str) -> dict[str, Any]:
    output_dir = service.workdir / "videos"
    first = one_incident(client, output_dir, "e2e-first")  # the service's first clip: its probe cache is cold
    out = e2e_run(service, client, sizes.e2e, "e2e")
    out["first_incident_cold_probe_ms"] = round(first * 1000, 1)
    out["ffmpeg_part_source"] = "service /metrics: clip_ffmpeg_seconds and clip_latency_seconds, sum/count deltas"
    out["non_ffmpeg_ms_at_p50"] = round(out["latency"]["median_ms"] - out["ffmpeg_part_mean_ms"], 2)
    out["rejection_rtt"] = rejection_rtt(client, sizes.rejections)
    out["target_ms"] = round(bare_ms + TARGET_E2E_MARGIN_MS, 2)
    out["met"] = out["latency"]["median_ms"] <= bare_ms + TARGET_E2E_MARGIN_MS
    if PySpy.available() and sizes.profile_incidents:
        spy = PySpy(service.proc.pid, RESULTS / f"{stamp}-service-e2e.pyspy.txt")  # type: ignore[union-attr]
        try:
            started = time.perf_counter()
            for i in range(sizes.profile_incidents):
                one_incident(client, output_dir, f"e2e-prof-{i}")
            wall = time.perf_counter() - started
        finally:
            spy.stop()
        out["profile"] = {
            "incidents": sizes.profile_incidents,
            "wall_ms_per_incident": round(wall * 1000 / sizes.profile_incidents, 1),
            "file": str(spy.out.relative_to(REPO)),
            "inclusive": spy.inclusive(sizes.profile_incidents),
            "note": "separate pass with py-spy attached (--idle --nonblocking); not part of the latency numbers",
        }
    else:
        out["profile"] = {"skipped": "py-spy is not installed (.venv/bin/pip install py-spy)"}
    return out


def store_costs(base: Path, runs: int = 30) -> dict[str, Any]:
    """What each SQLite transaction of one job costs here (WAL, synchronous=FULL: one fsync per commit)."""
    from clipbridge.handlers.store import NewJob, ReplyTarget, Store

    store = Store(path=base / "storecost" / "jobs.db")
    store.open()
    phases: dict[str, list[float]] = {"submit_many(1 job)": [], "set_status": [], "finish": [], "mark_sent": []}
    now = datetime.now(UTC)
    for i in range(runs):
        new = NewJob(f"s{i:015d}", f"k{i}", None, CAMERA, now, now, now, {}, "bench")
        started = time.perf_counter()
        store.submit_many([(new, ReplyTarget("bench/r", b"x"))])
        phases["submit_many(1 job)"].append(time.perf_counter() - started)
        started = time.perf_counter()
        store.set_status(new.clip_id, "processing", attempt=True)
        phases["set_status"].append(time.perf_counter() - started)
        started = time.perf_counter()
        store.finish(new.clip_id, status="done", result={}, error=None, files=[], reply_payload=b"{}", completed_at="x")
        phases["finish"].append(time.perf_counter() - started)
        row = store.unsent(limit=1)[0]
        started = time.perf_counter()
        store.mark_sent([row.id])
        phases["mark_sent"].append(time.perf_counter() - started)
    store.close()
    return {name: summary(values) for name, values in phases.items()}


# -- section 3: live ----------------------------------------------------------------------------------------------


class LiveWriter(threading.Thread):
    """A recorder closing 5 s segments: each is copied to a staging folder ahead of time, then renamed into the
    recordings root (atomic) at the moment its wall-clock end passes, with that moment as its mtime. Segments whose
    end is already past when the writer starts (the history) are placed at once."""

    def __init__(self, sources: list[Path], root: Path, staging: Path, base: int, camera: str) -> None:
        super().__init__(name="live-writer", daemon=True)
        self.sources, self.root, self.staging, self.base = sources, root, staging, base
        self.camera = camera
        self.renamed: dict[int, float] = {}
        self.cond = threading.Condition()
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def start_of(self, k: int) -> int:
        return self.base + SEGMENT_SECONDS * k

    def run(self) -> None:
        try:
            self.staging.mkdir(parents=True, exist_ok=True)
            k = 0
            while not self.stop_event.is_set():
                staged = self.staging / f"seg{k:05d}.mp4"
                shutil.copyfile(self.sources[k % len(self.sources)], staged)
                due = self.start_of(k) + SEGMENT_SECONDS
                delay = due - time.time()
                # A recorder closes a segment when its wall-clock end passes (interruptible by stop_event).
                if delay > 0 and self.stop_event.wait(delay):  # sleep-ok: the real-time writer's pacing
                    staged.unlink()
                    break
                os.utime(staged, (due, due))
                target = self.root / LAYOUT.render(self.camera, datetime.fromtimestamp(self.start_of(k), UTC))
                os.rename(staged, target)
                renamed_at = time.time()
                with self.cond:
                    self.renamed[k] = renamed_at
                    self.cond.notify_all()
                k += 1
        except BaseException as exc:
            with self.cond:
                self.error = exc
                self.cond.notify_all()

    def wait_renamed(self, k: int, timeout: float) -> float:
        with self.cond:
            if not self.cond.wait_for(lambda: k in self.renamed or self.error is not None, timeout=timeout):
                raise TimeoutError(f"segment {k} was not written within {timeout} s")
            if self.error is not None:
                raise RuntimeError("the live writer failed") from self.error
            return self.renamed[k]


def watcher_live(service: Service, fx: Footage, base: Path, camera: str) -> dict[str, Any]:
    """Wait until the service's file watcher sees a segment renamed into the live root (GET /cameras). A file renamed
    in before the watch exists is only found by the periodic rescan (recordings.rescan_seconds, 60 s), so the
    history the writer places at once must not come earlier. Each try renames another segment two hours old (outside
    every window) and waits 2 s for it."""

    def known() -> int:
        cameras = http_json(f"{service.base_url}/cameras")
        return next((c["segments"] for c in cameras if c["camera_id"] == camera), 0)

    before = known()
    started = time.monotonic()
    base_time = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    for attempt in range(1, 31):
        staged = base / f"marker-{camera}-{attempt}.mp4"
        shutil.copyfile(fx.segments[0], staged)
        when = base_time - timedelta(seconds=SEGMENT_SECONDS * attempt)
        os.utime(staged, (when.timestamp() + SEGMENT_SECONDS,) * 2)
        os.rename(staged, fx.live_root / LAYOUT.render(camera, when))
        try:
            poll(lambda: known() > before, timeout=2.0, interval=0.05)
        except AssertionError:
            continue
        return {"attempts": attempt, "seconds": round(time.monotonic() - started, 3)}
    raise RuntimeError(f"the service's watcher did not see a new segment of {camera} within 30 tries")


def section_live(
    service: Service, client: Client, fx: Footage, base: Path, sizes: Sizes, camera: str = LIVE_CAMERA
) -> dict[str, Any]:
    watcher = watcher_live(service, fx, base, camera)
    history = 6  # 30 s of footage exist when the first live incident comes (its window starts 15 s back)
    start = math.floor(time.time()) - SEGMENT_SECONDS * history
    writer = LiveWriter(fx.segments, fx.live_root, base / f"staging-{camera}", start, camera)
    writer.start()
    phis = [0.35, 2.85, 1.6, 4.1, 0.95, 3.45, 2.2, 4.6]  # seconds between detection and the segment close
    per_step = 2
    incidents: list[tuple[bytes, float, float]] = []  # correlation, incident time, publish time
    try:
        for step in range(math.ceil(sizes.live / per_step)):
            closed = writer.wait_renamed(history + step, timeout=SEGMENT_SECONDS * 3)
            for j in range(per_step):
                i = step * per_step + j
                if i >= sizes.live:
                    break
                # Detected phi s ago: the window ends 5 - phi s from now, inside the segment being recorded.
                ts = round(closed - phis[i % len(phis)], 3)
                corr = f"{camera}-{i}".encode()
                client.publish(
                    f"cameras/{camera}/incidents",
                    {"timestamp": ts, "duration": 20, "event_id": f"{RUN}-{camera}-{i}"},
                    response_topic="bench/r/live",
                    corr=corr,
                )
                incidents.append((corr, ts, time.time()))
        arrivals = client.wait({c for c, _, _ in incidents}, timeout=90)
    finally:
        writer.stop_event.set()
        writer.join(timeout=30)
    output_dir = service.workdir / "videos"
    latencies, after_end, statuses, rows = [], [], Counter[str](), []
    for corr, ts, published in incidents:
        arrival = arrivals[corr]
        statuses[arrival.payload["status"]] += 1
        remove_clip(output_dir, arrival.payload)
        end = ts + 5.0  # window end: post_seconds 5
        last = math.ceil(round((end - start) / SEGMENT_SECONDS, 6)) - 1  # the segment holding the window end
        complete_at = writer.renamed[last]
        latencies.append(arrival.wall - complete_at)
        after_end.append(arrival.wall - end)
        rows.append(
            {
                "window_end_after_publish_s": round(end - published, 3),
                "window_end_to_last_segment_complete_s": round(complete_at - end, 3),
                "last_segment_complete_to_reply_ms": round((arrival.wall - complete_at) * 1000, 1),
                "status": arrival.payload["status"],
            }
        )
    stats = summary(latencies)
    return {
        "latency_from_last_segment_complete": stats,
        "latency_from_window_end": summary(after_end),
        "statuses": dict(statuses),
        "incidents": rows,
        "watcher_ready": watcher,
        "target_ms": TARGET_LIVE_P95_MS,
        "met": stats["p95_ms"] <= TARGET_LIVE_P95_MS,
    }


# -- section 4: burst ---------------------------------------------------------------------------------------------


def section_burst(
    service: Service, client: Client, fx: Footage, sizes: Sizes, bare_ms: float, nproc: int
) -> dict[str, Any]:
    output_dir = service.workdir / "videos"
    cameras = fx.burst_cameras
    n = len(cameras) * sizes.burst_per_camera
    items = [(cameras[i % len(cameras)], f"burst-{i}".encode(), f"{RUN}-burst-{i}") for i in range(n)]
    pid = service.proc.pid  # type: ignore[union-attr]
    before = histograms(service)
    own0, children0 = cpu_seconds(pid)
    started = time.monotonic()
    for camera, corr, event_id in items:
        client.publish(
            f"cameras/{camera}/incidents",
            {**SEED_EVENT, "event_id": event_id},
            response_topic="bench/r/burst",
            corr=corr,
        )
    published = time.monotonic() - started
    arrivals = client.wait({c for _, c, _ in items}, timeout=600, each=lambda a: remove_clip(output_dir, a.payload))
    last = max(a.mono for a in arrivals.values()) - started
    own1, children1 = cpu_seconds(pid)
    after = histograms(service)
    statuses = Counter(a.payload["status"] for a in arrivals.values())
    ideal = n * bare_ms / 1000 / nproc
    return {
        "incidents": n,
        "cameras": len(cameras),
        "footage": "1080p 16 Mb/s, hard links to the same six segment files per camera",
        "publish_seconds": round(published, 3),
        "time_to_last_reply_s": round(last, 2),
        "clips_per_s": round(n / last, 2),
        "statuses": dict(statuses),
        "service_cpu_s": round(own1 - own0, 2),
        "service_cpu_ms_per_clip": round((own1 - own0) * 1000 / n, 1),
        "ffmpeg_children_cpu_s": round(children1 - children0, 2),
        "service_cpu_share_of_machine": round((own1 - own0) / (last * nproc), 3),
        "all_cpu_share_of_machine": round((own1 - own0 + children1 - children0) / (last * nproc), 3),
        "ideal_s": round(ideal, 2),
        "ideal_note": f"{n} x bare FFmpeg median {bare_ms:.1f} ms / {nproc} cores",
        "vs_ideal": round(last / ideal, 2),
        "ffmpeg_wall_mean_ms": mean_ms(before, after, "clip_ffmpeg_seconds"),
        "job_latency_mean_ms": mean_ms(before, after, "clip_latency_seconds"),
    }


# -- section 5: intake --------------------------------------------------------------------------------------------


def broker_ceiling(broker: Broker, n: int, payload: bytes) -> dict[str, Any]:
    """The broker's own delivery rate: the same publisher as for the service, and a plain paho subscriber (QoS 1,
    auto-ack, defaults) in a process of its own, as the service is."""
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.run", "--ceiling-child", str(broker.port), str(n)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    log = LogWatcher(child.stdout)
    publisher = Client(broker.port)
    try:
        log.wait_for("subscribed", timeout=30)
        started = time.monotonic()
        for _ in range(n):
            publisher.publish("bench/ceiling", payload)
        data = json.loads(log.lines[log.wait_for("last_monotonic", timeout=120)])
    finally:
        publisher.close()
        child.wait(timeout=30)
        log.join()
    seconds = data["last_monotonic"] - started
    return {"messages": n, "seconds": round(seconds, 3), "per_s": round(n / seconds, 1)}


def ceiling_child(port: int, n: int) -> None:
    """A plain paho v5 subscriber: counts n messages, prints the CLOCK_MONOTONIC time of the last one."""
    from paho.mqtt.enums import CallbackAPIVersion

    subscribed, done = threading.Event(), threading.Event()
    state = {"count": 0, "last": 0.0}

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        state["count"] += 1
        if state["count"] == n:
            state["last"] = time.monotonic()
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"ceiling-{RUN}", protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: c.subscribe("bench/ceiling", qos=1)
    client.on_subscribe = lambda *a: subscribed.set()
    client.connect("127.0.0.1", port, 30)
    client.loop_start()
    if subscribed.wait(15):
        print("subscribed", flush=True)
    done.wait(120)
    print(json.dumps({"last_monotonic": state["last"], "received": state["count"]}), flush=True)
    client.disconnect()
    client.loop_stop()


def section_intake(base: Path, broker: Broker, fx: Footage, sizes: Sizes, stamp: str) -> dict[str, Any]:
    n = sizes.intake
    ahead = time.time() + 86400  # windows a day ahead: every job waits, FFmpeg never runs
    payloads = [
        json.dumps({"timestamp": round(ahead + i * 0.01, 3), "duration": 20, "event_id": f"{RUN}-intake-{i}"}).encode()
        for i in range(n)
    ]
    ceiling = broker_ceiling(broker, n, payloads[0])
    service = start_service(
        base,
        broker,
        fx,
        "intake",
        mqtt__request_topics=["intake/cameras/+/incidents"],
        clips__max_wait_seconds=3 * 86400,  # the jobs wait for footage a day ahead (clips.max_backlog: default)
    )
    client = Client(broker.port, ["bench/r/intake"])
    out: dict[str, Any] = {"events": n, "broker_ceiling": ceiling}
    try:
        log = service.log
        assert log is not None
        mark = len(log.lines)
        started = time.monotonic()
        for payload in payloads:
            client.publish(f"intake/cameras/{CAMERA}/incidents", payload)
        published = time.monotonic() - started
        # The sentinel comes after the N events on the same session (in order): its rejection is committed, and
        # the events before it acknowledged, by the time its reply arrives.
        client.publish(
            "intake/cameras/nosuchcamera/incidents",
            {"timestamp": ahead, "duration": 20},
            response_topic="bench/r/intake",
            corr=b"sentinel",
        )
        sentinel = client.wait({b"sentinel"}, timeout=300)[b"sentinel"]
        acked = sentinel.mono - started
        total = http_json(f"{service.base_url}/clips?limit=1")["total"]
        if total != n:  # not expected: fall back to polling the count, as a REST client would
            poll(lambda: http_json(f"{service.base_url}/clips?limit=1")["total"] >= n, timeout=120)
            acked = time.monotonic() - started
        # Worker side: every job looked at its footage and went to `waiting` (one commit each).
        index = mark
        for _ in range(n):
            index = log.wait_for("waiting for footage", timeout=300, start=index) + 1
        waiting = time.monotonic() - started
        out.update(
            {
                "publish_seconds": round(published, 3),
                "acked_seconds": round(acked, 3),
                "events_per_s": round(n / acked, 1),
                "sentinel_reply": (sentinel.payload.get("error") or {}).get("code"),
                "all_waiting_seconds": round(waiting, 3),
                "jobs_reached_waiting_per_s": round(n / waiting, 1),
            }
        )
        if out["events_per_s"] < TARGET_INTAKE_RATE and PySpy.available() and sizes.intake_profile:
            out["profile"] = profile_intake(service, client, sizes.intake_profile, ahead, stamp)
    finally:
        client.close()
        stop_service(service)
    db = sqlite3.connect(f"file:{service.workdir / 'data' / 'clipbridge.db'}?mode=ro", uri=True)
    try:
        jobs = db.execute("SELECT COUNT(*) FROM jobs WHERE event_id LIKE ?", (f"{RUN}-intake-%",)).fetchone()[0]
        distinct = db.execute("SELECT COUNT(DISTINCT event_id) FROM jobs WHERE event_id LIKE ?", (f"{RUN}-intake-%",))
        distinct_n = distinct.fetchone()[0]
    finally:
        db.close()
    out["jobs_in_store"] = jobs
    out["lost"] = n - distinct_n
    out["met"] = out.get("events_per_s", 0) >= TARGET_INTAKE_RATE and out["lost"] == 0
    return out


def profile_intake(service: Service, client: Client, n: int, ahead: float, stamp: str) -> dict[str, Any]:
    """A second batch of events with py-spy attached: where the event loop's time goes per event."""
    spy = PySpy(service.proc.pid, RESULTS / f"{stamp}-service-intake.pyspy.txt")  # type: ignore[union-attr]
    try:
        started = time.monotonic()
        for i in range(n):
            payload = {"timestamp": round(ahead + 3600 + i * 0.01, 3), "duration": 20, "event_id": f"{RUN}-prof-{i}"}
            client.publish(f"intake/cameras/{CAMERA}/incidents", payload)
        client.publish(
            "intake/cameras/nosuchcamera/incidents",
            {"timestamp": ahead, "duration": 20},
            response_topic="bench/r/intake",
            corr=b"sentinel-prof",
        )
        client.wait({b"sentinel-prof"}, timeout=300)
        wall = time.monotonic() - started
    finally:
        spy.stop()
    return {
        "events": n,
        "events_per_s_with_profiler": round(n / wall, 1),
        "file": str(spy.out.relative_to(REPO)),
        "inclusive": spy.inclusive(n),
        "note": "ms per event, all threads, idle included; a second batch with py-spy attached",
    }


# -- section 6: index scale ---------------------------------------------------------------------------------------


def create_empty(root: Path, cameras: int, first: int, last: int) -> None:
    """Empty segment files `first`..`last`-1 of every camera, 5 s apart (mknod: one syscall each)."""
    t0 = int(T0.timestamp())
    for c in range(cameras):
        camera = f"idx{c:03d}"
        folder = root / camera
        folder.mkdir(parents=True, exist_ok=True)
        prefix = f"{folder}/{camera}_"
        for j in range(first, last):
            os.mknod(prefix + time.strftime("%Y%m%d_%H%M%S", time.gmtime(t0 + SEGMENT_SECONDS * j)) + ".mp4")


def index_child(root: Path, lookups: int) -> None:
    """Run in a fresh process: cold scan, RSS before/after, candidates() timing. Prints one JSON line."""
    config = RecordingsConfig(sources=[SourceConfig(root=root, layout=SEED_LAYOUT)])
    rss_before = vmrss_kb()
    index = RecordingsIndex(config=config)
    started = time.perf_counter()
    count = index.scan()
    scan = time.perf_counter() - started
    rss_after = vmrss_kb()
    rng = random.Random(7)
    cameras = index.cameras()
    spans = {}
    for camera in cameras:
        found = index.summary(camera)
        assert found is not None
        spans[camera] = (found.first_start, (found.newest.start - found.first_start).total_seconds())
    times = []
    hits = 0
    for _ in range(lookups):
        camera = rng.choice(cameras)
        first, span = spans[camera]
        start = first + timedelta(seconds=rng.random() * span)
        t = time.perf_counter_ns()
        found_segments = index.candidates(camera, start, start + timedelta(seconds=20))
        times.append(time.perf_counter_ns() - t)
        hits += len(found_segments)
    times.sort()
    print(
        json.dumps(
            {
                "segments": count,
                "cameras": len(cameras),
                "scan_s": round(scan, 3),
                "lookup_median_us": round(statistics.median(times) / 1000, 2),
                "lookup_p95_us": round(_pct(times, 95) / 1000, 2),
                "lookups": lookups,
                "segments_per_lookup": round(hits / lookups, 2),
                "rss_before_mb": round(rss_before / 1024, 1),
                "rss_after_mb": round(rss_after / 1024, 1),
                "rss_delta_mb": round((rss_after - rss_before) / 1024, 1),
                "bytes_per_segment": round((rss_after - rss_before) * 1024 / max(1, count)),
            }
        )
    )


def section_index(base: Path, sizes: Sizes, deadline: float) -> dict[str, Any]:
    root = base / "index"
    cameras = 200
    done = 0
    rows: list[dict[str, Any]] = []
    rates: tuple[float, float] | None = None  # seconds per file created, per file scanned (first scale)
    try:
        for files in sizes.index_scales:
            per_camera = files // cameras
            more = per_camera * cameras - done
            if rates is not None:
                # create the new files, scan them all, remove them all (about as fast as creating)
                estimate = 1.3 * (2 * more * rates[0] + per_camera * cameras * (rates[1] + rates[0])) + 5
                left = deadline - time.monotonic()
                if estimate > left:
                    rows.append(
                        {
                            "files": files,
                            "skipped": f"creating and scanning {more} more files would take ~{estimate:.0f} s;"
                            f" {max(0.0, left):.0f} s of the time budget were left",
                        }
                    )
                    continue
            started = time.perf_counter()
            create_empty(root, cameras, done // cameras, per_camera)
            created = time.perf_counter() - started
            done = per_camera * cameras
            child = subprocess.run(
                [sys.executable, "-m", "bench.run", "--index-child", str(root), "--lookups", str(sizes.lookups)],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=900,
                check=True,
            )
            data = json.loads(child.stdout.strip().splitlines()[-1])
            rows.append(
                {
                    "files": done,
                    "create_s": round(created, 2),
                    "create_per_s": round(more / created),
                    "created_now": more,
                    **data,
                }
            )
            rates = (created / max(1, more), data["scan_s"] / max(1, done))
    finally:
        started = time.perf_counter()
        shutil.rmtree(root, ignore_errors=True)
        removed = time.perf_counter() - started
    return {
        "cameras": cameras,
        "scales": rows,
        "remove_s": round(removed, 2),
        "note": "dentry cache warm (not dropped)",
    }


# -- report -------------------------------------------------------------------------------------------------------


def _yes(met: bool | None) -> str:
    return "n/a" if met is None else ("**met**" if met else "**not met**")


def _ms(s: dict[str, float], keys: Sequence[str] = ("median_ms", "p95_ms")) -> str:
    names = {"median_ms": "median", "p95_ms": "p95", "p99_ms": "p99"}
    return ", ".join(f"{names[k]} {s[k]:.1f} ms" for k in keys)


def report(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [f"## clipbridge benchmark, {results['date']} ({'quick' if results['quick'] else 'full'} run)", ""]
    lines += ["| machine | |", "| --- | --- |"]
    lines.append(f"| CPU | {m['cpu_model']}, nproc {m['nproc']}, {m['mem_gb']} GB RAM |")
    lines.append(f"| OS / Python | Linux {m['kernel']}, Python {m['python']} |")
    code = results.get("code")
    if code:
        dirty = code["uncommitted_outside_bench"]
        extra = f" + uncommitted changes to {', '.join(dirty)}" if dirty else ", clean"
        lines.append(f"| code | commit {code['head']}{extra} |")
    lines.append(f"| FFmpeg (bundled, imageio-ffmpeg) | {m['ffmpeg_bundled']['version']} |")
    debian = m["ffmpeg_debian"]
    lines.append(f"| FFmpeg (Debian) | {debian['version'] if debian else 'not installed'} |")
    broker = results.get("broker_config")
    if broker:
        effective = {line.split()[0]: line for line in broker if line.strip()}  # mosquitto: the last line wins
        skip = ("log_", "listener", "persistence_location", "user")
        settings = ", ".join(v for k, v in effective.items() if not k.startswith(skip))
        lines.append(f"| broker | {m['mosquitto']}; tests.harness.Broker + mosquitto/dev.conf: {settings} |")
    else:
        lines.append(f"| broker | {m['mosquitto']} (not started) |")
    fx = results.get("footage", {})
    if fx:
        lines.append(f"| footage | {fx['description']}; generated in {fx['generate_s']:.1f} s |")
    lines.append(
        f"| load average | {' / '.join(map(str, m['loadavg_at_start']))} at start,"
        f" {' / '.join(map(str, results['loadavg_at_end']))} at end (other test suites share the machine) |"
    )
    lines += ["", "| # | measurement | result | runs | target | met |", "| --- | --- | --- | --- | --- | --- |"]
    s = results.get("sections", {})
    if "clip_cost" in s:
        c = s["clip_cost"]
        n = c["clipbridge_warm"]["n"]
        lines.append(f"| 1 | bare `ffmpeg -f concat -c copy`, bundled | {_ms(c['bare_bundled'])} | {n} | | |")
        lines.append(
            f"| 1 | clipbridge `make_clip`, warm probe cache | {_ms(c['clipbridge_warm'])};"
            f" **{c['ratio_warm']:.2f}x** bare | {n} | <= {TARGET_CLIP_RATIO:.2f}x |"
            f" {_yes(c['ratio_warm'] <= TARGET_CLIP_RATIO)} |"
        )
        lines.append(
            f"| 1 | informational: FFmpeg alone with clipbridge's argv minus `-movflags +faststart` |"
            f" {_ms(c['ffmpeg_no_faststart'])}; {c['ratio_no_faststart']:.2f}x bare | {n} | | |"
        )
        lines.append(
            f"| 1 | clipbridge `make_clip`, cold probe cache | {_ms(c['clipbridge_cold'])};"
            f" {c['ratio_cold']:.2f}x bare | {n} | | |"
        )
        lines.append(
            f"| 1 | `cat` of the same {c['input_bytes'] / 1e6:.0f} MB (I/O floor) | {_ms(c['cat'])};"
            f" {c['ratio_cat']:.2f}x bare | {n} | | |"
        )
        if "bare_debian" in c:
            lines.append(
                f"| 1 | bare concat, Debian /usr/bin/ffmpeg | {_ms(c['bare_debian'])};"
                f" {c['ratio_debian']:.2f}x bundled | {n} | | |"
            )
        else:
            lines.append(f"| 1 | bare concat, Debian /usr/bin/ffmpeg | skipped: {c['debian_note']} | 0 | | |")
    if "e2e" in s:
        e = s["e2e"]
        lat = e["latency"]
        lines.append(
            f"| 2 | end-to-end MQTT publish -> reply | {_ms(lat, ('median_ms', 'p95_ms', 'p99_ms'))} | {lat['n']} |"
            f" p50 <= bare + {TARGET_E2E_MARGIN_MS:.0f} ms = {e['target_ms']:.1f} ms | {_yes(e['met'])} |"
        )
        lines.append(
            f"| 2 | ... split by the service's /metrics (means) | FFmpeg {e['ffmpeg_part_mean_ms']:.1f} ms;"
            f" job (commit -> finished) {e['job_mean_ms']:.1f} ms; outside the job (MQTT both ways, intake,"
            f" outbox) {e['outside_job_mean_ms']:.1f} ms of {e['mean_ms']:.1f} ms | {lat['n']} | | |"
        )
        rej = e["rejection_rtt"]
        lines.append(f"| 2 | MQTT round trip without a clip (rejected event) | {_ms(rej)} | {rej['n']} | | |")
    if "live" in s:
        lv = s["live"]
        lat = lv["latency_from_last_segment_complete"]
        lines.append(
            f"| 3 | live: last needed segment complete -> reply | {_ms(lat)} | {lat['n']} |"
            f" p95 <= {TARGET_LIVE_P95_MS:.0f} ms | {_yes(lv['met'])} |"
        )
        end = lv["latency_from_window_end"]
        lines.append(
            f"| 3 | live: window end -> reply (includes waiting for the recorder to close the segment) |"
            f" {_ms(end)}; statuses {lv['statuses']} | {end['n']} | | |"
        )
    if "burst" in s:
        b = s["burst"]
        lines.append(
            f"| 4 | burst: {b['incidents']} incidents over {b['cameras']} cameras at once | last reply after"
            f" {b['time_to_last_reply_s']:.1f} s, {b['clips_per_s']:.1f} clips/s; {b['vs_ideal']:.2f}x the ideal"
            f" {b['ideal_s']:.1f} s ({b['ideal_note']}) | {b['incidents']} | | |"
        )
        lines.append(
            f"| 4 | burst CPU | service (Python) {b['service_cpu_s']:.1f} s = {b['service_cpu_ms_per_clip']:.0f}"
            f" ms/clip, FFmpeg children {b['ffmpeg_children_cpu_s']:.1f} s; FFmpeg wall per clip (mean, 2"
            f" at a time) {b['ffmpeg_wall_mean_ms']:.0f} ms; machine share"
            f" {b['all_cpu_share_of_machine'] * 100:.0f}% | {b['incidents']} | | |"
        )
    if "intake" in s:
        it = s["intake"]
        lines.append(
            f"| 5 | intake: events persisted + acknowledged | {it.get('events_per_s', 0):.0f} events/s"
            f" ({it['events']} in {it.get('acked_seconds', 0):.2f} s); lost {it['lost']}, jobs {it['jobs_in_store']}"
            f" | {it['events']} | >= {TARGET_INTAKE_RATE:.0f}/s, 0 lost | {_yes(it['met'])} |"
        )
        lines.append(
            f"| 5 | broker ceiling (plain paho subscriber) | {it['broker_ceiling']['per_s']:.0f} msg/s |"
            f" {it['broker_ceiling']['messages']} | | |"
        )
        if "jobs_reached_waiting_per_s" in it:
            lines.append(
                f"| 5 | worker side: all jobs reached `waiting` | {it['jobs_reached_waiting_per_s']:.0f} jobs/s"
                f" ({it['all_waiting_seconds']:.2f} s) | {it['events']} | | |"
            )
    if "index" in s:
        for row in s["index"]["scales"]:
            if "skipped" in row:
                lines.append(f"| 6 | index, {row['files']:,} files | skipped: {row['skipped']} | 0 | | |")
                continue
            lines.append(
                f"| 6 | index, {row['files']:,} empty files / {row['cameras']} cameras | created"
                f" {row['created_now']:,} in {row['create_s']:.1f} s; cold scan {row['scan_s']:.2f} s;"
                f" candidates() median {row['lookup_median_us']:.1f} us (p95 {row['lookup_p95_us']:.1f});"
                f" RSS +{row['rss_delta_mb']:.0f} MB ({row['bytes_per_segment']} B/segment) | {row['lookups']} | | |"
            )
    lines += ["", *details(s)]
    return "\n".join(lines) + "\n"


def _profile_table(title: str, column: str, unit: str, rows: list[tuple[str, float]], fmt: str) -> list[str]:
    """A profile as a markdown table of inclusive milliseconds per unit of work."""
    out = [title, "", f"| {column} | inclusive ms per {unit} |", "| --- | --- |"]
    return out + [f"| `{name}` | {ms:{fmt}} |" for name, ms in rows]


def details(s: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if "clip_cost" in s:
        c = s["clip_cost"]
        out += ["### 1. Where the clip path's time goes (each step timed alone, interleaved)", ""]
        out += ["| step | median | p95 |", "| --- | --- | --- |"]
        for name, st in c["phases"].items():
            out.append(f"| {name} | {st['median_ms']:.1f} ms | {st['p95_ms']:.1f} ms |")
        prof = c.get("profile", {})
        if "inclusive" in prof:
            title = f"pyinstrument over {prof['runs']} warm `make_clip` calls ({prof['file']}):"
            out += [
                "",
                *_profile_table(
                    title, "function", "clip", [(r["function"], r["ms_per_clip"]) for r in prof["inclusive"]], ".1f"
                ),
            ]
        out.append("")
    if "e2e" in s:
        prof = s["e2e"].get("profile", {})
        if "inclusive" in prof:
            title = (
                f"### 2. py-spy on the service over {prof['incidents']} more incidents"
                f" ({prof['wall_ms_per_incident']:.0f} ms each with the profiler; {prof['file']})"
            )
            rows = [(r["function"], r["ms_per_unit"]) for r in prof["inclusive"]]
            out += [*_profile_table(title, "function (all threads, waits included)", "incident", rows, ".1f"), ""]
        if "store_costs" in s["e2e"]:
            out += ["SQLite commits of one job on this disk (WAL, synchronous=FULL):", ""]
            out += ["| store call | median | p95 |", "| --- | --- | --- |"]
            for name, st in s["e2e"]["store_costs"].items():
                out.append(f"| `{name}` | {st['median_ms']:.2f} ms | {st['p95_ms']:.2f} ms |")
            out.append("")
    if "live" in s:
        out += ["### 3. Live incidents", ""]
        out.append("| window end after publish | window end -> segment complete | segment complete -> reply | status |")
        out.append("| --- | --- | --- | --- |")
        for row in s["live"]["incidents"]:
            out.append(
                f"| {row['window_end_after_publish_s']:.2f} s | {row['window_end_to_last_segment_complete_s']:.2f} s"
                f" | {row['last_segment_complete_to_reply_ms']:.0f} ms | {row['status']} |"
            )
        out.append("")
    if "intake" in s:
        prof = s["intake"].get("profile", {})
        if "inclusive" in prof:
            title = (
                f"### 5. py-spy on the service over {prof['events']} more events"
                f" ({prof['events_per_s_with_profiler']:.0f}/s with the profiler; {prof['file']})"
            )
            rows = [(r["function"], r["ms_per_unit"]) for r in prof["inclusive"]]
            out += [*_profile_table(title, "function (all threads, waits included)", "event", rows, ".3f"), ""]
    return out


# -- main ---------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small N, for iterating on the benchmark itself")
    parser.add_argument("--sections", default="1,2,3,4,5,6", help="comma-separated subset of 1-6")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (footage, logs)")
    parser.add_argument("--index-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--lookups", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--ceiling-child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ceiling_child:
        ceiling_child(*args.ceiling_child)
        return 0
    if args.index_child:
        index_child(args.index_child, args.lookups)
        return 0
    began = time.monotonic()
    sections = {int(x) for x in args.sections.split(",") if x.strip()}
    sizes = QUICK if args.quick else FULL
    ffmpeg = resolve_ffmpeg("auto")
    stamp = datetime.now().strftime("%Y-%m-%d")
    name = stamp + ("-quick" if args.quick else "")  # results file names; a quick run never overwrites a full one
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "date": stamp,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "sizes": asdict(sizes),
        "command": " ".join([".venv/bin/python -m bench.run", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine(ffmpeg),
        "code": code_state(),
        "sections": {},
    }
    s = results["sections"]
    base = Path(tempfile.mkdtemp(prefix="clipbridge-bench-"))
    broker: Broker | None = None
    service: Service | None = None
    client: Client | None = None

    def note(name: str) -> None:
        print(f"[{time.monotonic() - began:6.1f} s] {name} (load {' '.join(map(str, loadavg()))})", flush=True)

    try:
        note("making footage")
        fx = make_footage(base, ffmpeg, sizes.burst_cameras)
        results["footage"] = {
            "description": f"{SEGMENTS} x 5 s segments of 1920x1080 H.264 (16 Mb/s, 1 s GOP, B-frames) + AAC,"
            f" {sum(p.stat().st_size for p in fx.segments) / SEGMENTS / 1e6:.1f} MB each",
            "generate_s": round(fx.generate_seconds, 2),
        }
        bare_ms: float
        if 1 in sections:
            note("1. clip cost")
            s["clip_cost"] = section_clip_cost(fx, base, sizes, name)
            bare_ms = s["clip_cost"]["bare_bundled"]["median_ms"]
        else:
            plain = base / "bare.txt"
            plain.write_text("".join(f"file '{p}'\n" for p in fx.segments[1:5]))  # 14:30:00 .. 14:30:15
            bare_ms = summary(interleave({"bare": bare_runner(ffmpeg, plain, base / "bare.mp4")}, 5)["bare"])[
                "median_ms"
            ]
        if sections & {2, 3, 4, 5}:
            note("starting mosquitto")
            broker = Broker(base / "broker", extra_config=dev_conf_settings())
            broker.start()
            results["broker_config"] = broker.conf.read_text().replace(str(base), "<tmp>").splitlines()
        if sections & {2, 3, 4}:
            note("starting clipbridge run")
            service = start_service(base, broker, fx, "main")  # type: ignore[arg-type]
            client = Client(broker.port, ["bench/r/#"])  # type: ignore[union-attr]
        if 2 in sections:
            note("2. end-to-end")
            s["e2e"] = section_e2e(service, client, sizes, bare_ms, name)  # type: ignore[arg-type]
            s["e2e"]["store_costs"] = store_costs(base)
        if 3 in sections:
            note("3. live")
            s["live"] = section_live(service, client, fx, base, sizes)  # type: ignore[arg-type]
        if 4 in sections:
            note("4. burst")
            nproc = results["machine"]["nproc"]
            s["burst"] = section_burst(service, client, fx, sizes, bare_ms, nproc)  # type: ignore[arg-type]
        if client is not None:
            client.close()
            client = None
        stop_service(service)
        service = None
        if 5 in sections:
            note("5. intake")
            s["intake"] = section_intake(base, broker, fx, sizes, name)  # type: ignore[arg-type]
        if 6 in sections:
            note("6. index scale")
            s["index"] = section_index(base, sizes, began + BUDGET_SECONDS)
    finally:
        if client is not None:
            client.close()
        stop_service(service)
        if broker is not None and broker.proc is not None:
            broker.stop()
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    results["loadavg_at_end"] = loadavg()
    results["wall_seconds"] = round(time.monotonic() - began, 1)
    results["targets"] = {
        "clip_cost_ratio": s["clip_cost"]["ratio_warm"] <= TARGET_CLIP_RATIO if "clip_cost" in s else None,
        "e2e_p50": s["e2e"]["met"] if "e2e" in s else None,
        "live_p95": s["live"]["met"] if "live" in s else None,
        "intake": s["intake"]["met"] if "intake" in s else None,
    }
    table = report(results)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(table)
    print()
    print(table)
    print(f"wrote {RESULTS.relative_to(REPO)}/{name}.json in {results['wall_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
