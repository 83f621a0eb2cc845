"""JobRunner.admit with real parts (SQLite store, recordings index, clipper): duplicates and redeliveries."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from clipbridge.errors import ClipError
from clipbridge.handlers.clipper import Clipper
from clipbridge.handlers.ffmpeg import resolve_ffmpeg
from clipbridge.handlers.incident import IncidentIn
from clipbridge.handlers.index import RecordingsIndex
from clipbridge.handlers.instances import Membership
from clipbridge.handlers.jobs import JobRunner
from clipbridge.handlers.replies import HttpLinks
from clipbridge.handlers.store import Admission, Store, make_store
from clipbridge.metrics import Metrics
from clipbridge.model import ReplyTarget


async def make_runner(config) -> tuple[JobRunner, Store]:
    store = make_store(config)
    await store.open()
    index = RecordingsIndex(config=config.recordings)
    index.scan()
    clipper = Clipper(index=index, clips=config.clips, recordings=config.recordings, ffmpeg=resolve_ffmpeg("auto"))
    membership = Membership(store=store, instance_id="i1", base_url="http://x", cameras=dict, every=5)
    runner = JobRunner(
        store=store, clipper=clipper, index=index, clips=config.clips, recordings=config.recordings,
        instance=config.instance, membership=membership, links=HttpLinks("http://x"), metrics=Metrics(),
        replies=asyncio.Event(),
    )  # fmt: skip
    return runner, store


async def admit(runner: JobRunner, event: IncidentIn, target: ReplyTarget, *, redelivered: bool):
    new = runner.prepare(event, topic_camera=None, topic="t", source="mqtt")
    return await runner.admit([Admission(new, target, redelivered=redelivered)])


def test_redelivery_of_an_answered_event_gets_no_second_reply_but_a_new_request_does(make_config):
    async def scenario() -> None:
        runner, store = await make_runner(make_config())
        event = IncidentIn(event_id="e1", camera_id="camera1", timestamp="2025-08-29T14:30:15", duration=20)
        target = ReplyTarget("replies/a", b"c1")
        [first] = await admit(runner, event, target, redelivered=False)
        assert first.created
        # The job finishes and its reply is queued (as after a crash between commit and PUBACK, before redelivery).
        await store.finish(first.job.clip_id, "i1", status="failed", record=None, error=ClipError("no_footage", "x"),
                           files=[], reply_payload=b"{}", completed_at=datetime.now(UTC))  # fmt: skip
        assert await store.count_unsent() == 1
        [dup] = await admit(runner, event, target, redelivered=True)  # the broker's redelivery (DUP)
        assert (dup.job.clip_id, dup.created) == (first.job.clip_id, False)
        assert await store.count_unsent() == 1, "a redelivery must not be answered twice"
        await admit(runner, event, target, redelivered=False)  # the client asks again: it gets the answer again
        assert await store.count_unsent() == 2
        await admit(runner, event, ReplyTarget("replies/b", b""), redelivered=True)  # another requester of the event
        assert await store.count_unsent() == 3

    asyncio.run(scenario())


def test_unknown_camera_and_unsafe_ids_are_refused_before_anything_is_stored(make_config):
    async def scenario() -> None:
        runner, store = await make_runner(make_config())
        for camera, code in (("nosuch", "unknown_camera"), ("../x", "unsafe_camera_id")):
            with pytest.raises(ClipError) as err:
                runner.prepare(IncidentIn(camera_id=camera, timestamp="2025-08-29T14:30:15"), topic_camera=None,
                               topic="t", source="mqtt")  # fmt: skip
            assert err.value.code == code
        assert await store.count_unfinished() == 0

    asyncio.run(scenario())


def test_a_naive_event_time_is_read_in_the_time_zone_of_the_cameras_own_source(make_config):
    runner, _ = asyncio.run(make_runner(make_config()))
    berlin = runner.prepare(IncidentIn(camera_id="cam3", timestamp="2025-08-29T16:30:15"), topic_camera=None,
                            topic="t", source="mqtt")  # fmt: skip
    utc = runner.prepare(IncidentIn(camera_id="camera1", timestamp="2025-08-29T14:30:15"), topic_camera=None,
                         topic="t", source="mqtt")  # fmt: skip
    assert berlin.window.incident == utc.window.incident == datetime(2025, 8, 29, 14, 30, 15, tzinfo=UTC)
