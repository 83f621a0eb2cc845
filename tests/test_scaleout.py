"""Several `clipbridge run` instances on one PostgreSQL and one mosquitto behave as one service: every event one job,
one cut, answered; a dead instance's work taken over; each camera cut where its footage is.

All real: a throwaway PostgreSQL cluster (tests/pgcluster.py), our own mosquitto, the real service processes,
FFmpeg behind a wrapper that logs each run (the seam that lets a test count cuts).
"""

from __future__ import annotations

from collections import Counter

import httpx

from tests.harness import TestClient, poll
from tests.scaleout import camera_root, collect, counting_ffmpeg, cut_counts, event
from tests.test_reliability import replies_until_sentinel


def test_three_instances_make_one_job_one_cut_and_one_answer_per_event(cluster, footage, prefix, tmp_path):
    cameras = [f"cam{i:02d}" for i in range(30)]
    root = camera_root(tmp_path, footage, cameras)
    ffmpeg, runs = counting_ffmpeg(tmp_path)
    services = [cluster.instance(f"i{n}", root, ffmpeg=ffmpeg) for n in range(3)]
    first = TestClient(cluster.broker.port, subscribe=[f"{prefix}/r/a/#"])
    for i in range(300):
        camera = cameras[i % 30]
        first.publish(
            f"{prefix}/cameras/{camera}/incidents", event(camera, f"e{i}"), response_topic=f"{prefix}/r/a/{i}"
        )
    answers = collect(first, 300)
    assert sorted(answers) == sorted(f"{prefix}/r/a/{i}" for i in range(300)), "every event answered once"
    clip_ids = {topic: replies[0]["clip_id"] for topic, replies in answers.items()}
    assert all(r[0]["status"] == "done" for r in answers.values())
    assert len(set(clip_ids.values())) == 300

    # The same 30 events again, from other publishers: the existing clips, at once, no new cut.
    second = TestClient(cluster.broker.port, subscribe=[f"{prefix}/r/b/#"])
    for i in range(30):
        camera = cameras[i % 30]
        second.publish(f"{prefix}/clips/requests", event(camera, f"e{i}"), response_topic=f"{prefix}/r/b/{i}")
    again = collect(second, 30)
    assert {t: r[0]["clip_id"] for t, r in again.items()} == {f"{prefix}/r/b/{i}": clip_ids[f"{prefix}/r/a/{i}"]
                                                             for i in range(30)}  # fmt: skip

    with httpx.Client(timeout=30) as http:
        assert http.get(f"{services[2].base_url}/clips", params={"limit": 1}).json()["total"] == 300
        # Any instance answers for any clip; the one holding the file serves it, the others redirect there.
        clip = http.get(f"{services[0].base_url}/clips/{clip_ids[f'{prefix}/r/a/7']}").json()
        path = f"/videos/{clip['video_file']}"
        got = {s.base_url: http.get(s.base_url + path) for s in services}
        holders = [url for url, r in got.items() if r.status_code == 200]
        assert len(holders) == 1 and got[holders[0]].content[4:8] == b"ftyp"
        assert all(r.status_code == 307 and r.headers["location"] == holders[0] + path
                   for url, r in got.items() if url != holders[0])  # fmt: skip
        # The reply came from the instance that cut the clip: its link needs no redirect.
        link = answers[f"{prefix}/r/a/7"][0]["download_url"]
        assert link.split("?")[0] == holders[0] + path
        # Signed by the key the instances share in the store: another instance redirects it with its signature.
        other = next(s.base_url for s in services if s.base_url != holders[0])
        moved = http.get(other + path + "?" + link.split("?")[1])
        assert moved.status_code == 307 and moved.headers["location"] == link
    counts = cut_counts(runs)
    assert set(counts) == set(clip_ids.values()) and max(counts.values()) == 1, "no event was cut twice"
    assert len(cluster.clip_files()) == 300
    spread = Counter(p.parent.parent.name for p in cluster.clip_files())
    assert len(spread) == 3, f"all three instances cut clips: {spread}"
    for s in services:
        assert s.stop() == 0
    assert replies_until_sentinel(first, f"{prefix}/r/a/0") == [], "no event answered twice"


def test_a_job_killed_with_its_instance_is_taken_over_after_the_lease(cluster, footage, prefix, tmp_path):
    root = camera_root(tmp_path, footage, ["camx"])
    marker = tmp_path / "ffmpeg-started"
    (tmp_path / "hang").mkdir()
    hanging, _ = counting_ffmpeg(tmp_path / "hang", hang_marker=marker)
    counting, runs = counting_ffmpeg(tmp_path)
    first = cluster.instance("a", root, ffmpeg=hanging)
    client = TestClient(cluster.broker.port, subscribe=[f"{prefix}/r/#"])
    client.publish(f"{prefix}/clips/requests", event("camx", "take-me"), response_topic=f"{prefix}/r/1")
    poll(marker.exists, timeout=60)  # instance a is cutting (hung)
    second = cluster.instance("b", root, ffmpeg=counting)
    first.kill9()
    reply = client.expect_json(timeout=60)
    assert reply["status"] == "done" and reply["download_url"].startswith(second.base_url)
    assert list(cut_counts(runs).values()) == [1]
    assert [p.parent.parent.name for p in cluster.clip_files()] == ["b"]
    assert second.stop() == 0
    assert replies_until_sentinel(client, f"{prefix}/r/1") == [], "exactly one reply"


def test_each_camera_is_cut_by_the_instance_that_records_it(cluster, footage, prefix, tmp_path):
    site_a = camera_root(tmp_path / "site-a", footage, ["cam1", "cam2"])
    site_b = camera_root(tmp_path / "site-b", footage, ["cam3", "cam4"])
    a = cluster.instance("a", site_a)
    b = cluster.instance("b", site_b)
    poll(lambda: len(httpx.get(f"{a.base_url}/health", timeout=10).json()["components"]["instances"]["live"]) == 2,
         timeout=30)  # fmt: skip
    client = TestClient(cluster.broker.port, subscribe=[f"{prefix}/r/#"])
    for camera in ("cam1", "cam2", "cam3", "cam4"):
        client.publish(
            f"{prefix}/clips/requests", event(camera, f"aff-{camera}"), response_topic=f"{prefix}/r/{camera}"
        )
    replies = {r["camera_id"]: r for r in (client.expect_json(timeout=60) for _ in range(4))}
    for camera, holder in (("cam1", a), ("cam2", a), ("cam3", b), ("cam4", b)):
        assert replies[camera]["status"] == "done", replies[camera]
        assert replies[camera]["download_url"].startswith(holder.base_url + "/")
    assert a.stop() == 0 and b.stop() == 0
    # No rejection from the instance that does not record a camera, no second answer.
    assert replies_until_sentinel(client, f"{prefix}/r/cam1") == []
