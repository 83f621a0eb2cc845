"""The job store's contract, run against both backends: SQLite (a file) and PostgreSQL (a throwaway cluster the
tests start, or PG_TEST_URL). Each case is one asyncio scenario over a fresh store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clipbridge.config import load_config
from clipbridge.errors import ClipError
from clipbridge.handlers.store import Admission, Hook, Instance, Reply, Store, make_store
from clipbridge.model import NewJob, ReplyTarget, StoredFile, Window

NOW = datetime.now(UTC).replace(microsecond=0)
PAST = Window(
    NOW - timedelta(minutes=10), NOW - timedelta(minutes=10, seconds=15), NOW - timedelta(minutes=9, seconds=55)
)


def job(clip_id: str, key: str, camera: str = "cam1", *, status: str = "pending", window: Window = PAST) -> NewJob:
    return NewJob(clip_id, key, None, camera, window, {"n": clip_id}, "mqtt", status)  # type: ignore[arg-type]


def answer(j, files) -> bytes:
    return f'{{"clip_id": "{j.clip_id}", "status": "{j.status}", "files": {len(files)}}}'.encode()


@dataclass(frozen=True)
class Backend:
    name: str
    env: dict[str, str]

    def make(self) -> Store:
        return make_store(load_config(None, env=self.env))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """An unopened store of this backend on a fresh database."""
    if request.param == "sqlite":
        return Backend("sqlite", {"CLIPBRIDGE__STORE__PATH": str(tmp_path / "jobs.db")})
    return Backend("postgresql", {"CLIPBRIDGE__STORE__URL": request.getfixturevalue("pg_url")})


def run(backend: Backend, scenario: Callable[[Store], Awaitable[None]]) -> None:
    async def go() -> None:
        store = backend.make()
        await store.open()
        try:
            await scenario(store)
        finally:
            await store.close()

    asyncio.run(go())


def test_admit_makes_one_job_per_dedupe_key_and_answers_as_asked(backend):
    async def scenario(store: Store) -> None:
        target = ReplyTarget("r/1", b"c1")
        batch = [
            Admission(job("a", "k1"), target, announce=True),
            Admission(job("b", "k1"), ReplyTarget("r/2", b""), announce=True),  # same event, another requester
            Admission(job("c", "k2"), None),
        ]
        first = await store.admit(batch, [Reply("errors", b"{}")], answer)
        assert [(a.job.clip_id, a.created) for a in first] == [("a", True), ("a", False), ("c", True)]
        assert await store.count_unsent() == 2  # the rejection and the announcement of the new job
        again = await store.admit([Admission(job("z", "k1"), target)], [], answer)
        assert [(a.job.clip_id, a.created) for a in again] == [("a", False)]
        assert await store.count_unsent() == 2, "an unfinished duplicate is answered when its job finishes"

    run(backend, scenario)


def test_a_finished_jobs_duplicate_is_answered_unless_it_is_a_copy_of_an_answered_request(backend):
    async def scenario(store: Store) -> None:
        target = ReplyTarget("r/1", b"c1")
        await store.admit([Admission(job("a", "k1"), target)], [], answer)
        claimed = await store.claim("i1", None, 30)
        assert claimed is not None
        assert await store.finish("a", "i1", status="failed", record=None, error=ClipError("no_footage", "x"),
                                  files=[], reply_payload=b"done", completed_at=NOW)  # fmt: skip
        assert await store.count_unsent() == 1  # the finish answers the target
        await store.admit([Admission(job("x", "k1"), target, redelivered=True)], [], answer)
        assert await store.count_unsent() == 1, "a copy of the answered request is not answered twice"
        await store.admit([Admission(job("x", "k1"), target)], [], answer)
        assert await store.count_unsent() == 2, "the same requester asking again gets the answer again"
        await store.admit([Admission(job("x", "k1"), ReplyTarget("r/other"), redelivered=True)], [], answer)
        assert await store.count_unsent() == 3, "a new requester of a finished event is answered at once"

    run(backend, scenario)


def test_a_rejection_with_a_dedupe_key_is_queued_once(backend):
    async def scenario(store: Store) -> None:
        twice = [Reply("errors", b"bad", dedupe_key="h1"), Reply("errors", b"bad", dedupe_key="h1")]
        await store.admit([], twice, answer)
        await store.admit([], [Reply("errors", b"bad", dedupe_key="h1"), Reply("errors", b"other")], answer)
        assert await store.count_unsent() == 2
        assert await store.prune_rejections(NOW + timedelta(days=2)) == 1
        await store.admit([], [Reply("errors", b"bad", dedupe_key="h1")], answer)
        assert await store.count_unsent() == 3

    run(backend, scenario)


def test_claims_take_the_oldest_due_job_of_the_given_cameras_once(backend):
    async def scenario(store: Store) -> None:
        for clip_id, camera in (("a", "cam1"), ("b", "cam2"), ("c", "cam1")):
            await store.admit([Admission(job(clip_id, clip_id, camera), None)], [], answer)
        assert await store.claim("i1", [], 30) is None
        first = await store.claim("i1", ["cam2"], 30)
        assert first is not None and (first.clip_id, first.status, first.claimed_by, first.attempts) == (
            "b", "processing", "i1", 1,
        )  # fmt: skip
        assert (await store.claim("i2", None, 30)).clip_id == "a"  # type: ignore[union-attr]
        await store.release("a", "i2", status="pending", delay_seconds=3600)  # a retry an hour away
        third = await store.claim("i2", None, 30)
        assert third is not None and third.clip_id == "c"
        assert await store.claim("i2", None, 30) is None
        assert await store.count_busy() == 3

    run(backend, scenario)


def test_an_expired_lease_is_taken_over_and_the_first_instance_cannot_finish(backend):
    async def scenario(store: Store) -> None:
        await store.admit([Admission(job("a", "k"), ReplyTarget("r/1"))], [], answer)
        mine = await store.claim("dead", None, 0.0)  # a lease that is over at once: its instance stopped renewing
        assert mine is not None
        # (PostgreSQL takes over only once it has answered for a lease's length, so an outage's end does not look
        # like every peer's death: a zero lease here means at once.)
        taken = await store.claim("alive", None, 0.0)
        assert taken is not None and taken.clip_id == "a" and taken.attempts == 2
        assert not await store.renew("a", "dead", 30)
        assert await store.renew("a", "alive", 30)
        args = {
            "status": "done",
            "record": None,
            "error": None,
            "files": [],
            "reply_payload": b"x",
            "completed_at": NOW,
        }
        assert not await store.finish("a", "dead", **args)  # type: ignore[arg-type]
        assert await store.finish("a", "alive", **args)  # type: ignore[arg-type]
        assert await store.count_unsent() == 1, "one reply, from the instance that finished"
        assert not await store.finish("a", "alive", **args), "a finished job stays finished"  # type: ignore[arg-type]

    run(backend, scenario)


def test_waiting_jobs_are_woken_and_a_restarted_instance_releases_what_it_ran(backend):
    async def scenario(store: Store) -> None:
        await store.admit([Admission(job("w", "w", "cam1", status="waiting"), None),
                           Admission(job("r", "r", "cam2"), None)], [], answer)  # fmt: skip
        assert [j.clip_id for j in await store.waiting(["cam1"])] == ["w"]
        assert await store.waiting(["cam2"]) == []
        assert (await store.claim("i1", None, 30)).clip_id == "r"  # type: ignore[union-attr]
        assert await store.claim("i1", None, 30) is None, "a waiting job is not claimable"
        assert await store.wake(["w", "r"]) == 1
        assert (await store.claim("i2", None, 30)).clip_id == "w"  # type: ignore[union-attr]
        # i1 restarted: what it was cutting is pending again. A SQLite file has one instance: all of it is.
        assert await store.recover("i1") == (1 if backend.name == "postgresql" else 2)
        again = await store.get("r")
        assert again is not None and again.status == "pending" and again.claimed_by is None

    run(backend, scenario)


def test_reply_claims_last_as_long_as_their_instance_lives(backend):
    async def scenario(store: Store) -> None:
        await store.admit([], [Reply("t/1", b"1"), Reply("t/2", b"2")], answer)
        await store.heartbeat(Instance("i1", "http://one"))
        await store.heartbeat(Instance("i2", "http://two"))
        rows = await store.claim_replies("i1")
        assert [r.topic for r in rows] == ["t/1", "t/2"]
        assert await store.claim_replies("i2") == [], "i1 is alive: its claims hold"
        await store.leave("i1")  # i1 stopped (or its heartbeat went stale)
        assert [r.topic for r in await store.claim_replies("i2")] == ["t/1", "t/2"]
        await store.mark_sent([r.id for r in rows])
        assert await store.count_unsent() == 0
        assert [p.id for p in await store.peers()] == ["i2"]

    run(backend, scenario)


def test_files_record_their_instance_and_retention_sees_only_its_own(backend, tmp_path):
    async def scenario(store: Store) -> None:
        for clip_id, owner in (("a", "i1"), ("b", "i2")):
            await store.admit([Admission(job(clip_id, clip_id), None)], [], answer)
            await store.claim(owner, None, 30)
            video = StoredFile(f"{clip_id}.mp4", clip_id, "video", tmp_path / f"{clip_id}.mp4", 100)
            await store.finish(clip_id, owner, status="done", record=None, error=None, files=[video],
                               reply_payload=b"", completed_at=NOW)  # fmt: skip
        found = await store.file("b.mp4")
        assert found is not None and (found.clip_id, found.instance_id, found.size) == ("b", "i2", 100)
        assert await store.file("../b.mp4") is None
        assert await store.stored_bytes("i1") == [("a", 100)]
        assert await store.expirable(created_before=NOW + timedelta(days=1), instance="i2") == ["b"]

    if backend.name == "sqlite":
        pytest.skip("one instance per SQLite file: every file is this instance's (retention: test_http.py)")
    run(backend, scenario)


def test_files_in_the_bucket_keep_their_key_and_every_instance_retains_them(backend, tmp_path):
    async def scenario(store: Store) -> None:
        await store.admit([Admission(job("s", "s"), None)], [], answer)
        await store.claim("i1", None, 30)
        video = StoredFile("s.mp4", "s", "video", tmp_path / "s.mp4", 100, object_key="clips/cam/2025/08/29/s.mp4")
        await store.finish("s", "i1", status="done", record=None, error=None, files=[video], reply_payload=b"",
                           completed_at=NOW)  # fmt: skip
        found = await store.file("s.mp4")
        assert found is not None and found.object_key == "clips/cam/2025/08/29/s.mp4"
        assert [f.object_key for f in await store.files_of("s")] == ["clips/cam/2025/08/29/s.mp4"]
        # A bucket is every instance's: another instance's sweep counts and expires it.
        assert await store.stored_bytes("i2") == [("s", 100)]
        assert await store.expirable(created_before=NOW + timedelta(days=1), instance="i2") == ["s"]

    run(backend, scenario)


def test_exclusive_admits_one_holder_at_a_time_across_instances(backend):
    async def scenario(store: Store) -> None:
        async with store.exclusive("retention") as first:
            assert first
            async with store.exclusive("retention") as second:  # another connection, as another instance has
                assert second is (backend.name == "sqlite"), "one instance per SQLite file: nobody to exclude"
        async with store.exclusive("retention") as again:
            assert again, "released after use"

    run(backend, scenario)


def test_three_instances_starting_together_migrate_once(pg_url):
    async def scenario() -> None:
        stores = [Backend("postgresql", {"CLIPBRIDGE__STORE__URL": pg_url}).make() for _ in range(3)]
        await asyncio.gather(*(s.open() for s in stores))
        try:
            await stores[0].admit([Admission(job("a", "k"), None)], [], answer)
            assert (await stores[2].get("a")) is not None
        finally:
            await asyncio.gather(*(s.close() for s in stores))

    asyncio.run(scenario())


def test_notifications_tell_other_instances_about_jobs_and_replies(pg_url):
    async def scenario() -> None:
        here, there = (
            Backend("postgresql", {"CLIPBRIDGE__STORE__URL": pg_url, "CLIPBRIDGE__INSTANCE__ID": name}).make()
            for name in ("here", "there")
        )
        await here.open()
        await there.open()
        stream = there.notifications()
        pending = asyncio.ensure_future(anext(stream))
        # LISTEN has no "ready" signal: queue replies (each notifies) until the listener hears one.
        for _ in range(100):
            await here.admit([], [Reply("t", b"x")], answer)
            await asyncio.wait({pending}, timeout=0.2)
            if pending.done():
                break
        assert pending.result() == "outbox"
        await here.admit([Admission(job("a", "k"), None)], [], answer)
        heard = await asyncio.wait_for(_until(stream, "jobs"), timeout=10)
        assert heard == "jobs"
        await stream.aclose()
        await here.close()
        await there.close()

    asyncio.run(scenario())


async def _until(stream, wanted: str) -> str:
    async for notice in stream:
        if notice == wanted:
            return notice
    raise AssertionError("the notification stream ended")


def test_webhook_deliveries_are_queued_with_their_state_change_and_claimed_once(backend):
    async def scenario(store: Store) -> None:
        await store.admit([Admission(job("a", "k1"), None)], [], answer)
        assert await store.claim("i1", None, 30) is not None
        hooks = [Hook("w1", "done", b'{"a": 1}', "a"), Hook("w2", "done", b'{"a": 1}', "a")]
        assert await store.finish("a", "i1", status="done", record=None, error=None, files=[], reply_payload=b"{}",
                                  completed_at=NOW, hooks=hooks)  # fmt: skip
        # A finish refused (the job is no longer ours) queues nothing either.
        assert not await store.finish("a", "i2", status="done", record=None, error=None, files=[],
                                      reply_payload=b"{}", completed_at=NOW, hooks=hooks)  # fmt: skip
        rejection = Reply("errors", b"bad", dedupe_key="h1", hooks=(Hook("w1", "rejected", b"bad"),))
        await store.admit([], [rejection, rejection], answer)  # the second copy is not queued, nor its hook
        assert await store.count_hooks_pending() == 3
        first = await store.claim_hooks("i1", limit=10, lease_seconds=30)
        assert [(r.webhook, r.event, r.body, r.attempts) for r in first] == [
            ("w1", "done", b'{"a": 1}', 0), ("w2", "done", b'{"a": 1}', 0), ("w1", "rejected", b"bad", 0),
        ]  # fmt: skip
        assert await store.claim_hooks("i2", limit=10, lease_seconds=30) == [], "claimed rows are not taken twice"
        await store.hook_done(first[0].id, result="delivered")
        await store.hook_done(first[1].id, result="failed", error="HTTP 400")
        await store.hook_retry(first[2].id, delay_seconds=3600, error="HTTP 503")
        assert await store.count_hooks_pending() == 1
        assert await store.claim_hooks("i2", limit=10, lease_seconds=30) == [], "a retry waits for its due time"
        await store.hook_retry(first[2].id, delay_seconds=0, error="HTTP 503")
        (again,) = await store.claim_hooks("i2", limit=10, lease_seconds=30)
        assert (again.id, again.attempts) == (first[2].id, 2)
        await store.expire("a", hooks=[Hook("w1", "expired", b"gone", "a")])
        assert await store.count_hooks_pending() == 2

    run(backend, scenario)


def test_a_dead_senders_webhook_claims_lapse_and_a_restart_releases_its_own(backend):
    async def scenario(store: Store) -> None:
        await store.admit([], [Reply("errors", b"x", hooks=(Hook("w1", "rejected", b"x"),))], answer)
        assert len(await store.claim_hooks("i1", limit=10, lease_seconds=0.05)) == 1
        lapsed: list = []
        for _ in range(200):  # the 50 ms lease passes (the database's clock for PostgreSQL)
            if lapsed := await store.claim_hooks("i2", limit=10, lease_seconds=30):
                break
            await asyncio.sleep(0.02)  # sleep-ok: waiting for a lease to expire, bounded
        assert len(lapsed) == 1, "another sender takes over a lapsed claim"
        await store.recover("i2")
        assert len(await store.claim_hooks("i3", limit=10, lease_seconds=30)) == 1, "a restart releases its claims"

    run(backend, scenario)
