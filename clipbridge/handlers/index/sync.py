"""Keeping the index current: the walk, file-system events, the incremental reconcile of changed folders, polling.

Every folder's mtime is remembered. The reconcile lists only folders whose mtime changed; a folder holding one
camera's segments is first reconciled the cheap way (names after the newest known are new, names before the oldest
still present are gone, and the count must then agree), else by parsing all its names. Polling (storage without
file-system events) looks only at each camera's newest folder, its parents and its newest segment.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from clipbridge.config import RecordingsConfig
from clipbridge.errors import ClipError
from clipbridge.faults import hold_point
from clipbridge.handlers.index.camera import CameraSegments
from clipbridge.handlers.index.core import IndexBase, SegmentFile
from clipbridge.handlers.index.walk import Folder, Listing, Progress, list_folder, trusted_mtime, walk
from clipbridge.handlers.media import ProbeInfo

logger = logging.getLogger(__name__)


@dataclass
class _Status:
    state: str = "scanning"  # until the first walk is done
    seconds: float | None = None
    walks: int = 0
    folders_listed: int = 0
    newest: dict[str, tuple[int, int]] = field(default_factory=dict)  # polling: camera -> newest (size, mtime)


class RecordingsIndex(IndexBase):
    """Built by `scan()` (the walk); kept current by `update_paths()` (events), `reconcile()` and `poll()`."""

    def __init__(self, *, config: RecordingsConfig) -> None:
        super().__init__(config=config)
        self._folders: dict[tuple[int, str], Folder] = {}
        self._sync = threading.Lock()  # one change pass at a time: events, reconcile, poll
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
                    if (source, rel) not in self._folders:
                        touched |= self._add_tree(source, rel)
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
                if folder is not None and _mtime(self._path(key)) != folder.mtime_ns:
                    touched |= self._reconcile(*key)
        return touched

    def poll(self, sources: Iterable[int], cameras: set[str] | None = None) -> set[str]:
        """Storage without events: each camera's newest folder and its parents (a new hour or day folder), the
        roots (a new camera), and the newest segments (growing, or closed); returns the cameras that changed.
        With `cameras`, only theirs (no roots)."""
        if not self.ready:
            return set()
        wanted = set(sources)
        keys: set[tuple[int, str]] = {(i, "") for i in wanted} if cameras is None else set()
        newest: dict[str, SegmentFile] = {}
        with self._lock:
            for camera_id, cam in self._cameras.items():
                if len(cam) and cam.source in wanted and (cameras is None or camera_id in cameras):
                    seg = newest[camera_id] = self._segment(camera_id, cam, len(cam) - 1)
                    parts = seg.path.relative_to(self._sources[cam.source].root).as_posix().split("/")[:-1]
                    keys.update((cam.source, "/".join(parts[:n])) for n in range(1, len(parts) + 1))
        touched: set[str] = set()
        with self._sync:
            for key in sorted(keys, key=lambda k: k[1].count("/")):  # parents first
                folder = self._folders.get(key)
                if folder is not None and _mtime(self._path(key)) != folder.mtime_ns:
                    touched |= self._reconcile(*key)
        for camera_id, seg in newest.items():
            try:
                st = os.stat(seg.path)
                seen = (st.st_size, st.st_mtime_ns)
            except OSError:
                seen = (-1, -1)
            if self.status.newest.get(camera_id) != seen:
                self.status.newest[camera_id] = seen
                touched.add(camera_id)
        return touched

    def _path(self, key: tuple[int, str]) -> str:
        root = str(self._sources[key[0]].root)
        return f"{root}/{key[1]}" if key[1] else root

    def _reconcile(self, source: int, rel: str) -> set[str]:
        path = self._path((source, rel))
        mtime = _mtime(path)
        if mtime is None:
            return self._drop_tree(source, rel)
        self.status.folders_listed += 1
        folder = self._folders[(source, rel)]
        if not folder.children and len(folder.cameras) == 1:
            try:
                names = [n for n in os.listdir(path) if n[0] != "."]
            except OSError:
                return self._drop_tree(source, rel)
            changed = self._reconcile_fast(source, rel, names, next(iter(folder.cameras)))
            if changed is not None:
                folder.mtime_ns = trusted_mtime(mtime)
                return changed
        listing = list_folder(path)
        if listing is None:
            return self._drop_tree(source, rel)
        touched = self._apply_listing(source, rel, listing)
        prefix = f"{rel}/" if rel else ""
        for name in folder.children - listing.folders:
            touched |= self._drop_tree(source, prefix + name)
        for name in listing.folders - folder.children:
            touched |= self._add_tree(source, prefix + name)
        folder.children = set(listing.folders)
        folder.mtime_ns = trusted_mtime(mtime)
        return touched

    def _reconcile_fast(self, source: int, rel: str, names: list[str], camera_id: str) -> set[str] | None:
        """Names sort by time within such a folder: those after the newest known are new, those before the oldest
        present are gone. None when the folder does not fit that (then it is parsed whole)."""
        codec = self._sources[source].codec
        with self._lock:
            cam = self._cameras.get(camera_id)
            if cam is None or cam.odd or cam.source != source or not codec.exact:
                return None
            a, b = cam.span(*codec.folder_span(rel))
            if a == b:
                return None
            newest_us = cam.starts[b - 1]
            ext = cam.ext
        folder, _, newest = codec.render(camera_id, newest_us, ext).rpartition("/")
        if folder != rel:
            return None
        prefix = f"{rel}/" if rel else ""
        fresh = [n for n in names if n > newest]
        kept = len(names) - len(fresh)
        added = []
        for name in fresh:
            parsed = codec.parse(prefix + name)
            if parsed is None or parsed[0] != camera_id or not parsed[2] or not name.endswith(ext):
                return None
            if parsed[1] <= newest_us:
                return None
            added.append(parsed[1])
        with self._lock:
            if kept:
                oldest = codec.parse(prefix + min(names))
                if oldest is None or oldest[0] != camera_id:
                    return None
                k = cam.span(oldest[1], oldest[1] + 1)[0]
                if k >= b or cam.starts[k] != oldest[1] or kept != b - k:
                    return None
            else:
                k = b
            cam.drop_range(a, k)
            for us in sorted(added):
                cam.add(us, source, "", True)
        return {camera_id} if added or k > a else set()

    def _apply_listing(self, source: int, rel: str, listing: Listing) -> set[str]:
        """Make the index agree with a folder's files: add what is new, drop what is gone."""
        codec = self._sources[source].codec
        prefix = f"{rel}/" if rel else ""
        present: dict[str, list[tuple[str, int, bool]]] = {}  # camera -> (relpath, start, exact)
        for name in listing.files:
            parsed = codec.parse(prefix + name)
            if parsed is not None:
                present.setdefault(parsed[0], []).append((prefix + name, parsed[1], parsed[2]))
        folder = self._folders[(source, rel)]
        touched: set[str] = set()
        with self._lock:
            for camera_id in folder.cameras | set(present):
                here = present.get(camera_id, [])
                cam = self._cameras.get(camera_id)
                if cam is None and not here:
                    continue
                if cam is None:
                    cam = self._cameras[camera_id] = CameraSegments(source, "." + here[0][0].rpartition(".")[2])
                plain_known, odd_known = self._known(source, rel, camera_id, cam)
                plain_here: set[int] = set()
                odd_here: dict[str, int] = {}
                for relpath, us, exact in here:
                    if cam.is_plain(source, relpath, exact):
                        plain_here.add(us)
                    else:
                        odd_here[relpath] = us
                changes = [(us, "", True, True) for us in plain_here - plain_known]
                changes += [(us, "", True, False) for us in plain_known - plain_here]
                changes += [(us, r, False, True) for r, us in odd_here.items() if r not in odd_known]
                changes += [(us, r, False, False) for r, us in odd_known.items() if r not in odd_here]
                for us, relpath, plain, add in changes:
                    done = cam.add if add else cam.discard
                    if done(us, source, relpath, plain):
                        touched.add(camera_id)
            folder.cameras = set(present)
        return touched

    def _known(self, source: int, rel: str, camera_id: str, cam: CameraSegments) -> tuple[set[int], dict[str, int]]:
        """The camera's indexed segments in one folder: starts of the plain ones, relpath -> start of the others."""
        codec = self._sources[source].codec
        a, b = cam.span(*codec.folder_span(rel))
        plain: set[int] = set()
        odd: dict[str, int] = {}
        if a == b:
            return plain, odd
        # Plain names are a function of the start: those in this folder's time span are all here, or none are.
        here = cam.source == source and codec.render(camera_id, cam.starts[a], cam.ext).rpartition("/")[0] == rel
        if not cam.odd:
            return (set(cam.starts[a:b]) if here else plain), odd
        for i in range(a, b):
            e = cam.entry(i)
            if e.relpath is None:
                if here:
                    plain.add(e.start_us)
            elif e.source == source and e.relpath.rpartition("/")[0] == rel:
                odd[e.relpath] = e.start_us
        return plain, odd

    def _add_tree(self, source: int, rel: str) -> set[str]:
        """A folder appeared: walk it and add what it holds."""
        src = self._sources[source]
        cameras: dict[str, CameraSegments] = {}
        folders: dict[tuple[int, str], Folder] = {}
        walk(source, src.root, src.codec, rel, cameras, folders, Progress(time.monotonic(), quiet=True))
        with self._lock:
            self._folders.update(folders)
            parent = self._folders.get((source, rel.rpartition("/")[0]))
            if parent is not None and rel:
                parent.children.add(rel.rpartition("/")[2])
            for camera_id, found in cameras.items():
                cam = self._cameras.get(camera_id)
                if cam is None:
                    cam = self._cameras[camera_id] = CameraSegments(found.source, found.ext)
                for i in range(len(found)):
                    e = found.entry(i)
                    relpath = e.relpath or src.codec.render(camera_id, e.start_us, found.ext)
                    exact = e.relpath is None or bool((p := src.codec.parse(relpath)) and p[2])
                    cam.add(e.start_us, source, relpath, cam.is_plain(source, relpath, exact))
        return set(cameras)

    def _drop_tree(self, source: int, rel: str) -> set[str]:
        """A folder vanished: forget it, the folders under it and their segments."""
        prefix = f"{rel}/"
        touched: set[str] = set()
        with self._lock:
            gone = [k for k in self._folders if k[0] == source and (k[1] == rel or k[1].startswith(prefix) or not rel)]
            for key in gone:
                folder = self._folders.pop(key)
                for camera_id in folder.cameras:
                    cam = self._cameras.get(camera_id)
                    if cam is None:
                        continue
                    plain, odd = self._known(source, key[1], camera_id, cam)
                    dropped = [cam.discard(us, source, "", True) for us in plain]
                    dropped += [cam.discard(us, source, relpath, False) for relpath, us in odd.items()]
                    if any(dropped):
                        touched.add(camera_id)
            parent = self._folders.get((source, rel.rpartition("/")[0]))
            if parent is not None and rel:
                parent.children.discard(rel.rpartition("/")[2])
        return touched

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


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None
