"""The recordings index: which segment files exist per camera, found by name, probed only when a clip needs them."""

from __future__ import annotations

import bisect
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

from clipbridge.config import RecordingsConfig
from clipbridge.errors import ClipError
from clipbridge.handlers.layout import Layout
from clipbridge.handlers.media import ProbeInfo
from clipbridge.handlers.probe import ProbeCache

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SegmentFile:
    camera_id: str
    path: Path
    start: datetime  # aware UTC, from the file name
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class CameraSummary:
    camera_id: str
    segments: int
    first_start: datetime
    newest: SegmentFile


class _Camera:
    """Segments of one camera sorted by start; `starts` mirrors them for O(log n) bisection."""

    __slots__ = ("segments", "starts")

    def __init__(self, segments: Iterable[SegmentFile] = ()) -> None:
        self.segments: list[SegmentFile] = sorted(segments, key=lambda s: (s.start, str(s.path)))
        self.starts: list[float] = [s.start.timestamp() for s in self.segments]

    def insert(self, seg: SegmentFile) -> None:
        key = seg.start.timestamp()
        i = bisect.bisect_left(self.starts, key)
        while i < len(self.segments) and self.starts[i] == key:
            if self.segments[i].path == seg.path:
                self.segments[i] = seg
                return
            i += 1
        self.starts.insert(i, key)
        self.segments.insert(i, seg)

    def remove(self, path: Path) -> bool:
        for i, seg in enumerate(self.segments):
            if seg.path == path:
                del self.segments[i]
                del self.starts[i]
                return True
        return False


class RecordingsIndex:
    """Built by `scan()`; kept current by `scan()` again or `update_paths()` from file-system events."""

    def __init__(self, *, config: RecordingsConfig) -> None:
        self._config = config
        self._sources = [(Path(s.root), s.compiled_layout()) for s in config.sources]
        self._cameras: dict[str, _Camera] = {}
        self._lock = threading.RLock()
        self._scans = 0  # scans under way
        self._changed_during_scan: list[Path] = []
        self.probes = ProbeCache(max_duration=config.max_segment_seconds)

    @property
    def roots(self) -> list[Path]:
        return [root for root, _ in self._sources]

    def scan(self) -> int:
        """Walk every source and rebuild the index; returns how many segments were found. Nothing is probed.

        Paths updated by file-system events while the walk runs are applied again after the swap, so an event that
        lands behind the walk is not lost.
        """
        with self._lock:
            self._scans += 1
        replay: list[Path] = []
        try:
            grouped: dict[str, list[SegmentFile]] = {}
            count = 0
            for root, layout in self._sources:
                for seg in _walk(root, layout):
                    grouped.setdefault(seg.camera_id, []).append(seg)
                    count += 1
            cameras = {camera_id: _Camera(segs) for camera_id, segs in grouped.items()}
            with self._lock:
                self._cameras = cameras
        finally:
            with self._lock:
                self._scans -= 1
                if self._scans == 0:  # else the scan still walking replays them when it ends
                    replay, self._changed_during_scan = self._changed_during_scan, []
        if replay:
            self.update_paths(replay)
        return count

    def update_paths(self, paths: Iterable[Path]) -> set[str]:
        """Re-stat changed paths (added, grown or deleted); returns the cameras they belong to.

        A new folder is walked: files moved into it before the watcher's watch on it existed (a camera's first
        segment, typically) produce no event of their own.
        """
        touched: set[str] = set()
        expanded: list[Path] = []
        paths = [Path(p) for p in paths]
        with self._lock:
            if self._scans:
                self._changed_during_scan.extend(paths)
        for path in paths:
            if path.is_dir():
                expanded += [Path(d, f) for d, _, files in os.walk(path) for f in files]
            else:
                expanded.append(path)
        for path in expanded:
            for root, layout in self._sources:
                try:
                    rel = path.relative_to(root)
                except ValueError:
                    continue
                parsed = layout.parse(rel.as_posix())
                if parsed is None:
                    continue
                camera_id, start = parsed
                touched.add(camera_id)
                try:
                    st = path.stat()
                except FileNotFoundError:
                    with self._lock:
                        cam = self._cameras.get(camera_id)
                        if cam is not None:
                            cam.remove(path)
                    continue
                seg = SegmentFile(camera_id, path, start, st.st_size, st.st_mtime_ns)
                with self._lock:
                    self._cameras.setdefault(camera_id, _Camera()).insert(seg)
        return touched

    def cameras(self) -> list[str]:
        with self._lock:
            return sorted(c for c, cam in self._cameras.items() if cam.segments)

    def timezone_of(self, camera_id: str) -> tzinfo:
        """The time zone of the source a camera's recordings are in (naive event times are read in it)."""
        with self._lock:
            cam = self._cameras.get(camera_id)
            found = cam.segments[0].path if cam is not None and cam.segments else None
        for root, layout in self._sources:
            if found is not None and found.is_relative_to(root):
                return layout.tz
        return self._sources[0][1].tz if self._sources else UTC

    def has_camera(self, camera_id: str) -> bool:
        with self._lock:
            cam = self._cameras.get(camera_id)
            return cam is not None and bool(cam.segments)

    def segments(self, camera_id: str) -> list[SegmentFile]:
        with self._lock:
            cam = self._cameras.get(camera_id)
            return list(cam.segments) if cam else []

    def summary(self, camera_id: str) -> CameraSummary | None:
        with self._lock:
            cam = self._cameras.get(camera_id)
            if cam is None or not cam.segments:
                return None
            return CameraSummary(camera_id, len(cam.segments), cam.segments[0].start, cam.segments[-1])

    def candidates(self, camera_id: str, start: datetime, end: datetime) -> list[SegmentFile]:
        """Segments that may overlap [start, end): the last one starting at or before `start`, and all starting before `end`."""
        with self._lock:
            cam = self._cameras.get(camera_id)
            if cam is None:
                return []
            lo = max(bisect.bisect_right(cam.starts, start.timestamp()) - 1, 0)
            hi = bisect.bisect_left(cam.starts, end.timestamp())
            return list(cam.segments[lo:hi])

    def first_at_or_after(self, camera_id: str, t: datetime) -> SegmentFile | None:
        with self._lock:
            cam = self._cameras.get(camera_id)
            if cam is None:
                return None
            i = bisect.bisect_left(cam.starts, t.timestamp())
            return cam.segments[i] if i < len(cam.segments) else None

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {camera_id: len(cam.segments) for camera_id, cam in self._cameras.items()}

    def successor(self, seg: SegmentFile) -> SegmentFile | None:
        with self._lock:
            cam = self._cameras.get(seg.camera_id)
            if cam is None:
                return None
            i = bisect.bisect_right(cam.starts, seg.start.timestamp())
            return cam.segments[i] if i < len(cam.segments) else None

    def settles_at(self, seg: SegmentFile) -> datetime | None:
        """When `seg` counts as complete: None if a later segment exists (complete now), else mtime + settle."""
        if self.successor(seg) is not None:
            return None
        return datetime.fromtimestamp(seg.mtime_ns / 1e9, tz=seg.start.tzinfo) + timedelta(
            seconds=self._config.settle_seconds
        )

    def probe(self, seg: SegmentFile) -> ProbeInfo:
        """Probe info for a segment, cached by path, size and mtime; a vanished file is a retryable error."""
        try:
            st = seg.path.stat()
        except FileNotFoundError as exc:
            self.update_paths([seg.path])
            raise ClipError(
                "segment_missing", f"{seg.path.name} was deleted before it could be read", retryable=True
            ) from exc
        return self.probes.get(seg.path, st.st_size, st.st_mtime_ns)


def _walk(root: Path, layout: Layout) -> Sequence[SegmentFile]:
    found: list[SegmentFile] = []
    if not root.is_dir():
        logger.warning("recordings root %s does not exist or is not a folder", root)
        return found
    root_str = str(root)
    for dirpath, dirnames, filenames in os.walk(root_str):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel_dir = os.path.relpath(dirpath, root_str)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        for name in filenames:
            if name.startswith("."):
                continue
            parsed = layout.parse(prefix + name)
            if parsed is None:
                continue
            path = Path(dirpath, name)
            try:
                st = path.stat()
            except OSError:
                continue
            found.append(SegmentFile(parsed[0], path, parsed[1], st.st_size, st.st_mtime_ns))
    return found
