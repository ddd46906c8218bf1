"""Replies are never cut, mixed or hung: failed periodic writes, claims fenced per run, wall
clock jumps, malformed deltas, trickling streams and empty replies, over real sockets and,
for the lock, a real second process."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
import time

import pytest

from chatplex.core.db import LeaseLost, Store, connection
from chatplex.core.events import ReplyDelta, ReplyFinished, ReplyStarted
from chatplex.core.models import JobState, MessageState, Priority
from chatplex.core.queue import JobQueue
from tests.fakeserver import Fault
from tests.helpers import make_config, provider_for

KINDS = ["openai", "anthropic"]
REPLY = " ".join(f"w{i}" for i in range(60))


def finished(message_id: int, state: MessageState | None = None):
    return lambda e: (
        isinstance(e, ReplyFinished) and e.message.id == message_id and (state is None or e.message.state is state)
    )


async def until(condition, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class LockHolder:
    """Another process holding the database's write lock (a `chatplex vacuum`, an open
    sqlite3 shell, a paused process) until released."""

    def __init__(self, path) -> None:
        code = (
            "import sqlite3, sys\n"
            "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "db.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n"
            "db.execute('ROLLBACK')\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "locked"

    def release(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
            self.proc.wait(10)


# ---------------------------------------------------------------- 1. failed periodic writes
@pytest.mark.parametrize("kind", KINDS)
async def test_streamed_text_survives_a_write_lock_held_past_the_busy_timeout(
    fake, tmp_path, coordinators, caplog, monkeypatch, kind
):
    monkeypatch.setattr(connection, "BUSY_TIMEOUT_MS", 300)  # the lock outlasts it sooner
    s = fake.scenario(reply=REPLY, token_delay=0.01)
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s, kind=kind)))
    session = await coord.create_session()
    _, reply, _ = await coord.send(session.id, "go")  # background: text reaches the db by flushes
    await rec.wait(lambda e: isinstance(e, ReplyDelta) and e.message_id == reply.id)
    caplog.set_level(logging.WARNING, "chatplex.worker")
    holder = LockHolder(tmp_path / "chatplex.db")
    try:
        await until(lambda: "writing streamed text failed" in caplog.text, what="a failed flush")
        await until(lambda: s.active == 0, what="the server to finish the stream")
        await until(lambda: "could not write how its reply ended" in caplog.text, what="a failed end write")
    finally:
        holder.release()
    done = await rec.wait(finished(reply.id))
    assert done.message.state is MessageState.COMPLETE
    assert done.message.content == REPLY  # nothing dropped from the middle
    assert (await coord.store.get_message(reply.id)).content == REPLY
    assert (await coord.job(done.message.job_id)).attempts == 1
    assert len(s.requests) == 1


# ---------------------------------------------------------------- 2. claims fenced per run
async def test_a_stale_run_in_the_same_process_can_never_write(tmp_path):
    async with await Store.open(tmp_path / "q.db") as store:
        q = JobQueue(store)
        s = await store.create_session("s", "p", "m")
        await q.enqueue(s.id, "x", Priority.LOW)
        first, _ = await q.claim()
        # the claim is taken back (as after a lease expiry) and claimed again by this same queue
        await store.recover(lambda job: True)
        second, _ = await q.claim()
        assert second.id == first.id and second.lease_owner != first.lease_owner
        assert await q.heartbeat_many([(first, "stale text")]) == {first.id}
        with pytest.raises(LeaseLost):
            await q.complete(first, "stale reply", unread=False, usage=(None, None), finish_reason="stop")
        assert await q.heartbeat_many([(second, "fresh ")]) == set()
        _, msg, _ = await q.complete(second, "fresh reply", unread=False, usage=(None, None), finish_reason="stop")
        assert msg.content == "fresh reply"


async def test_a_wall_clock_jump_does_not_fake_an_expired_lease(tmp_path, monkeypatch):
    """Another process (here: another queue, as alive as this one) sees a lease expired only
    after a whole lease of its own monotonic time without renewal."""
    async with await Store.open(tmp_path / "q.db") as store:
        mine, theirs = JobQueue(store, lease=30.0), JobQueue(store, lease=30.0)
        s = await store.create_session("s", "p", "m")
        await mine.enqueue(s.id, "x", Priority.LOW)
        job, _ = await mine.claim()
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + 3600)  # NTP step, laptop resume
        assert await theirs.recover() == [] and await theirs.recover() == []
        assert await mine.heartbeat_many([(job, "")]) == set()  # the owner renews on its monotonic beat
        assert await theirs.recover() == []
        assert (await store.get_job(job.id)).state is JobState.RUNNING


async def test_clock_jump_during_a_long_think_never_runs_the_reply_twice(fake, tmp_path, coordinators, monkeypatch):
    hold = threading.Event()
    s = fake.scenario(reply=REPLY, faults=[Fault(hold_after=5, hold=hold)])
    config = make_config(tmp_path, provider_for(s), workers=2)
    coord, rec = await coordinators(config, lease=30.0, watch_interval=0.02)  # recovery every 0.4 s
    recovers = 0
    real_recover = coord.queue.recover

    async def counting(*args, **kwargs):
        nonlocal recovers
        recovers += 1
        return await real_recover(*args, **kwargs)

    monkeypatch.setattr(coord.queue, "recover", counting)
    session = await coord.create_session()
    _, reply, _ = await coord.send(session.id, "think hard")
    deadline = time.monotonic() + 20
    while (await coord.store.get_message(reply.id)).content != "w0 w1 w2 w3 w4":  # written, then silence
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600)  # while the model thinks in silence
    seen = recovers
    await until(lambda: recovers >= seen + 3, what="three recovery rounds after the jump")
    hold.set()
    done = await rec.wait(finished(reply.id))
    assert done.message.state is MessageState.COMPLETE and done.message.content == REPLY
    assert len(s.requests) == 1  # the model was asked once
    assert len([e for e in rec.events if isinstance(e, ReplyStarted) and e.message_id == reply.id]) == 1


# ---------------------------------------------------------------- 3. malformed deltas
async def test_content_given_as_parts_is_joined(fake, tmp_path, coordinators):
    s = fake.scenario(reply="hi there", faults=[Fault(content_parts=True)])
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s)))
    session = await coord.create_session()
    await coord.focus(session.id)
    _, reply, _ = await coord.send(session.id, "x")
    done = await rec.wait(finished(reply.id))
    assert done.message.state is MessageState.COMPLETE and done.message.content == "hi there"


async def test_a_malformed_delta_fails_its_reply_and_no_other_stream_stops(fake, tmp_path, coordinators):
    slow = fake.scenario(reply=REPLY, token_delay=0.03)
    bad = fake.scenario(reply="never", faults=[Fault(bad_content={"not": "text"})])
    config = make_config(tmp_path, provider_for(slow, "slow"), provider_for(bad, "bad"), max_attempts=1)
    coord, rec = await coordinators(config)
    a = await coord.create_session(provider="slow")
    b = await coord.create_session(provider="bad")
    await coord.focus(b.id)
    _, slow_reply, _ = await coord.send(a.id, "long")
    await rec.wait(lambda e: isinstance(e, ReplyDelta) and e.message_id == slow_reply.id)
    _, bad_reply, _ = await coord.send(b.id, "x")
    failed = await rec.wait(finished(bad_reply.id), timeout=60)
    assert failed.message.state is MessageState.ERROR
    assert "malformed stream" in failed.message.error and "delta.content" in failed.message.error
    # the shared flush loop still writes the other stream's text while it streams
    before = (await coord.store.get_message(slow_reply.id)).content

    async def grew() -> bool:
        m = await coord.store.get_message(slow_reply.id)
        return m.state is MessageState.STREAMING and len(m.content) > len(before)

    deadline = time.monotonic() + 20
    while not await grew():
        assert time.monotonic() < deadline, "the other stream's text stopped being written"
        await asyncio.sleep(0.02)
    done = await rec.wait(finished(slow_reply.id))
    assert done.message.state is MessageState.COMPLETE and done.message.content == REPLY


# ---------------------------------------------------------------- 12. streams that never end
@pytest.mark.parametrize("kind", KINDS)
async def test_a_trickling_stream_counts_as_stalled_and_is_retried(fake, tmp_path, coordinators, kind):
    s = fake.scenario(reply="one two three four", faults=[Fault(trickle_after=2)])
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s, kind=kind, stall_timeout=0.5)))
    session = await coord.create_session()
    _, reply, _ = await coord.send(session.id, "x")
    interim = await rec.wait(finished(reply.id, MessageState.INTERRUPTED))
    assert "sent nothing new for 0.5 s (stall_timeout)" in interim.message.error
    assert "retrying" in interim.message.error
    done = await rec.wait(finished(reply.id, MessageState.COMPLETE))
    assert done.message.content == "one two three four" and len(s.requests) == 2


async def test_a_reply_past_its_reply_timeout_is_stopped_with_its_text_kept(fake, tmp_path, coordinators):
    s = fake.scenario(reply="and on", token_delay=0.01, forever=True)
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s, reply_timeout=1.0)))
    session = await coord.create_session()
    _, reply, _ = await coord.send(session.id, "x")
    done = await rec.wait(finished(reply.id, MessageState.ERROR))
    assert "reply_timeout" in done.message.error and done.message.content.startswith("and on")
    await until(lambda: s.disconnects == 1, what="the server to see the stream closed")


# ---------------------------------------------------------------- 13. empty replies
@pytest.mark.parametrize("kind", KINDS)
async def test_an_empty_reply_is_an_error_not_a_success(fake, tmp_path, coordinators, kind):
    s = fake.scenario(reply="")
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s, kind=kind)))
    session = await coord.create_session()
    _, reply, _ = await coord.send(session.id, "x")
    done = await rec.wait(finished(reply.id))
    assert done.message.state is MessageState.ERROR and "empty reply" in done.message.error
    assert (await coord.session(session.id)).status.value == "error"


async def test_a_bare_done_is_an_empty_reply(fake, tmp_path, coordinators):
    s = fake.scenario(reply="unused", faults=[Fault(bare_done=True)])
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s)))
    session = await coord.create_session()
    _, reply, _ = await coord.send(session.id, "x")
    done = await rec.wait(finished(reply.id))
    assert done.message.state is MessageState.ERROR and "empty reply" in done.message.error


@pytest.mark.parametrize("kind", KINDS)
async def test_a_tool_call_only_reply_says_tools_are_not_enabled(fake, tmp_path, coordinators, kind):
    s = fake.scenario(reply="unused", faults=[Fault(tool_call="get_current_time")])
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s, kind=kind)))
    session = await coord.create_session()
    _, reply, _ = await coord.send(session.id, "what time is it?")
    done = await rec.wait(finished(reply.id))
    assert done.message.state is MessageState.ERROR
    assert "get_current_time" in done.message.error and "tools are not enabled" in done.message.error
    assert len(s.requests) == 1  # not retried: asking again gives the same call


async def test_a_cancel_while_the_end_is_being_written_is_kept(fake, tmp_path, coordinators, caplog, monkeypatch):
    monkeypatch.setattr(connection, "BUSY_TIMEOUT_MS", 300)
    s = fake.scenario(reply=REPLY, token_delay=0.01)
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s)))
    session = await coord.create_session()
    _, reply, job = await coord.send(session.id, "go")
    await rec.wait(lambda e: isinstance(e, ReplyDelta) and e.message_id == reply.id)
    caplog.set_level(logging.WARNING, "chatplex.worker")
    holder = LockHolder(tmp_path / "chatplex.db")
    try:
        await until(lambda: "could not write how its reply ended" in caplog.text, what="a failed end write")
        assert await coord.cancel(session.id)  # the user cancels while the end waits for the lock
    finally:
        holder.release()
    done = await rec.wait(finished(reply.id))
    assert done.message.state is MessageState.INTERRUPTED and done.message.error == "cancelled"
    assert (await coord.job(job.id)).state is JobState.CANCELLED
