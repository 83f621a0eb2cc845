"""The `clipbridge` command: run the service, cut one clip locally, list the recordings index."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import signal
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from clipbridge.config import Config, load_config
from clipbridge.errors import ClipError
from clipbridge.handlers.clipper import Clipper
from clipbridge.handlers.ffmpeg import resolve_ffmpeg
from clipbridge.handlers.incident import IncidentIn, incident_window, resolve_camera
from clipbridge.handlers.index import RecordingsIndex
from clipbridge.handlers.planner import Footage, plan_clip
from clipbridge.handlers.replies import FileLinks, result_for
from clipbridge.handlers.timeline import by_name, usual_spacing
from clipbridge.logs import setup_logging
from clipbridge.model import Job, Window, iso


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clipbridge", description=__doc__)
    p.add_argument("--config", type=Path, help="config file (default: $CLIPBRIDGE_CONFIG, else built-in defaults)")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("run", help="run the MQTT bridge, the clip workers and the HTTP side-app")

    clip = sub.add_parser("clip", help="cut one clip locally (no broker) and print the result JSON")
    clip.add_argument("--camera", required=True)
    clip.add_argument("--timestamp", required=True, help="ISO-8601 (naive = recordings time zone) or epoch seconds")
    clip.add_argument("--pre", type=float, help="seconds before the incident (default clips.pre_seconds)")
    clip.add_argument("--post", type=float, help="seconds after the incident (default clips.post_seconds)")
    clip.add_argument("--duration", type=float, help="total seconds; the post part is --post or clips.post_seconds")

    listing = sub.add_parser("index", help="list cameras with segment count, first start, last end and gaps")
    listing.add_argument("--probe", action="store_true", help="read every segment: unreadable files, exact gaps")

    sim = sub.add_parser("simulate-camera", help="record a synthetic camera in real time into the recordings root")
    sim.add_argument("--camera", required=True)
    sim.add_argument("--segment-seconds", type=float, default=5.0)
    sim.add_argument("--layout", choices=["seed", "mediamtx"], help="naming (default: the first source's layout)")
    sim.add_argument("--size", default="640x360")

    pub = sub.add_parser("publish", help="publish one incident over MQTT v5 and wait for its reply")
    pub.add_argument("--camera", required=True)
    pub.add_argument("--timestamp", default="now", help="ISO-8601, epoch seconds or 'now' (default)")
    pub.add_argument("--pre", type=float)
    pub.add_argument("--post", type=float)
    pub.add_argument("--duration", type=float)
    pub.add_argument("--event-id")
    pub.add_argument("--topic", help="default: the first request topic with + replaced by the camera")
    pub.add_argument("--reply-topic", help="default: replies/cli/<random>")
    pub.add_argument("--timeout", type=float, default=120.0)

    sub.add_parser("demo", help="broker + simulated camera + service + one live incident (make demo)")

    make = sub.add_parser("make-footage", help="write synthetic recorder segments (test pattern) into the first source")
    make.add_argument("--camera", required=True)
    make.add_argument("--start", required=True, help="start of the first segment (ISO-8601; naive = source time zone)")
    make.add_argument("--seconds", type=float, default=60.0, help="total length (default 60)")
    make.add_argument("--segment-seconds", type=float, default=5.0, help="segment length (default 5)")
    make.add_argument("--size", default="640x360")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ClipError as exc:
        print(f"clipbridge: {exc.message}", file=sys.stderr)
        return 2
    setup_logging(config.logging)
    try:
        if args.command == "run":
            from clipbridge.service import run_service

            try:
                return run_service(config)
            except ClipError as exc:
                logging.getLogger("clipbridge").error("cannot start: %s", exc.message)
                return 2
        if args.command == "clip":
            return _clip(config, args)
        if args.command == "index":
            return _index(config, args.probe)
        if args.command == "make-footage":
            return _make_footage(config, args)
        if args.command == "simulate-camera":
            return _simulate(config, args)
        if args.command == "publish":
            return _publish(config, args)
        if args.command == "demo":
            from clipbridge.demo import run_demo

            return run_demo(config, args.config or Path("config.yaml"))
    except ClipError as exc:
        print(json.dumps({"status": "failed", "error": exc.as_dict()}, indent=2))
        return 1
    return 2


def _clip(config: Config, args: argparse.Namespace) -> int:
    """The same result shape as the MQTT reply; the links are file:// URLs of what was written."""
    event = IncidentIn(
        camera_id=args.camera,
        timestamp=args.timestamp,
        duration=args.duration,
        pre_seconds=args.pre,
        post_seconds=args.post,
    )
    camera_id = resolve_camera(event, None)
    index = RecordingsIndex(config=config.recordings)
    index.scan()
    window = incident_window(event, config.clips, index.timezone_of(camera_id))
    clipper = Clipper(
        index=index, clips=config.clips, recordings=config.recordings, ffmpeg=resolve_ffmpeg(config.clips.ffmpeg)
    )
    job = Job.adhoc(uuid.uuid4().hex[:16], camera_id, window)
    outcome = clipper.make_clip(job)
    done = dataclasses.replace(job, status=outcome.status, record=outcome.record, completed_at=datetime.now(UTC))
    print(result_for(done, list(outcome.files), FileLinks()).model_dump_json(indent=2))
    return 0


def _index(config: Config, probe: bool) -> int:
    """By name (one probe per camera, its newest segment); with --probe every segment is read, as a diagnostic."""
    index = RecordingsIndex(config=config.recordings)
    index.scan()
    tolerance = config.recordings.gap_tolerance_seconds
    cameras = []
    for camera_id in index.cameras():
        summary = index.summary(camera_id)
        assert summary is not None  # listed cameras have segments
        row: dict[str, object] = {"camera_id": camera_id, "segments": summary.segments,
                                  "first_start": iso(summary.first_start)}  # fmt: skip
        if probe:
            row |= _probed(index, camera_id, tolerance)
        else:
            try:
                last_end: datetime | None = summary.newest.start + timedelta(
                    seconds=index.probe(summary.newest).duration
                )
            except ClipError:
                last_end = None
            starts = index.starts(camera_id)
            until = last_end or starts[-1] + timedelta(seconds=usual_spacing(starts))
            _, gaps = by_name(starts, start=starts[0], end=until, tolerance=tolerance)
            row |= {"last_end": iso(last_end) if last_end else None,
                    "gaps": [{"start": iso(g.start), "end": iso(g.end), "reason": g.reason} for g in gaps]}  # fmt: skip
        cameras.append(row)
    print(json.dumps({"generated_at": iso(datetime.now(UTC)), "cameras": cameras}, indent=2))
    return 0


def _probed(index: RecordingsIndex, camera_id: str, tolerance: float) -> dict[str, object]:
    footage = []
    for seg in index.segments(camera_id):
        try:
            footage.append(Footage(seg.path, seg.start, index.probe(seg)))
        except ClipError:
            footage.append(Footage(seg.path, seg.start, None))
    readable = [f for f in footage if f.info is not None]
    gaps = []
    if readable:
        whole = Window(readable[0].start, readable[0].start, readable[-1].end)
        plan = plan_clip(whole, footage, trim="segments", gap_tolerance=tolerance)
        gaps = [{"start": iso(g.start), "end": iso(g.end), "reason": g.reason} for g in plan.gaps]
    return {
        "last_end": iso(readable[-1].end) if readable else None,
        "unreadable": [f.path.name for f in footage if f.info is None],
        "gaps": gaps,
    }


def _make_footage(config: Config, args: argparse.Namespace) -> int:
    from clipbridge.handlers.incident import parse_timestamp
    from clipbridge.handlers.layout import Layout, is_safe_camera_id
    from clipbridge.synth import record_segments

    if not is_safe_camera_id(args.camera):
        raise ClipError("unsafe_camera_id", f"camera id {args.camera!r} must match [A-Za-z0-9_.-]{{1,64}}")
    source = config.recordings.sources[0]
    count = max(1, round(args.seconds / args.segment_seconds))
    paths = record_segments(
        resolve_ffmpeg(config.clips.ffmpeg),
        root=source.root,
        layout=Layout.create(source.layout, source.timezone),
        camera_id=args.camera,
        start=parse_timestamp(args.start, ZoneInfo(source.timezone)),
        cut_points=[args.segment_seconds * (i + 1) for i in range(count)],
        size=args.size,
    )
    for path in paths:
        print(path)
    return 0


def _simulate(config: Config, args: argparse.Namespace) -> int:
    from clipbridge.handlers.layout import Layout, is_safe_camera_id
    from clipbridge.simulator import LAYOUTS, simulate_camera

    if not is_safe_camera_id(args.camera):
        raise ClipError("unsafe_camera_id", f"camera id {args.camera!r} must match [A-Za-z0-9_.-]{{1,64}}")
    source = config.recordings.sources[0]
    pattern = LAYOUTS[args.layout] if args.layout else source.layout
    if pattern != source.layout:
        print(f"note: naming {pattern!r} differs from the configured layout {source.layout!r}", file=sys.stderr)
    print(f"recording {args.camera} into {source.root} as {pattern!r}, {args.segment_seconds:g} s segments; Ctrl-C stops",
          flush=True)  # fmt: skip

    def closed(path: Path, seconds: float) -> None:
        print(f"closed {path.relative_to(source.root)} ({seconds:.2f} s)", flush=True)

    # SIGTERM (from `make demo` or a service manager) must run the cleanup that stops FFmpeg, like Ctrl-C does;
    # a second signal must not interrupt that cleanup.
    signal.signal(signal.SIGTERM, _stop_once)
    signal.signal(signal.SIGINT, _stop_once)
    with contextlib.suppress(KeyboardInterrupt):
        simulate_camera(
            ffmpeg=resolve_ffmpeg(config.clips.ffmpeg), root=source.root,
            layout=Layout.create(pattern, source.timezone), camera_id=args.camera,
            segment_seconds=args.segment_seconds, size=args.size, on_segment=closed,
        )  # fmt: skip
    return 0


def _stop_once(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _publish(config: Config, args: argparse.Namespace) -> int:
    from clipbridge.publisher import publish_and_wait

    timestamp = datetime.now(UTC).replace(microsecond=0).isoformat() if args.timestamp == "now" else args.timestamp
    event = {"camera_id": args.camera, "timestamp": timestamp}
    for key, value in (("pre_seconds", args.pre), ("post_seconds", args.post), ("duration", args.duration),
                       ("event_id", args.event_id)):  # fmt: skip
        if value is not None:
            event[key] = value
    topics = config.mqtt.native_topics
    if not args.topic and not topics:
        raise ClipError("config_error", "no request topic takes clipbridge's own format: give --topic")
    topic = args.topic or next((t for t in topics if "+" in t), topics[0]).replace("+", args.camera, 1)
    reply_topic = args.reply_topic or f"replies/cli/{uuid.uuid4().hex[:12]}"
    print(f"publishing on {topic}: {json.dumps(event)}; waiting for the reply on {reply_topic}", file=sys.stderr)

    def progress(elapsed: float) -> None:
        print(f"waiting for the clip ... {elapsed:.0f} s", file=sys.stderr, flush=True)

    reply = publish_and_wait(
        config.mqtt, topic=topic, event=event, reply_topic=reply_topic, timeout=args.timeout, progress=progress
    )
    print(json.dumps(reply, indent=2))
    return 0 if reply.get("status") in ("done", "partial") else 1


if __name__ == "__main__":
    sys.exit(main())
