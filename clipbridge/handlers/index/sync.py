"""Keeping the index current: the walk, file-system events, the reconcile of folders whose mtime changed, polling.

Polling (storage without file-system events) looks only at each camera's newest folder, its parents and its newest
segment; what changed there is found by name where names can be guessed, else by listing (reconcile.py).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from clipbridge.config import RecordingsConfig
from clipbridge.errors import ClipError
from clipbridge.faults import hold_point
from clipbridge.handlers.index.camera import CameraSegments
from clipbridge.handlers.index.core import SegmentFile
from clipbridge.handlers.index.reconcile import Reconciler, mtime_of
from clipbridge.handlers.index.walk import Folder, Progress, walk
from clipbridge.handlers.media import ProbeInfo

logger = logging.getLogger(__name__)


@dataclass
class _Status:
    state: str = "scanning"  # until the first walk is done
    seconds: float | None = None
    walks: int = 0
    newest: dict[str, tuple[int, int]] = field(default_factory=dict)  # polling: camera -> newest (size, mtime)


class RecordingsIndex(Reconciler):
    """Built by `scan()` (the walk); kept current by `update_paths()` (events), `reconcile()` and `poll()`."""

    def __init__(self, *, config: RecordingsConfig) -> None:
        super().__init__(config=config)
        self._walking = 0
        self._replay: list[Path] = []
        self.status = _Status()
        self._progress: Progress | None = None

    @property
    def ready(self) -> bool:
        return self.status.state == "ready"

    def health(self) -> dict[str, object]:
        with self._lock:
            segments = sum(len(c) for c in self._cameras.values())
            if self._progress is not None:
                segments = max(segments, self._progress.files)
        s = self.status
        return {"ok": True, "state": s.state, "segments": segments,
                "seconds": None if s.seconds is None else round(s.seconds, 3)}  # fmt: skip

    # -- the walk -------------------------------------------------------------------------------------------------

    def scan(self) -> int:
        """Walk every source and rebuild the index; returns how many segments were found. Nothing is probed.

        Paths reported by file-system events while the walk runs are applied after the swap, so an event that
        lands behind the walk is not lost.
        """
        with self._lock:
            self._walking += 1
        started = time.monotonic()
        replay: list[Path] = []
        try:
            cameras: dict[str, CameraSegments] = {}
            folders: dict[tuple[int, str], Folder] = {}
            progress = self._progress = Progress(started)
            count = 0
            for i, source in enumerate(self._sources):
                if not source.root.is_dir():
                    logger.warning("recordings root %s does not exist or is not a folder", source.root)
                    continue
                count += walk(i, source.root, source.codec, "", cameras, folders, progress)
            for cam in cameras.values():
                cam.finish()
            if self.status.walks == 0:
                hold_point("walk_before_ready")
            with self._sync, self._lock:  # not in the middle of a reconcile or poll pass
                self._cameras, self._folders = cameras, folders
                self.folders_version += 1
                self.status.walks += 1
                self.status.state = "ready"
                self.status.seconds = time.monotonic() - started
                self._progress = None
        finally:
            with self._lock:
                self._walking -= 1
                if self._walking == 0:  # else the walk still running replays them when it ends
                    replay, self._replay = self._replay, []
        progress.done(len(folders), count)
        if replay:
            self.update_paths(replay)
        return count

    # -- events ---------------------------------------------------------------------------------------------------

    def update_paths(self, paths: Iterable[Path | str]) -> set[str]:
        """Look again at changed paths (files added, grown or deleted; folders created or removed); returns the
        cameras they belong to. A new folder is walked: files moved into it before the watcher's watch on it
        existed (a camera's first segment, typically) produce no event of their own."""
        changed = [Path(p) for p in paths]
        with self._lock:
            if self._walking:
                self._replay.extend(changed)
                return set()
        touched: set[str] = set()
        with self._sync:
            for path in changed:
                located = self._locate(path)
                if located is None:
                    continue
                source, rel = located
                if path.is_dir():
                    known = self._folders.get((source, rel))
                    if known is None:
                        touched |= self._add_tree(source, rel)
                    elif mtime_of(str(path)) != known.mtime_ns:
                        touched |= self._reconcile(source, rel)
                elif (source, rel) in self._folders:
                    touched |= self._drop_tree(source, rel)
                else:
                    touched |= self._file_changed(source, rel, path.is_file())
        return touched

    def _locate(self, path: Path) -> tuple[int, str] | None:
        for i, source in enumerate(self._sources):
            if path.is_relative_to(source.root):
                rel = path.relative_to(source.root).as_posix()
                return i, "" if rel == "." else rel
        return None

    def _file_changed(self, source: int, rel: str, exists: bool) -> set[str]:
        parsed = self._sources[source].codec.parse(rel)
        if parsed is None:
            return set()
        camera_id, start_us, exact = parsed
        with self._lock:
            cam = self._cameras.get(camera_id)
            if cam is None:
                if not exists:
                    return set()
                cam = self._cameras[camera_id] = CameraSegments(source, "." + rel.rpartition(".")[2])
            plain = cam.is_plain(source, rel, exact)
            if exists:
                cam.add(start_us, source, rel, plain)
                folder = self._folders.get((source, rel.rpartition("/")[0]))
                if folder is not None:
                    folder.cameras.add(camera_id)
            else:
                cam.discard(start_us, source, rel, plain)
        return {camera_id}

    # -- reconcile and poll ---------------------------------------------------------------------------------------

    def reconcile(self) -> set[str]:
        """List again the folders whose mtime changed (or that vanished); returns the cameras that changed."""
        if not self.ready:
            return set()
        touched: set[str] = set()
        with self._sync:
            for key in list(self._folders):
                folder = self._folders.get(key)
                if folder is not None and mtime_of(self._path(key)) != folder.mtime_ns:
                    touched |= self._reconcile(*key)
        return touched

    def poll(self, sources: Iterable[int], cameras: set[str] | None = None) -> set[str]:
        """Storage without events: each camera's newest folder and its parents (a new hour or day folder), the
        roots (a new camera), and the newest segments (growing, or closed); returns the cameras that changed.
        With `cameras`, only theirs (no roots)."""
        if not self.ready:
            return set()
        keys, newest = self._live_end(sources, cameras)
        touched: set[str] = set()
        with self._sync:
            for key in sorted(keys, key=lambda k: k[1].count("/")):  # parents first
                folder = self._folders.get(key)
                mtime = mtime_of(self._path(key))
                if folder is None or mtime == folder.mtime_ns:
                    continue
                if cameras is None and mtime == folder.polled_ns:
                    continue  # looked at by name already; a hurried poll (cameras given) lists it
                if mtime is not None and cameras is None and (changed := self._predict(key, folder)) is not None:
                    folder.polled_ns = mtime  # listed by the next reconcile (or a hurried poll)
                    touched |= changed
                else:
                    touched |= self._reconcile(*key)
        for camera_id, path in newest.items():
            try:
                st = os.stat(path)
                seen = (st.st_size, st.st_mtime_ns)
            except OSError:
                seen = (-1, -1)
            if self.status.newest.get(camera_id) != seen:
                self.status.newest[camera_id] = seen
                touched.add(camera_id)
        return touched

    def live_folders(self, sources: Iterable[int]) -> set[str]:
        """The folders where recorders write: the roots, each camera's newest folder and the folders above it."""
        keys, _ = self._live_end(sources, None)
        return {self._path(k) for k in keys if k in self._folders}

    def _live_end(self, sources: Iterable[int], cameras: set[str] | None
                  ) -> tuple[set[tuple[int, str]], dict[str, str]]:  # fmt: skip
        """The folders of the live end (roots unless `cameras` is given), and each camera's newest segment's path."""
        wanted = set(sources)
        keys: set[tuple[int, str]] = {(i, "") for i in wanted} if cameras is None else set()
        newest: dict[str, str] = {}
        with self._lock:
            for camera_id, cam in self._cameras.items():
                if len(cam) and cam.source in wanted and (cameras is None or camera_id in cameras):
                    e = cam.entry(len(cam) - 1)
                    source = self._sources[e.source]
                    rel = e.relpath or source.codec.render(camera_id, e.start_us, cam.ext)
                    newest[camera_id] = f"{source.root}/{rel}"
                    parts = rel.split("/")[:-1]
                    keys.update((e.source, "/".join(parts[:n])) for n in range(1, len(parts) + 1))
        return keys, newest

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
