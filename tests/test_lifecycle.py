"""Shutdown of the real `clipbridge run`: draining refuses new work, a second signal forces the exit, an open
download does not hold the process past uvicorn's graceful timeout."""

from __future__ import annotations

import os
import signal
import socket
import stat
from datetime import timedelta
from pathlib import Path

import httpx

from clipbridge.handlers.layout import Layout
from clipbridge.model import iso
from clipbridge.synth import record_segments
from tests.conftest import SEED_LAYOUT, T0
from tests.harness import poll
from tests.test_http import SEED_BODY, submit, wait_done


def hanging_ffmpeg(tmp_path: Path) -> tuple[Path, Path]:
    """Fault seam: clips.ffmpeg is a script that records its pid and hangs, as FFmpeg on a stalled mount does."""
    pidfile = tmp_path / "ffmpeg.pid"
    script = tmp_path / "hanging-ffmpeg"
    script.write_text(f'#!/bin/sh\necho $$ > "{pidfile}"\nexec sleep 300\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, pidfile


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def test_draining_refuses_new_clips_with_503_and_a_second_signal_forces_the_exit(own_service, tmp_path):
    script, pidfile = hanging_ffmpeg(tmp_path)
    service = own_service(clips__cutter="ffmpeg", clips__ffmpeg=str(script), clips__ffmpeg_timeout_seconds=600)
    assert service.proc is not None and service.log is not None
    with httpx.Client(base_url=service.base_url, timeout=30) as http:
        clip_id = submit(http, SEED_BODY)["clip_id"]
        ffmpeg_pid = int(poll(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=30))

        service.proc.send_signal(signal.SIGTERM)  # graceful: the running clip gets its grace period
        service.log.wait_for("shutting down", timeout=30)
        service.log.wait_for("clips get", timeout=30)
        refused = poll(lambda: (r := http.post("/clips", json={**SEED_BODY, "event_id": "late"})).status_code == 503 and r,
                       timeout=30)  # fmt: skip
        assert refused.json()["error"]["code"] == "shutting_down"
        assert http.get(f"/clips/{clip_id}").json()["status"] == "processing", "reads still answer while draining"

        service.proc.send_signal(signal.SIGTERM)  # the second signal: leave now
        assert service.proc.wait(timeout=30) == 1
    service.log.join()
    assert any("forcing exit" in line for line in service.log.lines)
    poll(lambda: not alive(ffmpeg_pid), timeout=30)  # the FFmpeg it ran was killed, not orphaned


def test_an_open_download_does_not_hold_the_shutdown(own_service, tmp_path, ffmpeg):
    # 12 MB of footage: more than the kernel's socket buffers (4 MB) can absorb, so the send really stalls.
    root = tmp_path / "big"
    record_segments(ffmpeg, root=root, layout=Layout.create(SEED_LAYOUT), camera_id="big", start=T0,
                    cut_points=[4.0, 8.0], size="1280x720", bitrate="30M")  # fmt: skip
    service = own_service(recordings__sources=[{"root": str(root), "layout": SEED_LAYOUT}])
    assert service.proc is not None
    with httpx.Client(base_url=service.base_url, timeout=30) as http:
        body = {"camera_id": "big", "timestamp": iso(T0 + timedelta(seconds=4)), "pre_seconds": 4, "post_seconds": 4}
        clip = wait_done(http, submit(http, body)["clip_id"])
    assert clip["file_size"] > 8_000_000, clip
    # A client that asks for the clip and then reads nothing: the server's send stalls on full socket buffers.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", service.http_port))
    path = clip["download_url"].split(str(service.http_port), 1)[1]
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert sock.recv(12).startswith(b"HTTP/1.1 200")
    try:
        service.proc.send_signal(signal.SIGTERM)
        assert service.proc.wait(timeout=60) == 0, "the service must exit after its graceful HTTP timeout"
    finally:
        sock.close()
    assert service.log is not None
    service.log.join()
    assert any("clipbridge stopped" in line for line in service.log.lines)
