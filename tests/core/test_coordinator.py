"""The coordinator end to end over real sockets: what the user would see in each situation."""

from __future__ import annotations

import asyncio

from chatplex.core.events import (
    Notification,
    QueueStatsChanged,
    ReplyDelta,
    ReplyFinished,
    ReplyStarted,
    SessionChanged,
)
from chatplex.core.models import JobState, MessageState, Priority, SessionStatus
from tests.fakeserver import Fault
from tests.helpers import make_config, provider_for


def finished(message_id: int, state: MessageState | None = None):
    return lambda e: (
        isinstance(e, ReplyFinished) and e.message.id == message_id and (state is None or e.message.state is state)
    )


def started(message_id: int):
    return lambda e: isinstance(e, ReplyStarted) and e.message_id == message_id


def status(session_id: int, value: SessionStatus):
    return lambda e: isinstance(e, SessionChanged) and e.session.id == session_id and e.session.status is value


async def test_send_streams_reply_and_persists_it(fake, tmp_path, coordinators):
    s = fake.scenario(reply="alpha beta gamma delta")
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s)))
    session = await coord.create_session()
    await coord.focus(session.id)
    user, reply, job = await coord.send(session.id, "hello there")
    assert job.priority is Priority.HIGH
    done = await rec.wait(finished(reply.id))
    assert done.message.state is MessageState.COMPLETE
    assert done.message.content == "alpha beta gamma delta"
    assert "".join(e.text for e in rec.of(ReplyDelta) if e.message_id == reply.id) == done.message.content
    msgs = await coord.messages(session.id)
    assert [(m.role.value, m.content) for m in msgs] == [("user", "hello there"), ("assistant", done.message.content)]
    assert msgs[1].completion_tokens == 4
    after = await coord.session(session.id)
    assert after.status is SessionStatus.WAITING and after.unread == 0
    assert after.title == "hello there"  # a new chat is named after its first message
    assert s.requests[0]["messages"] == [{"role": "user", "content": "hello there"}]
    await rec.wait(lambda e: isinstance(e, QueueStatsChanged) and e.stats.running == 0 and e.stats.queued_low == 0)


async def test_history_and_system_prompt_reach_the_model(fake, tmp_path, coordinators):
    s = fake.scenario(reply="ok")
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s)))
    session = await coord.create_session(system_prompt="You are terse.")
    _, r1, _ = await coord.send(session.id, "first")
    await rec.wait(finished(r1.id))
    _, r2, _ = await coord.send(session.id, "second")
    await rec.wait(finished(r2.id))
    assert s.requests[1]["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "second"},
    ]


async def test_background_reply_sets_unread_preview_and_notifies(fake, tmp_path, coordinators):
    s = fake.scenario(reply="the background answer")
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s)))
    bg = await coord.create_session("bg")
    front = await coord.create_session("front")
    await coord.focus(front.id)
    _, reply, job = await coord.send(bg.id, "work on this")
    assert job.priority is Priority.LOW
    await rec.wait(finished(reply.id))
    session = await coord.session(bg.id)
    assert session.unread == 1 and session.preview == "the background answer"
    assert session.status is SessionStatus.WAITING
    note = await rec.wait(lambda e: isinstance(e, Notification))
    assert note.session_id == bg.id and note.title == "bg" and "background answer" in note.text
    await coord.focus(bg.id)
    assert (await coord.session(bg.id)).unread == 0


async def test_one_worker_serves_high_before_low(fake, tmp_path, coordinators):
    s = fake.scenario(reply="r")
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s)), workers=1, start=False)
    sessions = [await coord.create_session(t) for t in ("a", "b", "c")]
    await coord.focus(sessions[2].id)
    replies = [(await coord.send(x.id, f"from {x.title}"))[1] for x in sessions]
    await coord.start()
    for r in replies:
        await rec.wait(finished(r.id))
    order = [e.message_id for e in rec.of(ReplyStarted)]
    assert order == [replies[2].id, replies[0].id, replies[1].id]


async def test_preemption_keeps_partial_and_regenerates_later(fake, tmp_path, coordinators):
    slow = fake.scenario(reply=" ".join(f"w{i}" for i in range(60)), token_delay=0.02)
    coord, rec = await coordinators(make_config(tmp_path, provider_for(slow)), workers=1)
    bg = await coord.create_session("bg")
    front = await coord.create_session("front")
    await coord.focus(front.id)
    _, bg_reply, bg_job = await coord.send(bg.id, "long job")
    await rec.wait(lambda e: isinstance(e, ReplyDelta) and e.message_id == bg_reply.id)
    _, front_reply, _ = await coord.send(front.id, "urgent")
    interrupted = await rec.wait(finished(bg_reply.id, MessageState.INTERRUPTED))
    assert interrupted.message.content.startswith("w0")  # the partial is kept and visible
    assert (await coord.session(bg.id)).status in (SessionStatus.INTERRUPTED, SessionStatus.STREAMING)
    await rec.wait(finished(front_reply.id, MessageState.COMPLETE))
    done = await rec.wait(finished(bg_reply.id, MessageState.COMPLETE))
    assert done.message.content == slow.reply  # regenerated, replacing the partial
    job = await coord.job(bg_job.id)
    assert job.state is JobState.SUCCEEDED and job.attempts == 1  # preemption spent no attempt
    starts = [e.message_id for e in rec.of(ReplyStarted)]
    assert starts == [bg_reply.id, front_reply.id, bg_reply.id]


async def test_focus_change_reprioritises_queued_work(fake, tmp_path, coordinators):
    s = fake.scenario(reply="r")
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s)), workers=1, start=False)
    a, b = await coord.create_session("a"), await coord.create_session("b")
    await coord.focus(a.id)
    _, ra, ja = await coord.send(a.id, "x")
    _, rb, jb = await coord.send(b.id, "y")
    await coord.focus(b.id)
    assert (await coord.job(jb.id)).priority is Priority.HIGH
    assert (await coord.job(ja.id)).priority is Priority.LOW
    await coord.start()
    await rec.wait(finished(ra.id))
    assert [e.message_id for e in rec.of(ReplyStarted)] == [rb.id, ra.id]


async def test_work_sent_while_focused_yields_once_focus_moves_on(fake, tmp_path, coordinators):
    """Found by hand in tmux: replies sent from a session you then leave kept HIGH priority
    while running, so the preempted one was claimed again ahead of the session in view."""
    slow = fake.scenario(reply=" ".join(f"w{i}" for i in range(80)), token_delay=0.02)
    coord, rec = await coordinators(make_config(tmp_path, provider_for(slow)), workers=2)
    started = []
    for title in ("a", "b"):
        session = await coord.create_session(title)
        await coord.focus(session.id)
        _, reply, job = await coord.send(session.id, "long")
        started.append((reply, job))
        await rec.wait(lambda e, r=reply: isinstance(e, ReplyDelta) and e.message_id == r.id)
    front = await coord.create_session("front")
    await coord.focus(front.id)
    for _, job in started:
        assert (await coord.job(job.id)).priority is Priority.LOW
    _, front_reply, _ = await coord.send(front.id, "now")
    await rec.wait(lambda e: isinstance(e, ReplyDelta) and e.message_id == front_reply.id)
    for reply, _ in started:  # the front reply started while both long ones were still going
        assert (await coord.store.get_message(reply.id)).state is not MessageState.COMPLETE
    for reply, _ in started:
        await rec.wait(finished(reply.id, MessageState.COMPLETE))


async def test_provider_concurrency_limit(fake, tmp_path, coordinators):
    s = fake.scenario(reply="a b c d e", token_delay=0.01)
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s, max_concurrency=1)), workers=4)
    replies = []
    for i in range(4):
        session = await coord.create_session(f"s{i}")
        replies.append((await coord.send(session.id, "go"))[1])
    for r in replies:
        await rec.wait(finished(r.id, MessageState.COMPLETE))
    assert s.max_active == 1 and len(s.requests) == 4


async def test_cancel_stops_an_endless_stream_quickly(fake, tmp_path, coordinators):
    s = fake.scenario(reply="tok", forever=True, token_delay=0.005)
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s)))
    session = await coord.create_session()
    await coord.focus(session.id)
    _, reply, job = await coord.send(session.id, "go on forever")
    await rec.wait(lambda e: isinstance(e, ReplyDelta) and e.message_id == reply.id)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await coord.cancel(session.id)
    done = await rec.wait(finished(reply.id), timeout=1.0)
    assert loop.time() - t0 < 1.0
    assert done.message.state is MessageState.INTERRUPTED and done.message.error == "cancelled"
    assert done.message.content.startswith("tok")
    assert (await coord.job(job.id)).state is JobState.CANCELLED
    assert (await coord.session(session.id)).status is SessionStatus.IDLE


async def test_transient_error_is_retried_and_succeeds(fake, tmp_path, coordinators):
    s = fake.scenario(reply="fine now", faults=[Fault(status=503), Fault(reset_after=1)])
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s)))
    session = await coord.create_session()
    _, reply, job = await coord.send(session.id, "x")
    done = await rec.wait(finished(reply.id, MessageState.COMPLETE))
    assert done.message.content == "fine now"
    assert (await coord.job(job.id)).attempts == 3
    assert len(s.requests) == 3


async def test_bad_request_fails_at_once_and_retry_recovers(fake, tmp_path, coordinators):
    s = fake.scenario(
        reply="second time lucky", faults=[Fault(status=404, body={"error": {"message": "model 'nope' not found"}})]
    )
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s)))
    session = await coord.create_session()
    _, reply, job = await coord.send(session.id, "x")
    failed = await rec.wait(finished(reply.id, MessageState.ERROR))
    assert "model 'nope' not found" in failed.message.error
    assert len(s.requests) == 1
    sess = await coord.session(session.id)
    assert sess.status is SessionStatus.ERROR and "not found" in sess.preview
    new_job = await coord.retry(session.id)
    assert new_job.id != job.id
    done = await rec.wait(finished(reply.id, MessageState.COMPLETE))
    assert done.message.content == "second time lucky"
    assert (await coord.session(session.id)).status is SessionStatus.WAITING


async def test_other_sessions_keep_working_while_one_fails(fake, tmp_path, coordinators):
    bad = fake.scenario(faults=[Fault(status=401)])
    good = fake.scenario(reply="all good")
    config = make_config(tmp_path, provider_for(good, "good"), provider_for(bad, "bad"))
    coord, rec = await coordinators(config)
    s_bad = await coord.create_session(provider="bad")
    s_good = await coord.create_session(provider="good")
    _, r_bad, _ = await coord.send(s_bad.id, "x")
    _, r_good, _ = await coord.send(s_good.id, "y")
    assert (
        "set api_key_env in [providers.bad]" in (await rec.wait(finished(r_bad.id, MessageState.ERROR))).message.error
    )
    assert (await rec.wait(finished(r_good.id))).message.state is MessageState.COMPLETE


async def test_deltas_are_written_coalesced_not_per_token(fake, tmp_path, coordinators):
    s = fake.scenario(reply=" ".join(["t"] * 200), token_delay=0.002)
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s)), workers=1)
    session = await coord.create_session()
    _, reply, _ = await coord.send(session.id, "x")
    await rec.wait(lambda e: isinstance(e, ReplyStarted) and e.message_id == reply.id)
    before = coord.store.writes
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await rec.wait(finished(reply.id))
    seconds = loop.time() - t0
    writes = coord.store.writes - before
    assert writes <= seconds / 0.1 + 2, (writes, seconds)
    # not on screen: its deltas go out coalesced at the flush beat, none lost
    deltas = [e for e in rec.of(ReplyDelta) if e.message_id == reply.id]
    assert sum(e.tokens for e in deltas) == 200 and len(deltas) <= seconds / 0.1 + 2
    assert "".join(e.text for e in deltas) == " ".join(["t"] * 200)


async def test_the_focused_session_gets_every_token_as_it_comes(fake, tmp_path, coordinators):
    s = fake.scenario(reply=" ".join(["t"] * 200), token_delay=0.002)
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s)), workers=1)
    session = await coord.create_session()
    await coord.focus(session.id)
    _, reply, _ = await coord.send(session.id, "x")
    await rec.wait(finished(reply.id))
    deltas = [e for e in rec.of(ReplyDelta) if e.message_id == reply.id]
    assert len(deltas) == 200 and all(e.tokens == 1 for e in deltas)
    assert [e.offset for e in deltas] == [sum(len(d.text) for d in deltas[:i]) for i in range(200)]


async def test_graceful_stop_then_restart_resumes(fake, tmp_path, coordinators):
    s = fake.scenario(reply=" ".join(f"w{i}" for i in range(100)), token_delay=0.01)
    config = make_config(tmp_path, provider_for(s))
    coord, rec = await coordinators(config)
    session = await coord.create_session()
    _, reply, job = await coord.send(session.id, "long")
    await rec.wait(lambda e: isinstance(e, ReplyDelta) and e.message_id == reply.id)
    await coord.stop()
    coord2, rec2 = await coordinators(config, start=False)
    paused = await coord2.store.get_message(reply.id)
    assert paused.state is MessageState.INTERRUPTED and paused.content.startswith("w0")
    assert (await coord2.store.get_job(job.id)).state is JobState.QUEUED
    await coord2.start()
    done = await rec2.wait(finished(reply.id, MessageState.COMPLETE))
    assert done.message.content == s.reply
    job = await coord2.store.get_job(job.id)
    assert job.state is JobState.SUCCEEDED and job.attempts == 1


async def test_delete_session_stops_its_reply(fake, tmp_path, coordinators):
    s = fake.scenario(reply="x", forever=True, token_delay=0.01)
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s)))
    session = await coord.create_session()
    _, reply, _ = await coord.send(session.id, "x")
    await rec.wait(lambda e: isinstance(e, ReplyDelta) and e.message_id == reply.id)
    await coord.delete_session(session.id)
    assert await coord.session(session.id) is None
    assert await coord.stats() is not None
    await coord.stop()  # must not hang or raise on the vanished rows


async def test_queue_stats_end_with_the_final_state(fake, tmp_path, coordinators):
    """Found by a flaky `worker --until-idle`: a change that came while stats were being
    published was dropped, so the last published stats could say a job was still running."""
    from chatplex.core.events import QueueStatsChanged

    s = fake.scenario(reply="a b c d e", token_delay=0.03)
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s)), workers=1)
    real_stats = coord.store.stats

    async def slow_publication(*args, **kwargs):  # read now, publish a while later
        stats = await real_stats(*args, **kwargs)
        await asyncio.sleep(0.25)
        return stats

    coord.store.stats = slow_publication
    session = await coord.create_session()
    _, reply, _ = await coord.send(session.id, "go")
    await rec.wait(finished(reply.id, MessageState.COMPLETE))
    await rec.wait(
        lambda e: (
            isinstance(e, QueueStatsChanged)
            and e.workers_busy == 0
            and e.stats.count(JobState.QUEUED) + e.stats.count(JobState.RUNNING) == 0
        ),
        timeout=3,
    )


async def test_idle_workers_sleep_while_a_second_message_waits_for_the_first(fake, tmp_path, coordinators):
    """The second message of a session is due but must wait for the first reply: idle workers
    wait to be told, they do not poll the queue (each poll is a write transaction)."""
    s = fake.scenario(reply=" ".join(["t"] * 40), token_delay=0.01)
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s)), workers=4)
    session = await coord.create_session()
    _, first, _ = await coord.send(session.id, "one")
    _, second, _ = await coord.send(session.id, "two")
    await rec.wait(lambda e: isinstance(e, ReplyStarted) and e.message_id == first.id)
    before, loop = coord.store.writes, asyncio.get_running_loop()
    t0 = loop.time()
    await rec.wait(finished(first.id))
    seconds, writes = loop.time() - t0, coord.store.writes - before
    # flush beats, the finish, then the claim of the second and an idle worker's empty claim
    assert writes <= seconds / 0.1 + 6, (writes, seconds)  # polling made it ~800
    await rec.wait(finished(second.id))


async def test_a_streaming_reply_read_mid_stream_has_its_parts_as_far_as_its_text(
    fake, tmp_path, coordinators, monkeypatch
):
    """The chat pane mounts a transcript from its parts: parts that lag behind the text (the
    stored ones are up to a flush beat old) would show a reply missing its newest words, and
    the next delta would land beyond them. Here the stored parts are the partial a continued
    run goes on from, and the beats' writes fail (as on a locked database) while the test reads."""
    import threading

    from chatplex.core.db import Store
    from chatplex.core.queue import JobQueue

    hold = threading.Event()
    s = fake.scenario(reply="one two three four five", faults=[Fault(hold_after=2, hold=hold)])
    config = make_config(tmp_path, provider_for(s, kind="anthropic", resume="continue"))
    store = await Store.open(config.db_path)
    q = JobQueue(store)
    session = await store.create_session("cut", "fake", "fake-small")
    _, reply, _, _ = await q.enqueue(session.id, "go", Priority.LOW)
    job, _ = await q.claim()
    await q.give_back(job, "one two ", "paused: chatplex was stopped")
    await store.close()
    coord, rec = await coordinators(config)

    async def refused(*args, **kwargs):  # as a locked database does: the streamed text stays pending
        raise OSError("database is locked")

    monkeypatch.setattr(coord.queue, "stream_writes", refused)
    await coord.focus(session.id)
    await rec.wait(lambda e: isinstance(e, ReplyDelta) and e.message_id == reply.id and "three" in e.text)
    *_, live = await coord.messages(session.id)
    assert live.state is MessageState.STREAMING
    assert "".join(p.text for p in live.all_parts()) == live.content
    assert live.content.startswith("one two") and "three" in live.content
    hold.set()
    done = await rec.wait(finished(reply.id))
    assert done.message.content == "one two three four five"
