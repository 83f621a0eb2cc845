"""The recordings index kept current, per layout: every change, noticed by events, by the reconcile or by polling,
leaves the index equal to a fresh walk of the same tree. Real files in a temp dir."""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clipbridge.config import RecordingsConfig, SourceConfig
from clipbridge.handlers.index import RecordingsIndex
from clipbridge.handlers.index.names import NameCodec, to_us
from clipbridge.handlers.layout import Layout
from clipbridge.handlers.watcher import watch_mode

T = datetime(2025, 8, 29, 14, 58, 40, tzinfo=UTC)  # segments cross 15:00: Frigate starts a new hour folder
LAYOUTS = {
    "seed": "{camera_id}/{camera_id}_%Y%m%d_%H%M%S",
    "mediamtx": "{camera_id}/%Y-%m-%d_%H-%M-%S-%f",
    "frigate": "%Y-%m-%d/%H/{camera_id}/%M.%S",
}


class Tree:
    def __init__(self, root: Path, pattern: str) -> None:
        self.root, self.layout = root, Layout.create(pattern)

    def path(self, camera: str, i: int, ext: str = ".mp4") -> Path:
        return self.root / self.layout.render(camera, T + timedelta(seconds=5 * i), ext)

    def write(self, camera: str, i: int, ext: str = ".mp4", data: bytes = b"") -> Path:
        path = self.path(camera, i, ext)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path


def make_index(root: Path, pattern: str) -> RecordingsIndex:
    return RecordingsIndex(config=RecordingsConfig(sources=[SourceConfig(root=root, layout=pattern)]))


def contents(index: RecordingsIndex) -> dict[str, list[tuple[datetime, str]]]:
    return {c: [(s.start, str(s.path)) for s in index.segments(c)] for c in index.cameras()}


def age_folders(root: Path) -> None:
    """Folder mtimes a minute old, as in a running archive (a just-changed folder is always listed again)."""
    old = time.time() - 60
    for folder, _, _ in os.walk(root):
        os.utime(folder, (old, old))


def one_camera(tmp_path: Path, layout: str) -> tuple[Tree, RecordingsIndex]:
    """cam1 with 30 segments in an aged tree, and its index walked."""
    tree = Tree(tmp_path / "rec", LAYOUTS[layout])
    for i in range(30):
        tree.write("cam1", i)
    age_folders(tree.root)
    index = make_index(tree.root, tree.layout.pattern)
    index.scan()
    return tree, index


# Each case changes the tree and returns the paths a file-system event would report.
def add(tree: Tree) -> list[Path]:
    return [tree.write("cam1", 30)]


def grow(tree: Tree) -> list[Path]:
    path = tree.path("cam1", 29)
    with path.open("ab") as f:
        f.write(b"\0" * 100)
    return [path]


def delete_oldest(tree: Tree) -> list[Path]:
    path = tree.path("cam1", 0)
    path.unlink()
    return [path]


def delete_middle(tree: Tree) -> list[Path]:
    path = tree.path("cam1", 12)
    path.unlink()
    return [path]


def folder_appears(tree: Tree) -> list[Path]:
    first = tree.write("newcam", 40)
    tree.write("newcam", 41)
    return [first.parent]  # files moved in with their folder: one event, for the folder


def folder_deleted(tree: Tree) -> list[Path]:
    folder = tree.path("cam2", 3).parent
    shutil.rmtree(folder)
    return [folder]


def renamed_into_place(tree: Tree) -> list[Path]:
    final = tree.path("cam1", 30)
    staging = final.with_name(".writing-" + final.name)
    staging.write_bytes(b"\0" * 10)
    staging.rename(final)
    return [staging, final]


def odd_names(tree: Tree) -> list[Path]:
    # Another extension beside the usual one (the same start twice), and an upper-case extension.
    return [tree.write("cam1", 31, ".ts"), tree.write("cam1", 31), tree.write("cam1", 32, ".MP4")]


CASES = [add, grow, delete_oldest, delete_middle, folder_appears, folder_deleted, renamed_into_place, odd_names]


@pytest.fixture(params=sorted(LAYOUTS))
def tree(request, tmp_path) -> Tree:
    tree = Tree(tmp_path / "rec", LAYOUTS[request.param])
    for camera in ("cam1", "cam2"):
        for i in range(30):
            tree.write(camera, i)
    age_folders(tree.root)
    return tree


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("how", ["events", "reconcile", "poll"])
def test_a_change_leaves_the_index_equal_to_a_fresh_walk(tree, case, how):
    index = make_index(tree.root, tree.layout.pattern)
    index.scan()
    before = contents(index)
    paths = case(tree)
    if how == "events":
        index.update_paths(paths)
    elif how == "reconcile":
        index.reconcile()
    else:
        index.poll([0])
        index.reconcile()  # polling looks at the newest folders; the reconcile at the rest
    fresh = make_index(tree.root, tree.layout.pattern)
    fresh.scan()
    assert contents(index) == contents(fresh)
    if case is not grow:
        assert contents(index) != before  # the case did change what is indexed
    assert index.status.walks == 1


@pytest.mark.parametrize("case", [add, renamed_into_place, folder_appears, grow], ids=lambda c: c.__name__)
def test_polling_alone_sees_changes_at_the_live_end(tree, case):
    # What a live incident needs: the newest folder, a new folder (camera, hour) and the newest segment.
    index = make_index(tree.root, tree.layout.pattern)
    index.scan()
    index.poll([0])  # the first poll learns the newest segments' sizes
    case(tree)
    touched = index.poll([0])
    fresh = make_index(tree.root, tree.layout.pattern)
    fresh.scan()
    assert contents(index) == contents(fresh)
    assert touched == ({"newcam"} if case is folder_appears else {"cam1"})


def test_reconcile_lists_only_the_folders_that_changed(tmp_path):
    tree = Tree(tmp_path / "rec", LAYOUTS["seed"])
    for camera in [f"cam{i}" for i in range(20)]:
        for i in range(10):
            tree.write(camera, i)
    age_folders(tree.root)
    index = make_index(tree.root, tree.layout.pattern)
    index.scan()
    assert index.reconcile() == set()
    assert index.folders_listed == 0
    tree.write("cam7", 10)
    (tree.path("cam7", 0)).unlink()
    assert index.reconcile() == {"cam7"}
    assert index.folders_listed == 1
    assert index.starts("cam7")[0] == T + timedelta(seconds=5)
    assert index.status.walks == 1


@pytest.mark.parametrize(
    ("pattern", "zone", "relpath", "exact"),
    [
        ("{camera_id}/{camera_id}_%Y%m%d_%H%M%S", "UTC", "c/c_20250829_143015.mp4", True),
        ("{camera_id}/%Y-%m-%d_%H-%M-%S-%f", "UTC", "c/2025-08-29_14-30-15-250000.mp4", True),
        ("%Y-%m-%d/%H/{camera_id}/%M.%S", "UTC", "2025-08-29/14/c/30.15.mp4", True),
        ("%Y-%m-%d/%H/{camera_id}/%M.%S", "Europe/Berlin", "2025-08-29/16/c/30.15.mp4", True),
        # The hour a DST change repeats round-trips (as its first occurrence); the hour it skips does not.
        ("{camera_id}/%Y%m%d_%H%M%S", "Europe/Berlin", "c/20251026_023000.mp4", True),
        ("{camera_id}/%Y%m%d_%H%M%S", "Europe/Berlin", "c/20250330_023000.mp4", False),
        ("{camera_id}/%s", "UTC", "c/1756477815.mp4", False),
        ("{camera_id}/%Y%m%dT%H%M%S%z", "UTC", "c/20250829T163015+0200.mp4", False),
    ],
)
def test_names_parse_to_the_same_start_as_the_layout_and_round_trip_where_they_can(pattern, zone, relpath, exact):
    layout = Layout.create(pattern, zone)
    codec = NameCodec(layout)
    parsed = codec.parse(relpath)
    expected = layout.parse(relpath)
    assert parsed is not None and expected is not None
    assert parsed[:2] == (expected[0], to_us(expected[1]))
    assert parsed[2] is exact
    if exact:
        assert codec.render(parsed[0], parsed[1], ".mp4") == relpath


@pytest.mark.parametrize(
    "relpath",
    ["c/c_20250829_146015.mp4", "c/c_20251329_143015.mp4", "c/c_20250829_143015.txt", "c/d_20250829_143015.mp4",
     "c/c_20250829_143015", "../c/c_20250829_143015.mp4"],
)  # fmt: skip
def test_names_that_are_not_recordings_are_not_parsed(relpath):
    layout = Layout.create("{camera_id}/{camera_id}_%Y%m%d_%H%M%S")
    assert NameCodec(layout).parse(relpath) is None
    assert layout.parse(relpath) is None


def test_frigate_hour_folders_cover_their_hour_in_the_layout_time_zone():
    codec = NameCodec(Layout.create("%Y-%m-%d/%H/{camera_id}/%M.%S", "Europe/Berlin"))
    lo, hi = codec.folder_span("2025-08-29/16/c")
    assert (lo, hi) == (to_us(datetime(2025, 8, 29, 14, tzinfo=UTC)), to_us(datetime(2025, 8, 29, 15, tzinfo=UTC)))


@pytest.mark.parametrize(("layout", "listed"), [("seed", 0), ("frigate", 0), ("mediamtx", 1)])
def test_polling_finds_the_next_segment_by_name_where_names_are_to_the_second(tmp_path, layout, listed):
    # 5,000 names in a folder cost milliseconds to list on every new segment; a name to the second can be guessed
    # from the last one and the segment length (a few stats). Names to the microsecond cannot: that folder is listed.
    tree, index = one_camera(tmp_path, layout)
    index.poll([0])
    tree.write("cam1", 30)
    if layout != "frigate":  # Frigate's oldest is in an older hour's folder, which the reconcile looks at
        tree.path("cam1", 0).unlink()
    assert index.poll([0]) == {"cam1"}
    assert index.folders_listed == listed
    fresh = make_index(tree.root, tree.layout.pattern)
    fresh.scan()
    assert contents(index) == contents(fresh)


MOUNTS = """\
/dev/vda1 / ext4 rw,relatime 0 0
nas:/export/nvr /mnt/nvr nfs4 rw,relatime,vers=4.2 0 0
//nas/cams /mnt/smb cifs rw,relatime 0 0
sshfs#me@host: /mnt/fuse fuse.sshfs rw 0 0
tmpfs /mnt/nvr/cache tmpfs rw 0 0
/dev/vdb1 /mnt/with\\040space ext4 rw 0 0
"""


@pytest.mark.parametrize(
    ("setting", "path", "mode"),
    [
        ("auto", "/srv/recordings", "events"),
        ("auto", "/mnt/nvr/camera1", "poll"),
        ("auto", "/mnt/smb", "poll"),
        ("auto", "/mnt/fuse/x", "poll"),
        ("auto", "/mnt/nvr/cache/x", "events"),  # the longest mount point wins
        ("auto", "/mnt/nvrx", "events"),  # a prefix of the name is not the mount
        ("auto", "/mnt/with space/rec", "events"),
        ("events", "/mnt/nvr", "events"),
        ("poll", "/srv/recordings", "poll"),
    ],
)
def test_watch_auto_polls_network_and_fuse_mounts(setting, path, mode):
    assert watch_mode(setting, Path(path), MOUNTS) == mode


def test_a_guess_that_misses_is_listed_by_a_hurried_poll_and_by_the_reconcile(tmp_path):
    # A recorder restarting leaves a hole: its next name is not one segment length on. The plain poll does not find
    # it by name; a poll for a camera with waiting jobs lists the folder, and so does the reconcile.
    tree, index = one_camera(tmp_path, "seed")
    index.poll([0])
    tree.write("cam1", 42)  # 60 s after the newest
    index.poll([0])
    assert len(index.segments("cam1")) == 30 and index.folders_listed == 0
    assert index.poll([0], {"cam1"}) == {"cam1"}
    assert len(index.segments("cam1")) == 31 and index.folders_listed == 1
    tree.write("cam1", 50)
    index.poll([0])
    assert index.reconcile() == {"cam1"}
    assert [s.start for s in index.segments("cam1")][-2:] == [T + timedelta(seconds=5 * 42), T + timedelta(seconds=250)]
