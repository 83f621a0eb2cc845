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
7. Scale-out on PostgreSQL (our own throwaway cluster): intake on PostgreSQL beside SQLite's, the burst with 1 vs 2
   instances on the same cores, takeover time after `kill -9` of the instance running a job.
8. Object storage (moto's S3 server): the clip storage's upload of the seed clip vs a bare boto3 upload_file of the
   same file, and publish -> reply with `storage.backend: s3`.
9. Timeline: the coverage answer over 1 and 7 days of 5 s segments.

Each figure is shown beside the first release's (bench/results/baseline-*.json) where that run measured it.

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
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.burst import section_burst
from bench.clip_cost import bare_runner, cat_runner, section_clip_cost
from bench.common import (
    FULL,
    QUICK,
    REPO,
    RESULTS,
    SEGMENTS,
    TARGET_CLIP_RATIO,
    Client,
    code_state,
    dev_conf_settings,
    interleave,
    loadavg,
    machine,
    make_footage,
    start_service,
    stop_service,
    summary,
)
from bench.e2e import section_e2e, store_costs
from bench.index_archive import section_archive
from bench.intake import ceiling_child, section_intake
from bench.live import section_live
from bench.report import report
from bench.scaleout import section_scaleout
from bench.storage import section_storage
from bench.timeline import section_timeline
from clipbridge.handlers.ffmpeg import resolve_ffmpeg
from tests.harness import Broker, Service

# -- main ---------------------------------------------------------------------------------------------------------


def baseline() -> dict[str, Any] | None:
    """The first release's full run (bench/results/baseline-*.json), reported beside today's figures."""
    found = sorted(RESULTS.glob("baseline-*.json"))
    return json.loads(found[-1].read_text()) if found else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small N, for iterating on the benchmark itself")
    parser.add_argument("--sections", default="1,2,3,4,5,6,7,8,9", help="comma-separated subset of 1-9")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (footage, logs)")
    parser.add_argument("--ceiling-child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ceiling_child:
        ceiling_child(*args.ceiling_child)
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
            cat_ms = s["clip_cost"]["cat"]["median_ms"]
        else:
            cat_ms = summary(interleave({"cat": cat_runner(fx.segments[1:5], base / "cat.bin")}, 5)["cat"])["median_ms"]
            plain = base / "bare.txt"
            plain.write_text("".join(f"file '{p}'\n" for p in fx.segments[1:5]))  # 14:30:00 .. 14:30:15
            bare_ms = summary(interleave({"bare": bare_runner(ffmpeg, plain, base / "bare.mp4")}, 5)["bare"])[
                "median_ms"
            ]
        if sections & {2, 3, 4, 5, 6, 7, 8}:
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
            s["e2e"] = section_e2e(service, client, sizes, bare_ms, name, cat_ms)  # type: ignore[arg-type]
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
        if 7 in sections:
            note("7. scale-out on PostgreSQL")
            s["scaleout"] = section_scaleout(base, broker, fx, sizes, name, bare_ms, results["machine"]["nproc"])  # type: ignore[arg-type]
        if 8 in sections:
            note("8. object storage")
            s["storage"] = section_storage(base, broker, fx, sizes)  # type: ignore[arg-type]
        if 9 in sections:
            note("9. timeline")
            s["timeline"] = section_timeline(base)
        if 6 in sections:
            note("6. index scale")
            s["index"] = section_archive(base, broker, fx, sizes)  # type: ignore[arg-type]
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
    table = report(results, baseline())
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(table)
    print()
    print(table)
    print(f"wrote {RESULTS.relative_to(REPO)}/{name}.json in {results['wall_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
