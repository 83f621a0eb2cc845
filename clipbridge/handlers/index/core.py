"""The recordings index: which segment files exist per camera, found by name, probed only when a clip needs them.

Lookups bisect packed per-camera arrays under a lock. Keeping it current (the start-up walk, file-system events,
the incremental reconcile and polling) is in sync.py; every change passes through one lock there.
"""

from __future__ import annotations

import bisect
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

from clipbridge.config import RecordingsConfig
from clipbridge.handlers.index.camera import CameraSegments
from clipbridge.handlers.index.names import NameCodec, to_datetime, to_us
from clipbridge.handlers.probe import ProbeCache


class SegmentFile:
    """One segment; its path is rebuilt from the start only when asked for (most lookups need only the start)."""

    __slots__ = ("_codec", "_ext", "_path", "_rel", "_root", "camera_id", "start")

    def __init__(self, camera_id: str, start: datetime, root: Path, rel: str | None, codec: NameCodec,
                 ext: str) -> None:  # fmt: skip
        self.camera_id = camera_id
        self.start = start  # aware UTC, from the file name
        self._root, self._rel, self._codec, self._ext = root, rel, codec, ext
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        if self._path is None:
            rel = self._rel or self._codec.render(self.camera_id, to_us(self.start), self._ext)
            self._path = self._root / rel
        return self._path

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SegmentFile) and (self.camera_id, self.path) == (other.camera_id, other.path)

    def __hash__(self) -> int:
        return hash((self.camera_id, self.start))

    def __repr__(self) -> str:
        return f"SegmentFile({self.camera_id!r}, {self.path})"


@dataclass(frozen=True)
class CameraSummary:
    camera_id: str
    segments: int
    first_start: datetime
    newest: SegmentFile


@dataclass(frozen=True)
class Source:
    root: Path
    codec: NameCodec


class IndexBase:
    """The lookups. `_cameras` is replaced whole by a walk and changed in place by sync.py, both under `_lock`."""

    def __init__(self, *, config: RecordingsConfig) -> None:
        self._config = config
        self._sources = [Source(Path(s.root), NameCodec(s.compiled_layout())) for s in config.sources]
        self._cameras: dict[str, CameraSegments] = {}
        self._lock = threading.RLock()
        self.probes = ProbeCache(max_duration=config.max_segment_seconds)

    @property
    def roots(self) -> list[Path]:
        return [s.root for s in self._sources]

    def _segment(self, camera_id: str, cam: CameraSegments, i: int) -> SegmentFile:
        if not cam.odd:  # every name is the rendering of its start
            source = self._sources[cam.source]
            return SegmentFile(camera_id, to_datetime(cam.starts[i]), source.root, None, source.codec, cam.ext)
        e = cam.entry(i)
        source = self._sources[e.source]
        return SegmentFile(camera_id, to_datetime(e.start_us), source.root, e.relpath, source.codec, cam.ext)

    def cameras(self) -> list[str]:
        with self._lock:
            return sorted(c for c, cam in self._cameras.items() if len(cam))

    def timezone_of(self, camera_id: str) -> tzinfo:
        """The time zone of the source a camera's recordings are in (naive event times are read in it)."""
        with self._lock:
            cam = self._cameras.get(camera_id)
            source = cam.source if cam is not None else 0
        return self._sources[source].codec.tz if source < len(self._sources) else UTC

    def has_camera(self, camera_id: str) -> bool:
        with self._lock:
            cam = self._cameras.get(camera_id)
            return cam is not None and len(cam) > 0

    def segments(self, camera_id: str) -> list[SegmentFile]:
        with self._lock:
            cam = self._cameras.get(camera_id)
            return [self._segment(camera_id, cam, i) for i in range(len(cam))] if cam else []

    def starts(self, camera_id: str) -> list[datetime]:
        """Every segment start of a camera, ascending (no paths built)."""
        with self._lock:
            cam = self._cameras.get(camera_id)
            return [to_datetime(us) for us in cam.starts] if cam else []

    def summary(self, camera_id: str) -> CameraSummary | None:
        with self._lock:
            cam = self._cameras.get(camera_id)
            if cam is None or not len(cam):
                return None
            newest = self._segment(camera_id, cam, len(cam) - 1)
            return CameraSummary(camera_id, len(cam), to_datetime(cam.starts[0]), newest)

    def candidates(self, camera_id: str, start: datetime, end: datetime) -> list[SegmentFile]:
        """Segments that may overlap [start, end): the last one starting at or before `start`, and all starting before `end`."""
        with self._lock:
            cam = self._cameras.get(camera_id)
            if cam is None:
                return []
            lo = max(bisect.bisect_right(cam.starts, to_us(start)) - 1, 0)
            hi = bisect.bisect_left(cam.starts, to_us(end))
            return [self._segment(camera_id, cam, i) for i in range(lo, hi)]

    def first_at_or_after(self, camera_id: str, t: datetime) -> SegmentFile | None:
        with self._lock:
            cam = self._cameras.get(camera_id)
            if cam is None:
                return None
            i = bisect.bisect_left(cam.starts, to_us(t))
            return self._segment(camera_id, cam, i) if i < len(cam) else None

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {camera_id: len(cam) for camera_id, cam in self._cameras.items()}

    def successor(self, seg: SegmentFile) -> SegmentFile | None:
        with self._lock:
            cam = self._cameras.get(seg.camera_id)
            if cam is None:
                return None
            i = bisect.bisect_right(cam.starts, to_us(seg.start))
            return self._segment(seg.camera_id, cam, i) if i < len(cam) else None

    def last_write(self, seg: SegmentFile) -> datetime:
        """When the recorder last wrote the segment (its mtime), at least its start; its start if it is gone."""
        try:
            mtime = datetime.fromtimestamp(os.stat(seg.path).st_mtime_ns / 1e9, UTC)
        except OSError:
            return seg.start
        return max(seg.start, mtime)

    def settles_at(self, seg: SegmentFile) -> datetime | None:
        """When `seg` counts as complete: None if a later segment exists (complete now), else mtime + settle."""
        if self.successor(seg) is not None:
            return None
        try:
            mtime = datetime.fromtimestamp(os.stat(seg.path).st_mtime_ns / 1e9, UTC)
        except OSError:
            return None  # gone: nothing to wait for (the clip reports it missing)
        return mtime + timedelta(seconds=self._config.settle_seconds)
