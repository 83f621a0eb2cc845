"""Section 1, clip cost: `Clipper.make_clip` in-process vs a bare `ffmpeg -f concat -c copy` of the same segments, and
`cat` of the same bytes; the steps of make_clip timed one by one; a pyinstrument profile."""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.common import CAMERA, DEBIAN_FFMPEG, REPO, RESULTS, Footage, Sizes, interleave, seed_window, source, summary
from clipbridge.config import load_config
from clipbridge.handlers.annotations import write_annotations
from clipbridge.handlers.clipper import Clipper
from clipbridge.handlers.ffmpeg import clip_argv, concat_playlist, run_command
from clipbridge.handlers.index import RecordingsIndex
from clipbridge.handlers.planner import plan_clip
from clipbridge.handlers.probe import ProbeCache, clip_duration
from clipbridge.handlers.replies import annotation
from clipbridge.handlers.snapshot import snapshot_argv, take_snapshot
from clipbridge.model import Job, Window
from tests.conftest import config_env

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
    bare_cfg = load_config(None, env=config_env(work / "no-snapshot", [source(fx.root)], clips__snapshot_width=0))
    cut_only = Clipper(index=index, clips=bare_cfg.clips, recordings=bare_cfg.recordings, ffmpeg=fx.ffmpeg)
    ff_cfg = load_config(None, env=config_env(work / "ffmpeg-path", [source(fx.root)], clips__cutter="ffmpeg"))
    ff_clipper = Clipper(index=index, clips=ff_cfg.clips, recordings=ff_cfg.recordings, ffmpeg=fx.ffmpeg)
    window = seed_window()
    segs = [s.path for s in index.candidates(CAMERA, window.start, window.end)]
    assert len(segs) == 4, segs
    work.mkdir(parents=True, exist_ok=True)
    plain = work / "bare.txt"
    plain.write_text("".join(f"file '{p}'\n" for p in segs))
    ids = itertools.count()
    ffmpeg_part: list[float] = []
    records: list[dict[str, Any]] = []  # the JSON annotation of the last clip
    # clipbridge's exact argv for this window (the playlist and argv Clipper._render builds), minus +faststart
    argv, playlist = render_argv(fx, cfg, clipper, window, work)
    i = argv.index("-movflags")
    assert argv[i + 1] == "+faststart", argv
    no_faststart = [*argv[:i], *argv[i + 2 : -1], str(work / "no-faststart.mp4")]

    paths: Counter[str] = Counter()

    def clip(cold: bool, part: list[float] | None = None, via: Clipper = clipper) -> Callable[[], float]:
        def run() -> float:
            if cold:
                index.probes = ProbeCache(max_duration=cfg.recordings.max_segment_seconds)
            request = Job.adhoc(f"bench{next(ids):06d}", CAMERA, window, source="bench")
            started = time.perf_counter()
            outcome = via.make_clip(request)
            paths[f"{outcome.cut_path}/{outcome.cut_reason}"] += 1
            elapsed = time.perf_counter() - started
            if outcome.status != "done":
                raise RuntimeError(f"clip status {outcome.status}")
            if part is not None:
                part.append(outcome.ffmpeg_seconds)
            records[:] = [annotation(request, outcome.record)]
            outcome.video_path.unlink()
            for path in outcome.annotation_paths.values():
                path.unlink()
            if outcome.snapshot_path is not None:
                outcome.snapshot_path.unlink()
            return elapsed

        return run

    # The snapshot alone (#13), in-process with PyAV (what the clipper runs) and as one FFmpeg run, at the
    # incident (14:30:15: the start of a segment, so a keyframe) and 0.96 s later (the last frame of its GOP).
    incident_seg = next(p for p in segs if p.name.endswith("143015.mp4"))

    def snap(at: float, ffmpeg: bool) -> Callable[[], float]:
        out_jpg = work / f"snapshot-{at}-{ffmpeg}.jpg"

        def run() -> float:
            started = time.perf_counter()
            if ffmpeg:
                subprocess.run(snapshot_argv(fx.ffmpeg, incident_seg, at, out_jpg, 640), check=True)
            else:
                take_snapshot(incident_seg, at, out_jpg, 640)
            return time.perf_counter() - started

        return run

    variants: dict[str, Callable[[], float]] = {
        "clipbridge_warm": clip(cold=False, part=ffmpeg_part),
        "clipbridge_ffmpeg_path_warm": clip(cold=False, via=ff_clipper),
        "clipbridge_warm_no_snapshot": clip(cold=False, via=cut_only),
        "snapshot_pyav": snap(0.0, ffmpeg=False),
        "snapshot_pyav_gop_end": snap(0.96, ffmpeg=False),
        "snapshot_ffmpeg": snap(0.0, ffmpeg=True),
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
    out["ratio_warm_to_cat"] = round(out["clipbridge_warm"]["median_ms"] / out["cat"]["median_ms"], 3)
    out["ratio_ffmpeg_path_warm"] = round(out["clipbridge_ffmpeg_path_warm"]["median_ms"] / bare, 3)
    out["snapshot_vs_cut"] = round(
        out["snapshot_pyav"]["median_ms"] / out["clipbridge_warm_no_snapshot"]["median_ms"], 2
    )
    out["cut_paths"] = dict(paths)
    out["path_by_kind"] = path_by_kind(fx, work, segs, window)
    if "bare_debian" in out:
        out["ratio_debian"] = round(out["bare_debian"]["median_ms"] / bare, 3)
    out["debian_note"] = debian_note
    out["phases"] = clip_phases(fx, cfg, clipper, index, window, work, records[0], plain, argv, sizes.clip_runs)
    playlist.unlink()
    out["profile"] = profile_clip(clipper, window, ids, 10, RESULTS / f"{stamp}-clip-profile.txt")
    return out


def path_by_kind(fx: Footage, work: Path, segs: list[Path], window: Window) -> dict[str, str]:
    """Which path (and why) a clip of the seed window takes when the same segments are fMP4, Matroska or MPEG-TS."""
    kinds = {
        "mp4": ("mp4", []),
        "fmp4": ("mp4", ["-movflags", "+frag_keyframe+empty_moov+default_base_moof"]),
        "mkv": ("mkv", []),
        "ts": ("ts", []),
    }
    out: dict[str, str] = {}
    for kind, (ext, flags) in kinds.items():
        root = work / f"kind-{kind}"
        (root / CAMERA).mkdir(parents=True, exist_ok=True)
        for seg in segs:
            argv = [fx.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(seg), "-c", "copy"]
            subprocess.run([*argv, *flags, str(root / CAMERA / f"{seg.stem}.{ext}")], check=True)
            os.utime(root / CAMERA / f"{seg.stem}.{ext}", (1, 1))  # settled
        cfg = load_config(None, env=config_env(root / "out", [source(root)]))
        index = RecordingsIndex(config=cfg.recordings)
        index.scan()
        clipper = Clipper(index=index, clips=cfg.clips, recordings=cfg.recordings, ffmpeg=fx.ffmpeg)
        outcome = clipper.make_clip(Job.adhoc(f"kind-{kind}", CAMERA, window, source="bench"))
        out[kind] = f"{outcome.cut_path} ({outcome.cut_reason}, {outcome.status})"
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
        outcome = clipper.make_clip(Job.adhoc(f"prof{next(ids):06d}", CAMERA, window, source="bench"))
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
