"""Turn a clip request into a clip file: probe the candidates, plan, run FFmpeg, measure the output, annotate."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from clipbridge.config import ClipsConfig, RecordingsConfig
from clipbridge.errors import ClipError
from clipbridge.handlers.annotations import write_annotations
from clipbridge.handlers.ffmpeg import MP4_AUDIO, clip_argv, concat_playlist, run_command
from clipbridge.handlers.index import RecordingsIndex
from clipbridge.handlers.mp4cut import Unsupported, cut
from clipbridge.handlers.planner import Footage, Plan, plan_clip
from clipbridge.handlers.probe import clip_duration
from clipbridge.handlers.replies import annotation
from clipbridge.handlers.snapshot import incident_frame, take_snapshot
from clipbridge.model import ClipRecord, Codecs, Job, SourceSegment, StoredFile, Window

logger = logging.getLogger(__name__)
TMP_DIR = ".tmp"


@dataclass(frozen=True)
class ClipOutcome:
    record: ClipRecord
    files: tuple[StoredFile, ...]  # the video first, then the annotations, then the snapshot if one was made
    ffmpeg_seconds: float  # time spent cutting, by either path
    cut_path: Literal["box", "ffmpeg"] = "ffmpeg"
    cut_reason: str = "config"  # why this path: "mp4" for the box path, else why not (mp4cut.REASONS, "config")

    @property
    def status(self) -> Literal["done", "partial"]:
        return self.record.status

    @property
    def video_path(self) -> Path:
        return self.files[0].path

    @property
    def annotation_paths(self) -> dict[str, Path]:
        return {f.kind: f.path for f in self.files[1:] if f.kind != "jpg"}

    @property
    def snapshot_path(self) -> Path | None:
        return next((f.path for f in self.files if f.kind == "jpg"), None)


def clip_basename(camera_id: str, incident: datetime, clip_id: str) -> str:
    return f"{camera_id}_{incident.astimezone(UTC):%Y%m%d_%H%M%S}_{clip_id}"


class Clipper:
    def __init__(
        self, *, index: RecordingsIndex, clips: ClipsConfig, recordings: RecordingsConfig, ffmpeg: str
    ) -> None:
        self._index = index
        self._clips = clips
        self._recordings = recordings
        self._ffmpeg = ffmpeg
        self._running: set[subprocess.Popen[bytes]] = set()
        self._snapshots = ThreadPoolExecutor(max_workers=clips.workers, thread_name_prefix="snapshot")

    def kill_running(self) -> int:
        """Kill FFmpeg runs still in flight (shutdown past its grace period); their jobs fail and are requeued."""
        procs = list(self._running)
        for proc in procs:
            proc.kill()
        return len(procs)

    def remove_temp_files(self) -> int:
        """Delete what a crash mid-FFmpeg left behind; finished clips are never in the temp folder."""
        tmp = self._clips.output_dir / TMP_DIR
        if not tmp.is_dir():
            return 0
        removed = 0
        for entry in tmp.iterdir():
            entry.unlink(missing_ok=True)
            removed += 1
        return removed

    def gather(self, camera_id: str, window: Window) -> list[Footage]:
        """Probe the segments that may overlap the window; unreadable ones come back with their problem."""
        if not self._index.has_camera(camera_id):
            raise ClipError("unknown_camera", f"no recordings are known for camera {camera_id!r}")
        footage: list[Footage] = []
        for seg in self._index.candidates(camera_id, window.start, window.end):
            try:
                footage.append(Footage(seg.path, seg.start, self._index.probe(seg)))
            except ClipError as exc:
                if exc.code == "segment_missing":
                    continue  # deleted by the recorder's retention: a gap, reported by the planner
                logger.warning("segment %s is unusable: %s", seg.path, exc.message)
                footage.append(Footage(seg.path, seg.start, None))
        return footage

    def make_clip(self, job: Job) -> ClipOutcome:
        """Cut the job's window into a clip and write its annotations; raises ClipError with the code to report."""
        footage = self.gather(job.camera_id, job.window)
        plan = plan_clip(
            job.window, footage, trim=self._clips.trim, gap_tolerance=self._recordings.gap_tolerance_seconds
        )
        basename = clip_basename(job.camera_id, job.window.incident, job.clip_id)
        tail = self._following(job.camera_id, plan)
        # The snapshot reads the source, not the clip: it is made beside the cut (decoding and copying both run
        # outside the GIL).
        snapping = self._snapshots.submit(self._snapshot, job, plan, basename)
        try:
            video_path, measured, ffmpeg_seconds, path, reason = self._render(plan, basename, job.clip_id, tail)
        except BaseException:
            if (made := snapping.result()[0]) is not None:
                made.unlink(missing_ok=True)
            raise
        snapshot, warning = snapping.result()
        record = dataclasses.replace(
            self._record(job, plan, video_path, measured),
            snapshot_file=snapshot.name if snapshot else None,
            warnings=(warning,) if warning else (),
        )
        video = StoredFile(video_path.name, job.clip_id, "video", video_path, record.file_size)
        picture = [StoredFile(snapshot.name, job.clip_id, "jpg", snapshot, snapshot.stat().st_size)] if snapshot else []
        try:
            written = write_annotations(annotation(job, record), self._clips.annotations_dir, basename)
        except OSError as exc:
            for f in (video, *picture):
                f.path.unlink(missing_ok=True)
            raise _storage_error(exc, self._clips.annotations_dir) from exc
        notes = [StoredFile(p.name, job.clip_id, kind, p, p.stat().st_size) for kind, p in written.items()]
        return ClipOutcome(record, (video, *notes, *picture), ffmpeg_seconds, path, reason)

    def _snapshot(self, job: Job, plan: Plan, basename: str) -> tuple[Path | None, str | None]:
        """The incident's frame as a JPEG beside the clip, or why there is none (a warning: the clip stands)."""
        width = self._clips.snapshot_width
        if width == 0:
            return None, None
        frame = incident_frame(plan, job.window.incident)
        if frame is None:
            return None, "snapshot: no readable frame in the clip's sources"
        tmp = self._clips.output_dir / TMP_DIR / f"{basename}.jpg"
        final = self._clips.output_dir / f"{basename}.jpg"
        try:
            tmp.parent.mkdir(parents=True, exist_ok=True)
            take_snapshot(frame[0], frame[1], tmp, width)
            os.replace(tmp, final)
            return final, None
        except ClipError as exc:
            return None, f"snapshot: {exc.message}"
        except OSError as exc:
            return None, f"snapshot: {exc.strerror or exc}"
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)

    def _following(self, camera_id: str, plan: Plan) -> Path | None:
        """The segment right after the clip's last one, when the clip runs to that one's end (its leading audio
        belongs to the clip's last moments); None otherwise."""
        if not plan.items:
            return None
        last = plan.items[-1]
        info = last.footage.info
        if info is None or (last.outpoint is not None and last.outpoint < info.duration - 1e-3):
            return None
        nxt = self._index.first_at_or_after(camera_id, last.footage.start + timedelta(microseconds=1))
        if nxt is None or abs((nxt.start - last.footage.end).total_seconds()) > self._recordings.gap_tolerance_seconds:
            return None
        return nxt.path

    def _render(
        self, plan: Plan, basename: str, clip_id: str, tail: Path | None = None
    ) -> tuple[Path, float, float, Literal["box", "ffmpeg"], str]:
        """Cut at the box level when every source allows it, else with FFmpeg; says which path and why."""
        reason = "config"
        if self._clips.cutter == "auto":
            try:
                final, measured, seconds = self._render_boxes(plan, basename, tail)
                return final, measured, seconds, "box", "mp4"
            except Unsupported as exc:
                logger.debug("clip %s goes to FFmpeg: %s", clip_id, exc)
                reason = exc.reason
        return (*self._render_ffmpeg(plan, basename, clip_id), "ffmpeg", reason)

    def _render_boxes(self, plan: Plan, basename: str, tail: Path | None) -> tuple[Path, float, float]:
        out_dir = self._clips.output_dir
        tmp_video = out_dir / TMP_DIR / f"{basename}.mp4"
        final = out_dir / f"{basename}.mp4"
        started = time.monotonic()
        try:
            (out_dir / TMP_DIR).mkdir(parents=True, exist_ok=True)
            done = cut([(i.footage.path, i.inpoint, i.outpoint) for i in plan.items], tmp_video, tail)
            seconds = time.monotonic() - started
            # The duration comes from the tables just written (what FFmpeg reads back from them; the tests check
            # it): reopening the clip with PyAV would cost a third of the cut.
            measured = round(done.video_seconds, 3)
            os.replace(tmp_video, final)
        except FileNotFoundError as exc:
            if exc.filename is not None and Path(exc.filename) != tmp_video and not Path(exc.filename).exists():
                raise ClipError(
                    "segment_missing", f"{Path(exc.filename).name} deleted while the clip was being cut", retryable=True
                ) from exc
            raise _storage_error(exc, out_dir) from exc
        except OSError as exc:
            raise _storage_error(exc, out_dir) from exc
        finally:
            with contextlib.suppress(OSError):
                tmp_video.unlink(missing_ok=True)
        return final, measured, seconds

    def _render_ffmpeg(self, plan: Plan, basename: str, clip_id: str) -> tuple[Path, float, float]:
        out_dir = self._clips.output_dir
        tmp_dir = out_dir / TMP_DIR
        playlist = tmp_dir / f"{clip_id}.ffconcat"
        tmp_video = tmp_dir / f"{basename}.mp4"
        final = out_dir / f"{basename}.mp4"
        first = plan.items[0].footage.info
        assert first is not None
        try:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            playlist.write_text(concat_playlist(plan.items), encoding="utf-8")
        except OSError as exc:
            raise _storage_error(exc, out_dir) from exc
        try:
            argv = clip_argv(
                self._ffmpeg,
                playlist,
                tmp_video,
                video_codec=first.params.video_codec,
                audio_codec=first.params.audio_codec,
            )
            run = run_command(argv, timeout=self._clips.ffmpeg_timeout_seconds, running=self._running)
            if run.returncode != 0:
                raise self._ffmpeg_error(plan, run.returncode, run.stderr_tail)
            try:
                measured = clip_duration(tmp_video)
            except ClipError as exc:
                raise ClipError("ffmpeg_failed", f"FFmpeg wrote an unreadable clip: {exc.message}") from exc
            try:
                os.replace(tmp_video, final)
            except OSError as exc:
                raise _storage_error(exc, out_dir) from exc
            return final, measured, run.seconds
        finally:
            playlist.unlink(missing_ok=True)
            tmp_video.unlink(missing_ok=True)

    def _ffmpeg_error(self, plan: Plan, code: int, tail: str) -> ClipError:
        missing = [i.footage.path.name for i in plan.items if not i.footage.path.exists()]
        if missing:
            return ClipError(
                "segment_missing", f"{', '.join(missing)} deleted while the clip was being cut", retryable=True
            )
        if "No space left" in tail or "Read-only file system" in tail or "Permission denied" in tail:
            return ClipError("storage_error", f"cannot write to {self._clips.output_dir}: {tail}")
        return ClipError("ffmpeg_failed", f"FFmpeg exited with status {code}: {tail or 'no error output'}")

    def _record(self, job: Job, plan: Plan, video_path: Path, measured: float) -> ClipRecord:
        params = plan.items[0].footage.info.params  # type: ignore[union-attr]
        return ClipRecord(
            clip_id=job.clip_id,
            camera_id=job.camera_id,
            status="partial" if plan.gaps else "done",
            window=job.window,
            actual_start=plan.actual_start,
            # The output's measured duration is the truth for the clip's length; its end follows from its start.
            actual_end=plan.actual_end if plan.gaps else plan.actual_start + timedelta(seconds=measured),
            duration_seconds=round(measured, 3),
            trim=self._clips.trim,
            video_file=video_path.name,
            file_size=video_path.stat().st_size,
            source_segments=tuple(
                SourceSegment(
                    str(i.footage.path), i.footage.start, i.footage.end, _size(i.footage.path), i.inpoint, i.outpoint
                )
                for i in plan.items
            ),
            gaps=plan.gaps,
            codecs=Codecs(
                video=params.video_codec,
                audio=params.audio_codec,
                audio_transcoded=params.audio_codec is not None and params.audio_codec not in MP4_AUDIO,
                width=params.width,
                height=params.height,
            ),
            completed_at=datetime.now(UTC),
        )


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _storage_error(exc: OSError, where: Path) -> ClipError:
    reason = {errno.ENOSPC: "the disk is full", errno.EROFS: "it is read-only", errno.EACCES: "permission denied"}
    detail = reason.get(exc.errno or 0, exc.strerror or str(exc))
    free = ""
    with contextlib.suppress(OSError):
        free = f" ({shutil.disk_usage(where).free} bytes free)"
    return ClipError("storage_error", f"cannot write to {where}: {detail}{free}", retryable=False)
