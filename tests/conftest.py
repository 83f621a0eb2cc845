"""Shared fixtures: real footage made once per session with the bundled FFmpeg, and configs pointing at it."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from clipbridge.config import Config, load_config
from clipbridge.handlers.ffmpeg import resolve_ffmpeg
from clipbridge.handlers.layout import Layout
from clipbridge.synth import record_segments
from tests.harness import Broker, Service, broker_for_tests, free_port

pytest_plugins = ["tests.pgcluster"]  # pg_cluster, pg_url, pg_private

SEED_LAYOUT = "{camera_id}/{camera_id}_%Y%m%d_%H%M%S"
MEDIAMTX_LAYOUT = "{camera_id}/%Y-%m-%d_%H-%M-%S-%f"
T0 = datetime(2025, 8, 29, 14, 29, 50, tzinfo=UTC)  # footage of most cameras starts here
SEED_INCIDENT = datetime(2025, 8, 29, 14, 30, 15, tzinfo=UTC)
OLD = (T0 - timedelta(days=1)).timestamp()  # mtime that makes every segment "settled"


@dataclass(frozen=True)
class Footage:
    ffmpeg: str
    seed_root: Path  # seed naming
    mediamtx_root: Path  # MediaMTX naming, names in Europe/Berlin local time with microseconds
    files: dict[str, list[Path]]

    def sources(self) -> list[dict[str, str]]:
        return [
            {"root": str(self.seed_root), "layout": SEED_LAYOUT, "timezone": "UTC"},
            {"root": str(self.mediamtx_root), "layout": MEDIAMTX_LAYOUT, "timezone": "Europe/Berlin"},
        ]


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    return resolve_ffmpeg("auto")


def _settle(paths: list[Path]) -> None:
    for p in paths:
        os.utime(p, (OLD, OLD))


@pytest.fixture(scope="session")
def footage(tmp_path_factory: pytest.TempPathFactory, ffmpeg: str) -> Footage:
    base = tmp_path_factory.mktemp("footage")
    seed_root, mtx_root = base / "seed", base / "mediamtx"
    seed = Layout.create(SEED_LAYOUT)
    mtx = Layout.create(MEDIAMTX_LAYOUT, "Europe/Berlin")
    five = [5.0 * i for i in range(1, 11)]  # 10 segments of 5 s: 14:29:50 .. 14:30:40
    files: dict[str, list[Path]] = {}

    # camera1: the seed's layout, 1 s GOP with B-frames (exercises reordering at the cut points).
    files["camera1"] = record_segments(
        ffmpeg, root=seed_root, layout=seed, camera_id="camera1", start=T0, cut_points=five
    )
    # gop2: a recorder cutting at keyframes after a 5 s target with a 2 s GOP gives 6 s and 4 s files.
    files["gop2"] = record_segments(
        ffmpeg,
        root=seed_root,
        layout=seed,
        camera_id="gop2",
        start=T0,
        cut_points=[6, 10, 16, 20, 26, 30, 36, 40],
        gop_seconds=2.0,
    )
    # camgap: 14:30:05 is missing.
    files["camgap"] = record_segments(
        ffmpeg, root=seed_root, layout=seed, camera_id="camgap", start=T0, cut_points=five
    )
    files["camgap"][3].unlink()
    # camcorrupt: 14:30:05 is truncated to its first 3 kB (no moov box).
    files["camcorrupt"] = record_segments(
        ffmpeg, root=seed_root, layout=seed, camera_id="camcorrupt", start=T0, cut_points=five
    )
    victim = files["camcorrupt"][3]
    victim.write_bytes(victim.read_bytes()[:3000])
    # camzero: one zero-byte segment, as a recorder that crashed at open leaves behind.
    files["camzero"] = record_segments(
        ffmpeg, root=seed_root, layout=seed, camera_id="camzero", start=T0, cut_points=five
    )
    files["camzero"][3].write_bytes(b"")
    # camhevc: HEVC must come out tagged hvc1.
    files["camhevc"] = record_segments(
        ffmpeg,
        root=seed_root,
        layout=seed,
        camera_id="camhevc",
        start=T0,
        cut_points=[5, 10, 15, 20, 25, 30],
        video_codec="libx265",
    )
    # camalaw: G.711 A-law audio (common on IP cameras) in Matroska; MP4 cannot carry it.
    files["camalaw"] = record_segments(
        ffmpeg,
        root=seed_root,
        layout=seed,
        camera_id="camalaw",
        start=T0,
        cut_points=five,
        ext=".mkv",
        audio_codec="pcm_alaw",
    )
    # camres: the resolution changes at 14:30:20 (the camera was reconfigured).
    files["camres"] = record_segments(
        ffmpeg, root=seed_root, layout=seed, camera_id="camres", start=T0, cut_points=five[:6]
    )
    files["camres"] += record_segments(
        ffmpeg,
        root=seed_root,
        layout=seed,
        camera_id="camres",
        start=T0 + timedelta(seconds=30),
        cut_points=[5.0, 10.0],
        size="352x288",
    )
    # cam3: MediaMTX naming, local Berlin time (UTC+2 in August), names 960 ms past the second.
    files["cam3"] = record_segments(
        ffmpeg, root=mtx_root, layout=mtx, camera_id="cam3", start=T0 + timedelta(milliseconds=960), cut_points=five
    )
    # camts: MPEG-TS segments (timestamps do not start at zero).
    files["camts"] = record_segments(
        ffmpeg, root=seed_root, layout=seed, camera_id="camts", start=T0, cut_points=five, ext=".ts"
    )
    for paths in files.values():
        _settle([p for p in paths if p.exists()])
    return Footage(ffmpeg, seed_root, mtx_root, files)


def config_env(base: Path, sources: list[dict[str, str]], **overrides: Any) -> dict[str, str]:
    """Environment overrides for a config whose outputs live under `base`."""
    env = {
        "CLIPBRIDGE__RECORDINGS__SOURCES": json.dumps(sources),
        "CLIPBRIDGE__CLIPS__OUTPUT_DIR": str(base / "videos"),
        "CLIPBRIDGE__CLIPS__ANNOTATIONS_DIR": str(base / "annotations"),
        "CLIPBRIDGE__STORE__PATH": str(base / "data" / "clipbridge.db"),
    }
    for key, value in overrides.items():
        env["CLIPBRIDGE__" + key.upper()] = value if isinstance(value, str) else json.dumps(value)
    return env


@pytest.fixture
def make_config(tmp_path: Path, footage: Footage) -> Callable[..., Config]:
    """make_config(clips__trim="segments") -> a Config over the session footage, outputs in tmp_path."""

    def make(sources: list[dict[str, str]] | None = None, **overrides: Any) -> Config:
        return load_config(None, env=config_env(tmp_path, sources or footage.sources(), **overrides))

    return make


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    yield from broker_for_tests(tmp_path)


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def live_root(tmp_path: Path, ffmpeg: str) -> Path:
    """Recordings of camera `live1`, written during the test. One old segment makes the camera known."""
    root = tmp_path / "live"
    record_segments(
        ffmpeg,
        root=root,
        layout=Layout.create(SEED_LAYOUT),
        camera_id="live1",
        start=datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1),
        cut_points=[2.0],
    )
    return root


@pytest.fixture
def start_service(
    tmp_path: Path, broker: Broker, footage, live_root: Path, prefix: str
) -> Iterator[Callable[..., Service]]:
    services: list[Service] = []

    def start(*, env_extra: dict[str, str] | None = None, wait_mqtt: bool = True, wait_index: bool = True,
              **overrides: object) -> Service:  # fmt: skip
        sources = overrides.pop("recordings__sources", None) or [
            *footage.sources(),
            {"root": str(live_root), "layout": SEED_LAYOUT, "timezone": "UTC"},
        ]
        http_port = free_port()
        settings: dict[str, object] = {
            "mqtt__port": broker.port,
            "mqtt__client_id": f"clipbridge-{prefix}",
            "mqtt__request_topics": [f"{prefix}/cameras/+/incidents", f"{prefix}/clips/requests"],
            "mqtt__result_topic": f"{prefix}/results/{{camera_id}}",
            "mqtt__error_topic": f"{prefix}/errors",
            "mqtt__reconnect_max_seconds": 2,
            "http__port": http_port,
            "http__public_base_url": f"http://127.0.0.1:{http_port}",
            **overrides,
        }
        env = {**config_env(tmp_path, sources, **settings), **(env_extra or {})}
        service = Service(env, tmp_path)
        services.append(service)
        service.start(wait_mqtt=wait_mqtt, wait_index=wait_index)
        return service

    yield start
    for s in services:
        s.kill9()
        s.dump_log()


def launch(workdir: Path, footage, **overrides: object) -> Service:
    port = free_port()
    settings: dict[str, object] = {
        "mqtt__enabled": False,
        "http__port": port,
        "http__public_base_url": f"http://127.0.0.1:{port}",
        **overrides,
    }
    service = Service(config_env(workdir, footage.sources(), **settings), workdir)
    service.start(wait_mqtt=False)
    return service


@pytest.fixture
def own_service(tmp_path: Path, footage) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def start(**overrides: object) -> Service:
        s = launch(tmp_path, footage, **overrides)
        started.append(s)
        return s

    yield start
    for s in started:
        s.kill9()
        s.dump_log()


@pytest.fixture
def cluster(tmp_path: Path, broker: Broker, pg_url: str, prefix: str) -> Iterator[Any]:
    """Scale-out: `clipbridge run` instances on one PostgreSQL database and our broker (tests/scaleout.py)."""
    from tests.scaleout import Cluster  # it builds on this module's config_env

    c = Cluster(tmp_path, broker, pg_url, prefix, [])
    yield c
    for s in c.started:
        s.kill9()
        s.dump_log()
