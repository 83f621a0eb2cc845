"""The `clipbridge` command: run the service, cut one clip locally, list the recordings index."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from clipbridge.config import Config, load_config
from clipbridge.errors import ClipError
from clipbridge.handlers.clipper import Clipper, ClipRequest, iso
from clipbridge.handlers.ffmpeg import resolve_ffmpeg
from clipbridge.handlers.incident import IncidentIn, incident_window, resolve_camera
from clipbridge.handlers.index import RecordingsIndex
from clipbridge.handlers.planner import Footage, Window, plan_clip
from clipbridge.logs import setup_logging


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

    sub.add_parser("index", help="list cameras with segment count, first start, last end and gaps")

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
            return _index(config)
        if args.command == "make-footage":
            return _make_footage(config, args)
    except ClipError as exc:
        print(json.dumps({"status": "failed", "error": exc.as_dict()}, indent=2))
        return 1
    return 2


def _recordings_tz(config: Config) -> ZoneInfo:
    return ZoneInfo(config.recordings.sources[0].timezone)


def _clip(config: Config, args: argparse.Namespace) -> int:
    event = IncidentIn(
        camera_id=args.camera,
        timestamp=args.timestamp,
        duration=args.duration,
        pre_seconds=args.pre,
        post_seconds=args.post,
    )
    camera_id = resolve_camera(event, None)
    window = incident_window(event, config.clips, _recordings_tz(config))
    index = RecordingsIndex(config=config.recordings)
    index.scan()
    clipper = Clipper(
        index=index, clips=config.clips, recordings=config.recordings, ffmpeg=resolve_ffmpeg(config.clips.ffmpeg)
    )
    outcome = clipper.make_clip(ClipRequest(clip_id=uuid.uuid4().hex[:16], camera_id=camera_id, window=window))
    result = dict(outcome.record)
    result["video_path"] = str(outcome.video_path)
    result["annotation_paths"] = {k: str(v) for k, v in outcome.annotation_paths.items()}
    print(json.dumps(result, indent=2))
    return 0


def _index(config: Config) -> int:
    """Probes every segment, so it reads all the footage: a diagnostic, not something the service does."""
    index = RecordingsIndex(config=config.recordings)
    index.scan()
    cameras = []
    for camera_id in index.cameras():
        segs = index.segments(camera_id)
        footage = []
        for seg in segs:
            try:
                footage.append(Footage(seg.path, seg.start, index.probe(seg)))
            except ClipError as exc:
                footage.append(Footage(seg.path, seg.start, None, exc.message))
        readable = [f for f in footage if f.info is not None]
        gaps = []
        if readable:
            whole = Window(readable[0].start, readable[0].start, readable[-1].end)
            plan = plan_clip(whole, footage, trim="segments", gap_tolerance=config.recordings.gap_tolerance_seconds)
            gaps = [{"start": iso(g.start), "end": iso(g.end), "reason": g.reason} for g in plan.gaps]
        cameras.append(
            {
                "camera_id": camera_id,
                "segments": len(segs),
                "first_start": iso(segs[0].start),
                "last_end": iso(readable[-1].end) if readable else None,
                "unreadable": [f.path.name for f in footage if f.info is None],
                "gaps": gaps,
            }
        )
    print(json.dumps({"generated_at": iso(datetime.now(UTC)), "cameras": cameras}, indent=2))
    return 0


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


if __name__ == "__main__":
    sys.exit(main())
