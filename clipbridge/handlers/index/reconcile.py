"""The incremental side of the index: reconcile one folder with what it holds, walk a folder that appeared, forget
one that vanished, and (polling) guess a camera's next segment by name.

Every folder's mtime is remembered. A folder holding one camera's segments is first reconciled the cheap way (names
after the newest known are new, names before the oldest still present are gone, and the count must then agree), else
by parsing all its names. All of it runs under `_sync` (one change pass at a time); lookups take `_lock` only.
"""

from __future__ import annotations

import itertools
import os
import threading
import time

from clipbridge.config import RecordingsConfig
from clipbridge.handlers.index.camera import CameraSegments
from clipbridge.handlers.index.core import IndexBase
from clipbridge.handlers.index.walk import Folder, Listing, Progress, list_folder, trusted_mtime, walk

PREDICTED = 3  # segments a poll looks for by name at each end of a camera's newest folder
SECOND = 1_000_000


class Reconciler(IndexBase):
    def __init__(self, *, config: RecordingsConfig) -> None:
        super().__init__(config=config)
        self._folders: dict[tuple[int, str], Folder] = {}
        self._sync = threading.Lock()  # one change pass at a time: events, reconcile, poll
        self.folders_listed = 0
        self.folders_version = 0  # changes when folders appear or vanish (the live end may have moved)

    def _predict(self, key: tuple[int, str], folder: Folder) -> set[str] | None:
        """A camera's newest folder changed: look for the segments a recorder writes next and deletes first by name
        (a few `stat`s) instead of listing thousands of names. None where names cannot be predicted (sub-second
        names, odd names, a folder of several cameras or of sub-folders): then the folder is listed."""
        source, rel = key
        codec = self._sources[source].codec
        if folder.children or len(folder.cameras) != 1 or not codec.predictable:
            return None
        camera_id = next(iter(folder.cameras))
        with self._lock:
            cam = self._cameras.get(camera_id)
            if cam is None or cam.odd or cam.source != source:
                return None
            a, b = cam.span(*codec.folder_span(rel))
            if b - a < 2:
                return None
            recent = cam.starts[max(a, b - 6) : b]
            step = sorted(y - x for x, y in itertools.pairwise(recent))[(len(recent) - 1) // 2]
            newest, oldest, ext = cam.starts[b - 1], cam.starts[a : min(b, a + PREDICTED)], cam.ext
        root = self._sources[source].root

        def exists(us: int) -> bool:
            name = codec.render(camera_id, us, ext)
            return name.rpartition("/")[0] == rel and os.path.exists(f"{root}/{name}")

        added: list[int] = []
        for _ in range(PREDICTED):  # the recorder's next segments: one step on, give or take its naming jitter
            found = next(
                (t for t in (newest + step, newest + step - SECOND, newest + step + SECOND) if exists(t)), None
            )
            if found is None:
                break
            added.append(newest := found)
        gone = list(itertools.takewhile(lambda us: not exists(us), oldest))  # retention deletes the oldest
        with self._lock:
            for us in gone:
                cam.discard(us, source, "", True)
            for us in added:
                cam.add(us, source, "", True)
        return {camera_id} if added or gone else set()

    def _path(self, key: tuple[int, str]) -> str:
        root = str(self._sources[key[0]].root)
        return f"{root}/{key[1]}" if key[1] else root

    def _reconcile(self, source: int, rel: str) -> set[str]:
        path = self._path((source, rel))
        mtime = mtime_of(path)
        if mtime is None:
            return self._drop_tree(source, rel)
        self.folders_listed += 1
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
            self.folders_version += 1
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
                self.folders_version += 1
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


def mtime_of(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None
