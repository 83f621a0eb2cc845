"""Shared by the benchmark sections: sizes and targets, statistics, machine facts, the footage, the service and
broker processes, the MQTT client that stamps arrivals, py-spy."""

from __future__ import annotations

import json
import math
import os
import platform
import queue
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from clipbridge.handlers.layout import Layout
from clipbridge.model import Window
from clipbridge.synth import record_segments
from tests.conftest import SEED_LAYOUT, config_env
from tests.harness import MOSQUITTO, Broker, LogWatcher, Service, TestClient, correlation_of, free_port

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

TARGET_CLIP_RATIO = 0.30  # the clip path (box level) against the bare FFmpeg run (#12)
TARGET_CLIP_CAT_RATIO = 1.50  # ... and against `cat` of the same bytes
TARGET_E2E_MARGIN_MS = 30.0  # the first round's: p50 <= bare FFmpeg + 30 ms
TARGET_E2E_CAT_MARGIN_MS = 15.0  # #12's, with the box path: p50 <= `cat` of the window's bytes + 15 ms
TARGET_BURST_VS_IDEAL = 1.2  # #12's: the 200-incident burst within 1.2x (200 bare FFmpeg runs / cores)
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
    lookups: int
    takeovers: int = 5
    archive: int = 1_000_000  # section 6 (#11): files per tree
    in_memory: int = 10_000_000  # ... segments built in memory
    steady_seconds: float = 60.0  # ... the steady state's CPU window


FULL = Sizes(20, 100, 30, 20, 12, 20, 10, 5000, 2000, 1000)
QUICK = Sizes(5, 10, 5, 5, 4, 4, 3, 500, 300, 200, takeovers=2, archive=20_000,
              in_memory=200_000, steady_seconds=10.0)  # fmt: skip


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
    if "store__url" in overrides:
        del env["CLIPBRIDGE__STORE__PATH"]  # one of url and path
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
