"""Walking a recordings tree: names parsed as they are listed, one `stat` per folder and none per file."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from clipbridge.handlers.index.camera import CameraSegments
from clipbridge.handlers.index.names import NameCodec

logger = logging.getLogger(__name__)

PROGRESS_SECONDS = 2.0
# A folder changed this recently may change again within the same file-system timestamp tick: its mtime is not
# trusted (it is listed again next time), as git treats a "racily clean" index entry.
RACY_NS = 100_000_000


def trusted_mtime(mtime_ns: int) -> int:
    return -1 if time.time_ns() - mtime_ns < RACY_NS else mtime_ns


@dataclass(slots=True)
class Folder:
    mtime_ns: int
    children: set[str] = field(default_factory=set)  # sub-folder names
    cameras: set[str] = field(default_factory=set)  # cameras with segments here
    polled_ns: int = -1  # the mtime a poll last looked at by name (the reconcile lists it later)


@dataclass(frozen=True, slots=True)
class Listing:
    files: list[str]
    folders: set[str]


class Progress:
    """Logs a long walk every few seconds: folders, files, rate."""

    def __init__(self, started: float, *, quiet: bool = False) -> None:
        self._started = started
        self._next = started + PROGRESS_SECONDS
        self._quiet = quiet
        self.files = 0  # found so far (the health check shows it while the walk runs)

    def tick(self, folders: int, files: int) -> None:
        self.files = files
        now = time.monotonic()
        if now >= self._next and not self._quiet:
            self._next = now + PROGRESS_SECONDS
            rate = files / max(now - self._started, 1e-9)
            logger.info("recordings walk: %d folders, %d files so far (%.0f files/s)", folders, files, rate)

    def done(self, folders: int, files: int) -> None:
        if not self._quiet:
            took = time.monotonic() - self._started
            logger.info("recordings walk done: %d folders, %d segments in %.2f s", folders, files, took)


def list_folder(path: str) -> Listing | None:
    """Files and sub-folders of one folder, hidden names left out; None if it is gone."""
    files: list[str] = []
    folders: set[str] = set()
    try:
        with os.scandir(path) as it:
            for entry in it:
                if entry.name[0] == ".":
                    continue
                (folders.add(entry.name) if entry.is_dir() else files.append(entry.name))
    except OSError:
        return None
    return Listing(files, folders)


def walk(source: int, root: Path, codec: NameCodec, start: str, cameras: dict[str, CameraSegments],
         folders: dict[tuple[int, str], Folder], progress: Progress) -> int:  # fmt: skip
    """Add the segments under `root/start` to `cameras` (unsorted: the caller sorts) and their folders to `folders`;
    returns how many segments were found."""
    root_s = str(root)
    parse = codec.parse
    count = 0
    stack = [start]
    while stack:
        rel = stack.pop()
        path = f"{root_s}/{rel}" if rel else root_s
        try:
            folder = Folder(trusted_mtime(os.stat(path).st_mtime_ns))
            it = os.scandir(path)
        except OSError:
            continue  # vanished while walking
        folders[(source, rel)] = folder
        prefix = f"{rel}/" if rel else ""
        # The common case, a run of plain names of one camera, appends to its array directly.
        run_camera, run_ext, run_append = "", "", None
        with it:
            for entry in it:
                name = entry.name
                if name[0] == ".":
                    continue
                if entry.is_dir():
                    folder.children.add(name)
                    stack.append(prefix + name)
                    continue
                relpath = prefix + name
                parsed = parse(relpath)
                if parsed is None:
                    continue
                camera_id, start_us, exact = parsed
                count += 1
                if camera_id == run_camera and exact and name.endswith(run_ext):
                    run_append(start_us)  # type: ignore[misc]  # set with run_camera
                    continue
                cam = cameras.get(camera_id)
                if cam is None:
                    cam = cameras[camera_id] = CameraSegments(source, "." + name.rpartition(".")[2])
                cam.append(start_us, source, relpath, cam.is_plain(source, relpath, exact))
                folder.cameras.add(camera_id)
                if cam.source == source:
                    run_camera, run_ext, run_append = camera_id, cam.ext, cam.starts.append
        progress.tick(len(folders), count)
    return count
