"""Proposed changes, simulated by monkeypatching, so the benchmark can measure them without editing clipbridge.

Used in-process by bench/run.py (section 1) and inside a `clipbridge run` process through bench/site/sitecustomize.py
(PYTHONPATH=bench/site:<repo>, CLIPBRIDGE_BENCH_PATCHES=nodelay,clip,readiness). Each function is the behaviour the
report proposes for one file; none of this is meant to ship as is.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any


def nodelay() -> None:
    """clipbridge/bridge/client.py: TCP_NODELAY on the MQTT socket (paho never sets it). paho opens its connection
    with socket.create_connection; the only outgoing TCP connection of the service is MQTT."""
    create = socket.create_connection

    def create_connection(*args: Any, **kwargs: Any) -> socket.socket:
        sock = create(*args, **kwargs)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    socket.create_connection = create_connection  # type: ignore[assignment]


def readiness() -> None:
    """clipbridge/handlers/jobs.py JobRunner.readiness: when no later segment exists, probe the newest one at once
    (not only after recordings.settle_seconds); if its frames already reach the window end, the job is ready. A
    non-fragmented MP4 still being written has no moov box, so the probe fails until the file is closed."""
    from clipbridge.errors import ClipError
    from clipbridge.handlers import jobs

    original = jobs.JobRunner.readiness

    def probe_first(self: Any, camera_id: str, window_end: datetime, now: datetime) -> Any:
        index = self._index
        if index.has_camera(camera_id) and index.first_at_or_after(camera_id, window_end) is None:
            before = index.candidates(camera_id, window_end, window_end)
            if before:
                newest = before[-1]
                try:
                    info = index.probe(newest)
                except ClipError:
                    info = None
                if info is not None and newest.start + timedelta(seconds=info.duration) >= window_end:
                    return jobs.Readiness(True)
        return original(self, camera_id, window_end, now)

    jobs.JobRunner.readiness = probe_first  # type: ignore[method-assign]


@contextlib.contextmanager
def clip_render() -> Iterator[None]:
    """clipbridge/handlers/clipper.py Clipper._render: no `-movflags +faststart` (a second pass over the whole
    output), and the clip's duration taken from the plan (stream copy keeps every packet's timestamps) instead of
    probe_file's demux of every video packet of the output; the output is only checked to be non-empty."""
    from clipbridge.errors import ClipError
    from clipbridge.handlers import clipper as module

    saved: dict[str, Callable[..., Any]] = {
        "clip_argv": module.clip_argv,
        "probe_file": module.probe_file,
        "plan_clip": module.plan_clip,
    }
    last: dict[str, Any] = {}

    def clip_argv(*args: Any, **kwargs: Any) -> list[str]:
        out = saved["clip_argv"](*args, **kwargs)
        i = out.index("-movflags")
        return out[:i] + out[i + 2 :]

    def plan_clip(*args: Any, **kwargs: Any) -> Any:
        last["plan"] = saved["plan_clip"](*args, **kwargs)
        return last["plan"]

    def probe_file(path: Path, *, max_duration: float) -> Any:
        if path.stat().st_size == 0:
            raise ClipError("segment_unreadable", f"{path.name}: empty")
        seconds = 0.0
        for item in last["plan"].items:
            info = item.footage.info
            end = item.outpoint if item.outpoint is not None else info.end
            seconds += end - (item.inpoint if item.inpoint is not None else info.start)
        return type("Planned", (), {"duration": seconds})()

    for name, fn in (("clip_argv", clip_argv), ("probe_file", probe_file), ("plan_clip", plan_clip)):
        setattr(module, name, fn)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(module, name, fn)


_KEPT: list[contextlib.AbstractContextManager[None]] = []  # entered for the life of the process


def apply(names: str) -> None:
    """Apply the named patches for the life of the process (comma-separated: nodelay, readiness, clip)."""
    for name in filter(None, (n.strip() for n in names.split(","))):
        if name == "nodelay":
            nodelay()
        elif name == "readiness":
            readiness()
        elif name == "clip":
            manager = clip_render()
            manager.__enter__()
            _KEPT.append(manager)  # a dropped generator context would run its `finally` and undo the patch
        else:
            raise ValueError(f"unknown benchmark patch {name!r}")
