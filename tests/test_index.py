import os
from datetime import UTC, datetime, timedelta

from clipbridge.config import RecordingsConfig, SourceConfig
from clipbridge.handlers.index import RecordingsIndex
from clipbridge.handlers.layout import Layout

SEED = "{camera_id}/{camera_id}_%Y%m%d_%H%M%S"
T = datetime(2025, 8, 29, 14, 30, tzinfo=UTC)


def make_index(root, layout=SEED, settle=10.0):
    return RecordingsIndex(
        config=RecordingsConfig(sources=[SourceConfig(root=root, layout=layout)], settle_seconds=settle)
    )


def touch(root, camera, start, layout=SEED, size=0):
    path = root / Layout.create(layout).render(camera, start)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    return path


def test_scan_of_many_names_probes_nothing_and_lookups_bisect(tmp_path):
    # 20,000 empty files over 4 cameras: names are enough to index; nothing is opened.
    for cam in range(4):
        for i in range(5000):
            touch(tmp_path, f"cam{cam}", T + timedelta(seconds=5 * i))
    (tmp_path / "cam0" / "notes.txt").write_text("not a recording")
    index = make_index(tmp_path)
    assert index.scan() == 20000
    assert index.probes.probes == 0
    assert index.cameras() == ["cam0", "cam1", "cam2", "cam3"]
    found = index.candidates("cam2", T + timedelta(seconds=102), T + timedelta(seconds=121))
    # The segment starting before the window (100 s) and those starting inside it (105..120 s).
    assert [(s.start - T).total_seconds() for s in found] == [100, 105, 110, 115, 120]
    assert index.probes.probes == 0


def test_candidates_before_the_first_and_after_the_last(tmp_path):
    for i in range(3):
        touch(tmp_path, "c", T + timedelta(seconds=5 * i))
    index = make_index(tmp_path)
    index.scan()
    assert [s.start for s in index.candidates("c", T - timedelta(seconds=60), T - timedelta(seconds=30))] == []
    assert len(index.candidates("c", T + timedelta(seconds=60), T + timedelta(seconds=70))) == 1  # the last one
    assert index.candidates("nope", T, T + timedelta(seconds=5)) == []


def test_newest_segment_is_complete_once_settled_or_followed(tmp_path):
    first = touch(tmp_path, "c", T)
    index = make_index(tmp_path, settle=10)
    index.scan()
    seg = index.segments("c")[0]
    mtime = datetime.fromtimestamp(first.stat().st_mtime_ns / 1e9, UTC)
    assert index.settles_at(seg) == mtime + timedelta(seconds=10)
    # A later segment appearing makes it complete at once.
    second = touch(tmp_path, "c", T + timedelta(seconds=5))
    assert index.update_paths([second]) == {"c"}
    assert index.settles_at(seg) is None  # complete now
    # Deleting it (recorder retention) takes it out of the index.
    first.unlink()
    index.update_paths([first])
    assert [s.path for s in index.segments("c")] == [second]


def test_missing_root_is_an_empty_index_not_a_crash(tmp_path):
    index = make_index(tmp_path / "absent")
    assert index.scan() == 0
    assert index.cameras() == []


def test_probe_cache_is_keyed_by_size_and_mtime(footage):
    src = footage.files["camera1"][0]
    index = RecordingsIndex(config=RecordingsConfig(sources=[SourceConfig(root=footage.seed_root, layout=SEED)]))
    index.scan()
    seg = next(s for s in index.segments("camera1") if s.path == src)
    first = index.probe(seg)
    assert index.probe(seg) is first and index.probes.probes == 1
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    try:
        assert index.probe(seg) == first
        assert index.probes.probes == 2
    finally:
        os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_new_camera_folder_is_walked_when_its_event_arrives(tmp_path):
    # A recorder creates camera/ and moves the first segment in before a recursive watch can see it:
    # the only event is the folder's, and the index must still find the file.
    index = make_index(tmp_path)
    index.scan()
    first = touch(tmp_path, "newcam", T)
    assert index.update_paths([first.parent]) == {"newcam"}
    assert [s.path for s in index.segments("newcam")] == [first]


def test_an_event_during_a_rescan_is_not_lost(tmp_path, monkeypatch):
    # Fault seam: the walk is wrapped so that a recorder writes a segment, and its event is handled, after the
    # walk has passed that folder and before the rescan swaps its result in (the race a real rescan can lose).
    import clipbridge.handlers.index.sync as sync_module

    touch(tmp_path, "c", T)
    index = make_index(tmp_path)
    index.scan()
    real_walk = sync_module.walk

    def walk_then_event(*args):
        found = real_walk(*args)
        late = touch(tmp_path, "c", T + timedelta(seconds=5))
        index.update_paths([late])
        return found

    monkeypatch.setattr(sync_module, "walk", walk_then_event)
    index.scan()
    assert [(s.start - T).total_seconds() for s in index.segments("c")] == [0, 5]
