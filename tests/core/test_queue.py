"""The durable queue on a real database file: order, leases, retries, recovery, no double claims."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest

from chatplex.core.db import SCHEMA_VERSION, LeaseLost, Store, StoreError
from chatplex.core.models import JobState, MessageState, Priority, SessionStatus
from chatplex.core.queue import JobQueue, backoff
from tests.helpers import env_with_src


@pytest.fixture
async def store(tmp_path):
    async with await Store.open(tmp_path / "q.db") as s:
        yield s


async def session(store, title="s"):
    return (await store.create_session(title, "fake", "m")).id


async def test_claims_high_before_low_then_oldest(store):
    q = JobQueue(store)
    a, b, c = [await session(store, t) for t in "abc"]
    low1 = (await q.enqueue(a, "1", Priority.LOW))[2]
    low2 = (await q.enqueue(b, "2", Priority.LOW))[2]
    high = (await q.enqueue(c, "3", Priority.HIGH))[2]
    order = [(await q.claim())[0].id for _ in range(3)]
    assert order == [high.id, low1.id, low2.id]
    assert await q.claim() is None


async def test_one_job_per_session_at_a_time_in_order(store):
    q = JobQueue(store)
    s = await session(store)
    first = (await q.enqueue(s, "1", Priority.LOW))[2]
    second = (await q.enqueue(s, "2", Priority.HIGH))[2]
    job, _ = await q.claim()
    assert job.id == first.id
    assert await q.claim() is None  # the second waits for the first's reply
    await q.complete(job, "done", unread=False, usage=(1, 1), finish_reason="stop")
    assert (await q.claim())[0].id == second.id


async def test_run_after_is_respected(store):
    q = JobQueue(store, backoff_base=0.2)
    s = await session(store)
    await q.enqueue(s, "x", Priority.LOW)
    job, _ = await q.claim()
    await q.fail(job, "", "HTTP 500", retryable=True, unread=False)
    assert await q.claim() is None
    wait = await store.next_run_after() - time.time()
    assert 0 < wait <= 0.21
    await asyncio.wait_for(q.wait(q.token(), wait), 1)
    again, _ = await q.claim()
    assert again.id == job.id and again.attempts == 2


async def test_only_the_lease_owner_completes(store):
    mine, theirs = JobQueue(store, lease=0.0), JobQueue(store, lease=0.0)
    s = await session(store)
    await mine.enqueue(s, "x", Priority.LOW)
    job, _ = await mine.claim()
    assert await theirs.recover() == []  # seen expired once: not yet abandoned
    recovered = await theirs.recover()  # lease 0: unrenewed for a whole lease already
    assert [j.id for j, _, _ in recovered] == [job.id]
    job2, _ = await theirs.claim()
    assert await mine.heartbeat_many([(job, "late text")]) == {job.id}  # lost: not written
    with pytest.raises(LeaseLost):
        await mine.complete(job, "second reply", unread=False, usage=(None, None), finish_reason="stop")
    _, msg, _ = await theirs.complete(job2, "the reply", unread=False, usage=(None, None), finish_reason="stop")
    assert msg.content == "the reply" and msg.state is MessageState.COMPLETE


async def test_retries_until_max_attempts_then_fails_with_error_kept(store):
    q = JobQueue(store, max_attempts=2, backoff_base=0.0)
    s = await session(store)
    await q.enqueue(s, "x", Priority.LOW)
    job, _ = await q.claim()
    (j, m, sess) = await q.fail(job, "", "HTTP 503", retryable=True, unread=False)
    assert j.state is JobState.QUEUED and sess.status is SessionStatus.QUEUED
    job, _ = await q.claim()
    (j, m, sess) = await q.fail(job, "", "HTTP 503", retryable=True, unread=True)
    assert j.state is JobState.FAILED and j.attempts == 2 and j.last_error == "HTTP 503"
    assert m.state is MessageState.ERROR and sess.status is SessionStatus.ERROR and sess.unread == 1


async def test_give_back_does_not_spend_an_attempt_and_keeps_partial(store):
    q = JobQueue(store)
    s = await session(store)
    await q.enqueue(s, "x", Priority.LOW)
    job, _ = await q.claim()
    assert await q.heartbeat_many([(job, "partial ")]) == set()
    j, m, sess = await q.give_back(job, "partial text", "preempted")
    assert j.state is JobState.QUEUED and j.attempts == 0
    assert m.content == "partial text" and m.state is MessageState.INTERRUPTED
    assert sess.status is SessionStatus.INTERRUPTED
    job, _ = await q.claim()  # regenerating replaces the partial
    assert (await store.get_message(job.message_id)).content == ""


async def test_cancel_queued_and_reprioritise_and_stats(store):
    q = JobQueue(store)
    a, b = await session(store), await session(store)
    ja = (await q.enqueue(a, "x", Priority.LOW))[2]
    jb = (await q.enqueue(b, "y", Priority.LOW))[2]
    await q.reprioritise(b)
    stats = await q.stats()
    assert (stats.queued_high, stats.queued_low) == (1, 1)
    await q.cancel(ja.id)
    assert (await store.get_job(ja.id)).state is JobState.CANCELLED
    assert (await q.claim())[0].id == jb.id


async def test_prune_removes_only_old_finished_jobs(store):
    q = JobQueue(store)
    s = await session(store)
    await q.enqueue(s, "x", Priority.LOW)
    job, _ = await q.claim()
    await q.complete(job, "r", unread=False, usage=(None, None), finish_reason="stop")
    await q.enqueue(s, "y", Priority.LOW)
    assert await q.prune(3600) == 0
    assert await q.prune(-1) == 1
    assert len(await store.jobs()) == 1
    assert len(await store.messages(s)) == 4  # messages are never pruned with jobs


async def test_enqueue_wakes_a_waiting_worker_without_polling(store):
    q = JobQueue(store)
    s = await session(store)
    token = q.token()
    waiter = asyncio.create_task(q.wait(token, None))  # no timeout: only notify can end it
    await asyncio.sleep(0)
    await q.enqueue(s, "x", Priority.LOW)
    await asyncio.wait_for(waiter, 1)


def test_backoff_grows_with_jitter_and_honours_retry_after():
    assert backoff(3, retry_after=12) == 12
    delays = [backoff(n, base=1.0, cap=60) for n in (1, 2, 3, 4)]
    for n, d in enumerate(delays, start=1):
        assert 2 ** (n - 1) / 2 <= d <= 2 ** (n - 1)
    assert backoff(20, base=1.0, cap=60) <= 60


CLAIMER = """
import asyncio, sys, json
from chatplex.core.db import Store
from chatplex.core.queue import JobQueue
async def main():
    store = await Store.open(sys.argv[1])
    q = JobQueue(store)
    got = []
    print("ready", flush=True)
    sys.stdin.readline()  # all claimers start together
    while True:
        c = await q.claim()
        if c is None:
            break
        await q.complete(c[0], "r", unread=False, usage=(None, None), finish_reason="stop")
        got.append(c[0].id)
    await store.close()
    print(json.dumps(got))
asyncio.run(main())
"""


async def test_two_processes_never_claim_the_same_job(tmp_path, store):
    q = JobQueue(store)
    sessions = [await session(store) for _ in range(600)]
    for s in sessions:
        await q.enqueue(s, "x", Priority.LOW)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, str(store.path)],
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE,
            env=env_with_src(),
        )
        for _ in range(3)
    ]
    for p in procs:
        assert p.stdout.readline() == b"ready\n"
    for p in procs:
        p.stdin.write(b"go\n")
        p.stdin.flush()
    claimed = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    everything = sum(claimed, [])
    # the invariant, whatever the scheduler did: every job claimed once, by exactly one process
    # (whether all three got some is up to the OS, not a property of the queue)
    assert len(everything) == 600 and len(set(everything)) == 600
    stats = await store.stats(finished=True)
    assert stats.count(JobState.SUCCEEDED) == 600


async def test_not_a_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"my precious notes, not sqlite" * 10)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a chatplex database"):
        await Store.open(path)
    assert path.read_bytes() == before


async def test_corrupt_database_gives_a_clear_error(tmp_path):
    path = tmp_path / "c.db"
    async with await Store.open(path) as s:
        await s.create_session("t", "p", "m")
    data = bytearray(path.read_bytes())
    data[100:4096] = os.urandom(3996)  # smash the schema page, keep the header
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="damaged|cannot use"):
        s = await Store.open(path)
        await s.list_sessions()


async def test_schema_is_versioned_and_wal(store):
    assert await store.schema_version() == SCHEMA_VERSION == 11
    mode = await store.read(lambda db: db.execute("PRAGMA journal_mode").fetchone()[0])
    assert mode == "wal"
    plan = await store.read(
        lambda db: " ".join(
            r[3]
            for r in db.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE state='queued' AND run_after<=0 "
                "ORDER BY priority, run_after, id LIMIT 1"
            )
        )
    )
    assert "jobs_claim" in plan


async def test_streamed_text_is_written_by_primary_key_not_by_scanning_messages(store):
    from chatplex.core.db import APPEND_SQL

    plan = await store.read(
        lambda db: " ".join(
            r[3]
            for r in db.execute(
                "EXPLAIN QUERY PLAN " + APPEND_SQL, {"text": "x", "now": 0.0, "job": 1, "streaming": "streaming"}
            )
        )
    )
    assert "SCAN messages" not in plan and "INTEGER PRIMARY KEY" in plan


def test_a_preview_looks_at_the_start_of_the_text_only():
    from chatplex.core.models import preview_of

    assert preview_of("  hello\n\n  world  ") == "hello world"
    assert preview_of("word " * 100, 20) == "word word word word…"
    assert preview_of("x " + " " * 10_000 + "tail") == "x…"  # more text follows past the head
    big = "start " + "y" * 10_000_000
    assert preview_of(big, 20) == "start " + "y" * 13 + "…"


async def test_crashes_in_a_row_end_when_a_run_ends_normally(store):
    q = JobQueue(store)
    s = await session(store)
    await q.enqueue(s, "x", Priority.LOW)
    for expected in (1, 2):
        await q.claim()
        ((job, _, _),) = await store.recover(lambda j: True)  # its process died, nothing progressed
        assert job.crashes == expected and job.attempts == 0  # not the reply's fault
    job, _ = await q.claim()
    j, _, _ = await q.give_back(job, "", "paused: chatplex was stopped")  # a run that ended well
    assert j.crashes == 0
    await q.claim()
    ((job, _, _),) = await store.recover(lambda j: True)
    assert job.crashes == 1 and job.state is JobState.QUEUED  # one in a row again, not three


async def test_a_continued_run_that_adds_nothing_is_no_progress(store):
    q = JobQueue(store)
    s = await session(store)
    await q.enqueue(s, "x", Priority.LOW)
    job, _ = await q.claim()
    await q.give_back(job, "partial text", "paused")
    for n in range(1, 4):
        job, _ = await q.claim(continuing={"fake"})  # keeps the partial: its length is no progress
        assert job.resumed_from == len("partial text")
        ((job, message, _),) = await store.recover(lambda j: True)
        assert job.crashes == n
    assert job.state is JobState.FAILED and message.content == "partial text"
