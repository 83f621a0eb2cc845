"""JobRunner.accept with real parts (SQLite store, recordings index, clipper): duplicates and redeliveries."""

from __future__ import annotations

from datetime import UTC

import pytest

from clipbridge.errors import ClipError
from clipbridge.handlers.clipper import Clipper
from clipbridge.handlers.ffmpeg import resolve_ffmpeg
from clipbridge.handlers.incident import IncidentIn
from clipbridge.handlers.index import RecordingsIndex
from clipbridge.handlers.jobs import JobRunner
from clipbridge.handlers.store import ReplyTarget, Store
from clipbridge.metrics import Metrics


def make_runner(config) -> tuple[JobRunner, Store]:
    store = Store(path=config.store.path)
    store.open()
    index = RecordingsIndex(config=config.recordings)
    index.scan()
    clipper = Clipper(index=index, clips=config.clips, recordings=config.recordings, ffmpeg=resolve_ffmpeg("auto"))
    runner = JobRunner(
        store=store, clipper=clipper, index=index, clips=config.clips, recordings=config.recordings,
        base_url="http://x", metrics=Metrics(), tz=UTC,
    )  # fmt: skip
    return runner, store


def test_redelivery_of_an_answered_event_gets_no_second_reply_but_a_new_request_does(make_config):
    runner, store = make_runner(make_config())
    event = IncidentIn(event_id="e1", camera_id="camera1", timestamp="2025-08-29T14:30:15", duration=20)
    new, _ = runner.prepare(event, topic_camera=None, topic="t", source="mqtt")
    target = ReplyTarget("replies/a", b"c1")
    [(job, created)] = runner.accept([(new, target)], [False])
    assert created
    # The job finishes and its reply is queued (as after a crash between commit and PUBACK, before redelivery).
    store.finish(job.clip_id, status="failed", result=None, error=ClipError("no_footage", "x"), files=[],
                 reply_payload=b"{}", completed_at="t")  # fmt: skip
    assert store.count_unsent() == 1
    again, _ = runner.prepare(event, topic_camera=None, topic="t", source="mqtt")
    [(dup, created)] = runner.accept([(again, target)], [True])  # the broker's redelivery (DUP)
    assert (dup.clip_id, created) == (job.clip_id, False)
    assert store.count_unsent() == 1, "a redelivery must not be answered twice"
    runner.accept([(again, target)], [False])  # the client asks again: it gets the answer again
    assert store.count_unsent() == 2
    runner.accept([(again, ReplyTarget("replies/b", b""))], [True])  # another requester of the same event
    assert store.count_unsent() == 3


def test_unknown_camera_and_unsafe_ids_are_refused_before_anything_is_stored(make_config):
    runner, store = make_runner(make_config())
    for camera, code in (("nosuch", "unknown_camera"), ("../x", "unsafe_camera_id")):
        with pytest.raises(ClipError) as err:
            runner.prepare(IncidentIn(camera_id=camera, timestamp="2025-08-29T14:30:15"), topic_camera=None,
                           topic="t", source="mqtt")  # fmt: skip
        assert err.value.code == code
    assert store.count_unfinished() == 0
