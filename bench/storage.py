"""Section 8, object storage (#16): the upload of a seed clip by the clip storage (upload + verification) against a
bare boto3 `upload_file` of the same file to the same server, and publish -> reply with `storage.backend: s3`.

The server is moto's standalone S3 server on 127.0.0.1 (tests/s3server.py): the same one the tests use. It holds
objects in memory in one Python process, so absolute upload times say more about moto than about S3; the ratio is
what this measures (what clipbridge adds to one upload: the HEAD and the local MD5 of the verification).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.common import (
    CAMERA,
    INCIDENT,
    RUN,
    SEED_EVENT,
    Client,
    Footage,
    Sizes,
    interleave,
    start_service,
    stop_service,
    summary,
)
from bench.e2e import e2e_run, one_incident
from clipbridge.config import S3Config
from clipbridge.handlers.storage.s3 import S3Storage
from clipbridge.model import Job, StoredFile, Window
from tests.harness import Broker
from tests.s3server import s3_server


def section_storage(base: Path, broker: Broker, fx: Footage, sizes: Sizes) -> dict[str, Any]:
    out: dict[str, Any] = {"server": "moto (standalone, HTTP on 127.0.0.1)"}
    with s3_server(base) as s3:
        service = start_service(base, broker, fx, "s3", **s3.settings(keep_local_copy=True))
        client = Client(broker.port, ["bench/r/#"])
        try:
            one_incident(client, service.workdir / "videos", "s3-warm")  # first connection, first upload
            out["e2e"] = e2e_run(service, client, sizes.e2e, "s3")
            clip = _one_clip(service.workdir / "videos", client)
        finally:
            client.close()
            stop_service(service)
        out["clip_bytes"] = clip.stat().st_size
        storage = S3Storage(S3Config(bucket=s3.bucket, endpoint_url=s3.url, region="us-east-1",
                                     access_key_id=s3.access_key, secret_access_key=s3.secret_key,
                                     keep_local_copy=True))  # fmt: skip
        bare = s3.client()
        window = Window(INCIDENT, INCIDENT, INCIDENT)
        video = StoredFile(clip.name, "bench", "video", clip, clip.stat().st_size)

        def ours() -> float:
            started = time.perf_counter()
            storage.keep(Job.adhoc("bench", CAMERA, window), [video])
            return time.perf_counter() - started

        def plain() -> float:
            started = time.perf_counter()
            bare.upload_file(str(clip), s3.bucket, f"bare/{clip.name}")
            return time.perf_counter() - started

        runs = interleave({"clipbridge": ours, "bare": plain}, max(5, sizes.e2e))
        out["upload"] = {name: summary(times) for name, times in runs.items()}
        out["upload_ratio"] = round(out["upload"]["clipbridge"]["median_ms"] / out["upload"]["bare"]["median_ms"], 2)
    return out


def _one_clip(videos: Path, client: Client) -> Path:
    """A seed-window clip kept on disk (keep_local_copy) to upload again."""
    before = set(videos.glob("*.mp4"))
    corr = b"s3-keep"
    client.publish(f"cameras/{CAMERA}/incidents", {**SEED_EVENT, "event_id": f"{RUN}-s3-keep"},
                   response_topic="bench/r/s3", corr=corr)  # fmt: skip
    reply = client.wait({corr}, timeout=120)[corr].payload
    found = videos / reply["video_file"]
    assert found.exists() and found not in before, reply
    return found
