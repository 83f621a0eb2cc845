"""`clipbridge clip` and `clipbridge index` as a user runs them: a subprocess with a config file."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import yaml


def run_cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "clipbridge", *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


def write_config(tmp_path: Path, footage) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "recordings": {"sources": footage.sources()},
                "clips": {"output_dir": "./videos", "annotations_dir": "./annotations"},
            }
        )
    )
    return path


def test_clip_command_on_the_seed_example(tmp_path, footage):
    config = write_config(tmp_path, footage)
    proc = run_cli(
        "--config",
        str(config),
        "clip",
        "--camera",
        "camera1",
        "--timestamp",
        "2025-08-29T14:30:15",
        "--duration",
        "20",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "done"
    assert (result["actual_start"], result["requested_end"]) == ("2025-08-29T14:30:00.000Z", "2025-08-29T14:30:20.000Z")
    # The MQTT reply's shape; its links are the files written (file:// URLs).
    video = Path(urlparse(result["download_url"]).path)
    assert video.parent == tmp_path / "videos" and video.is_file()
    notes = [Path(urlparse(url).path) for url in result["annotations"].values()]
    assert sorted(p.suffix for p in notes) == [".json", ".txt", ".yaml"]
    assert all(p.parent == tmp_path / "annotations" for p in notes)


def test_clip_command_errors_are_json_with_a_code(tmp_path, footage):
    config = write_config(tmp_path, footage)
    proc = run_cli(
        "--config", str(config), "clip", "--camera", "../etc", "--timestamp", "2025-08-29T14:30:15", cwd=tmp_path
    )
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["error"]["code"] == "unsafe_camera_id"


def test_bad_config_is_reported_on_stderr(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("clips:\n  nonsense: 1\n")
    proc = run_cli("--config", str(bad), "index", cwd=tmp_path)
    assert proc.returncode == 2
    assert "unknown key 'clips.nonsense'" in proc.stderr


def test_index_command_lists_cameras_with_gaps(tmp_path, footage):
    proc = run_cli("--config", str(write_config(tmp_path, footage)), "index", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cameras = {c["camera_id"]: c for c in json.loads(proc.stdout)["cameras"]}
    assert cameras["camera1"]["segments"] == 10
    assert cameras["camera1"]["first_start"] == "2025-08-29T14:29:50.000Z"
    assert cameras["camera1"]["last_end"] == "2025-08-29T14:30:40.000Z"
    assert cameras["camera1"]["gaps"] == []
    assert cameras["camgap"]["gaps"] == [
        {"start": "2025-08-29T14:30:05.000Z", "end": "2025-08-29T14:30:10.000Z", "reason": "missing"}
    ]
    assert cameras["cam3"]["first_start"] == "2025-08-29T14:29:50.960Z"
    assert "unreadable" not in cameras["camcorrupt"]  # found by name: no segment but the newest is read


def test_index_command_with_probe_reads_every_segment(tmp_path, footage):
    proc = run_cli("--config", str(write_config(tmp_path, footage)), "index", "--probe", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cameras = {c["camera_id"]: c for c in json.loads(proc.stdout)["cameras"]}
    assert cameras["camcorrupt"]["unreadable"] == ["camcorrupt_20250829_143005.mp4"]
    assert cameras["camcorrupt"]["gaps"] == [
        {"start": "2025-08-29T14:30:05.000Z", "end": "2025-08-29T14:30:10.000Z", "reason": "unreadable"}
    ]
    assert cameras["camera1"]["last_end"] == "2025-08-29T14:30:40.000Z"


def test_run_refuses_to_start_when_its_http_port_is_taken(tmp_path, footage):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config = write_config(tmp_path, footage)
        proc = subprocess.run(
            [sys.executable, "-m", "clipbridge", "--config", str(config), "run"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            check=False,
            env={**os.environ, "CLIPBRIDGE__HTTP__PORT": str(port), "CLIPBRIDGE__MQTT__ENABLED": "false"},
        )
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr


def test_clip_command_prints_the_same_result_shape_as_the_mqtt_reply(tmp_path, footage, start_service, broker, prefix):
    from tests.harness import TestClient

    service = start_service()
    client = TestClient(broker.port, subscribe=[f"{prefix}/r/#"])
    event = {"camera_id": "camera1", "timestamp": "2025-08-29T14:30:15", "duration": 20}
    client.publish(f"{prefix}/clips/requests", event, response_topic=f"{prefix}/r/1")
    reply = client.expect_json(timeout=60)
    client.close()
    service.stop()
    proc = run_cli("--config", str(write_config(tmp_path, footage)), "clip", "--camera", "camera1", "--timestamp",
                   "2025-08-29T14:30:15", "--duration", "20", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert set(printed) == set(reply)
    same = ("status", "camera_id", "timestamp", "requested_start", "requested_end", "actual_start", "actual_end",
            "start_time", "end_time", "duration_seconds", "file_size", "source_segments", "gaps", "trim", "codecs")  # fmt: skip
    assert {k: printed[k] for k in same} == {k: reply[k] for k in same}
    assert printed["download_url"].startswith("file://") and reply["download_url"].startswith("http://")
