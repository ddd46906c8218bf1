"""Replies made of parts through the engine: stored in order, streamed as events, written
coalesced, kept when a run is cut, replayed to the model, migrated from the last release."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from chatplex.core.db import SCHEMA_VERSION, Store
from chatplex.core.events import PartDelta, ReplyDelta, SessionChanged
from chatplex.core.models import JobState, MessageState, Priority, Role, SessionStatus
from chatplex.core.queue import JobQueue
from chatplex.providers.base import ReasoningPart, TextPart, ToolCallPart
from tests.core.test_coordinator import finished
from tests.fakeserver import Fault
from tests.helpers import make_config, provider_for

FIXTURE = Path(__file__).parents[1] / "fixtures" / "schema2.db"
THOUGHT = " ".join(f"t{i}" for i in range(30))
ANSWER = "The answer is **4**."


def rows(path: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


async def test_a_database_of_the_last_release_migrates_each_message_to_one_text_part(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    before = rows(path, "SELECT id, content, state FROM messages ORDER BY id")
    async with await Store.open(path) as store:
        assert await store.schema_version() == SCHEMA_VERSION
        messages = sorted(await store.messages(1) + await store.messages(2), key=lambda m: m.id)
        assert [(m.id, m.content, m.state.value) for m in messages] == before
        for m in messages:
            assert m.parts == ([TextPart(m.content)] if m.content else [])
        assert rows(path, "SELECT message_id, state FROM parts ORDER BY message_id") == [
            (1, "complete"),
            (2, "complete"),
            (3, "complete"),
            (4, "interrupted"),  # "Six, beca": a reply cut when chatplex stopped
            (5, "complete"),
        ]
        assert await store.integrity_check() == ["ok"]
        # the interrupted reply's job still runs, continuing from its text part
        job, _ = await JobQueue(store).claim(continuing=["local"])
        assert job.message_id == 4 and job.resumed_from == len("Six, beca")


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_reasoning_reply_is_stored_as_parts_and_only_its_answer_is_the_text(fake, tmp_path, coordinators, kind):
    hold = threading.Event()  # the stream waits in the middle of its thinking until set
    s = fake.scenario(
        parts=[("reasoning", THOUGHT), ("text", ANSWER)], reasoning_tokens=30, faults=[Fault(hold_after=20, hold=hold)]
    )
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s, kind=kind)))
    session = await coord.create_session("think")
    await coord.focus(session.id)
    _, reply, _ = await coord.send(session.id, "2+2?")
    # while the model thinks, the session says so (the sidebar's own state)
    await rec.wait(lambda e: isinstance(e, SessionChanged) and e.session.status is SessionStatus.THINKING)
    hold.set()
    done = (await rec.wait(finished(reply.id, MessageState.COMPLETE))).message
    assert done.content == ANSWER  # search, previews and exports read the answer alone
    assert [type(p) for p in done.parts] == [ReasoningPart, TextPart]
    assert done.parts[0].text == THOUGHT and done.parts[1].text == ANSWER
    stored = await coord.store.get_message(reply.id)
    assert stored is not None and stored.parts == done.parts
    if kind == "anthropic":
        assert stored.parts[0].signature == "sig-abc"  # kept to replay the thinking
    else:
        assert stored.reasoning_tokens == 30
    # the thinking streamed as its own events, before the answer and numbered before it
    thought = [e for e in rec.of(PartDelta) if e.message_id == reply.id]
    assert "".join(e.text for e in thought) == THOUGHT and {e.kind for e in thought} == {"reasoning"}
    text = [e for e in rec.of(ReplyDelta) if e.message_id == reply.id]
    assert "".join(e.text for e in text) == ANSWER and {e.seq for e in text} == {1}
    assert {e.seq for e in thought} == {0}
    # and once the answer came, it was not thinking any more
    marks = [e.session.status for e in rec.of(SessionChanged) if e.session.id == session.id]
    assert marks[-1] is SessionStatus.WAITING
    assert (await coord.session(session.id)).status is SessionStatus.WAITING


async def test_thinking_is_replayed_to_the_model_that_wrote_it_and_dropped_for_another(fake, tmp_path, coordinators):
    s = fake.scenario(parts=[("reasoning", "think first"), ("text", "Done.")])
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s, kind="anthropic")))
    session = await coord.create_session("replay", model="fake-small")
    _, r1, _ = await coord.send(session.id, "one")
    await rec.wait(finished(r1.id, MessageState.COMPLETE))
    _, r2, _ = await coord.send(session.id, "two")
    await rec.wait(finished(r2.id, MessageState.COMPLETE))
    turn = s.requests[-1]["messages"][1]
    assert turn["role"] == "assistant"
    assert turn["content"][0] == {"type": "thinking", "thinking": "think first", "signature": "sig-abc"}
    await coord.update_session(session.id, model="fake-large")
    _, r3, _ = await coord.send(session.id, "three")
    await rec.wait(finished(r3.id, MessageState.COMPLETE))
    kinds = [block["type"] for m in s.requests[-1]["messages"] if m["role"] == "assistant" for block in m["content"]]
    assert "thinking" not in kinds  # a signature is only valid for the model that made it


async def test_a_reply_cut_while_thinking_keeps_its_partial_thought_marked_interrupted(fake, tmp_path, coordinators):
    thought = " ".join(f"r{i}" for i in range(400))
    slow = fake.scenario(parts=[("reasoning", thought), ("text", "late")], token_delay=0.01)
    coord, rec = await coordinators(make_config(tmp_path, provider_for(slow)), workers=1)
    bg, front = await coord.create_session("bg"), await coord.create_session("front")
    await coord.focus(front.id)
    _, bg_reply, bg_job = await coord.send(bg.id, "think long")
    # the background reply is stored while it thinks (coalesced writes of the reasoning part)
    await rec.wait(lambda e: isinstance(e, SessionChanged) and e.session.status is SessionStatus.THINKING)
    await rec.wait(lambda e: isinstance(e, PartDelta) and e.message_id == bg_reply.id and e.offset > 0)
    _, front_reply, _ = await coord.send(front.id, "urgent")
    cut = (await rec.wait(finished(bg_reply.id, MessageState.INTERRUPTED))).message
    assert cut.content == "" and [type(p) for p in cut.parts] == [ReasoningPart]
    assert cut.parts[0].text.startswith("r0 r1")
    path = coord.store.path
    assert rows(path, f"SELECT kind, state FROM parts WHERE message_id={bg_reply.id}") == [("reasoning", "interrupted")]
    await rec.wait(finished(front_reply.id))
    # regenerated from the start (a thought is not continued), and complete at last
    done = (await rec.wait(finished(bg_reply.id, MessageState.COMPLETE))).message
    assert [type(p) for p in done.parts] == [ReasoningPart, TextPart] and done.content == "late"
    assert done.parts[0].text == thought
    assert (await coord.job(bg_job.id)).attempts == 1


async def test_a_tool_call_only_reply_keeps_its_call_and_says_tools_are_not_enabled(fake, tmp_path, coordinators):
    s = fake.scenario(parts=[("reasoning", "I need the clock"), ("tool", "get_time", '{"tz": "UTC"}')])
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s)))
    session = await coord.create_session("tools")
    _, reply, _ = await coord.send(session.id, "what time is it?")
    failed = (await rec.wait(finished(reply.id, MessageState.ERROR))).message
    assert "tools are not enabled" in (failed.error or "")
    assert failed.parts == [ReasoningPart("I need the clock"), ToolCallPart("call_1", "get_time", '{"tz": "UTC"}')]
    calls = [e for e in rec.of(PartDelta) if e.kind == "tool_call"]
    assert "".join(e.text for e in calls) == '{"tz": "UTC"}' and calls[-1].name == "get_time"


async def test_streamed_parts_are_written_coalesced(fake, tmp_path, coordinators):
    """B8 with parts: a 1,000-token reply, half thinking, in few writes."""
    half = " ".join(f"w{i}" for i in range(500))
    s = fake.scenario(parts=[("reasoning", half), ("text", half)], token_delay=0.001)
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s)), workers=1)
    session = await coord.create_session("b8")
    before = coord.store.writes
    _, reply, job = await coord.send(session.id, "go")
    started = await rec.wait(lambda e: isinstance(e, PartDelta) and e.message_id == reply.id)
    assert started
    done = (await rec.wait(finished(reply.id, MessageState.COMPLETE))).message
    assert done.content == half and done.parts[0].text == half
    job_row = await coord.job(job.id)
    assert job_row.state is JobState.SUCCEEDED
    streamed_for = (job_row.finished_at or 0) - (job_row.started_at or 0)
    allowed = int(streamed_for / 0.1) + 1 + 2 + 2  # beats, the enqueue, claim and finish
    assert coord.store.writes - before <= allowed


async def test_a_continued_reply_keeps_its_parts_and_goes_on_in_its_text(fake, tmp_path, coordinators):
    """A partial with an answer begun is continued (prefill); its thinking stays in front."""
    path = tmp_path / "chatplex.db"
    async with await Store.open(path) as store:
        q = JobQueue(store, owner="earlier")
        session = await store.create_session("cont", "fake", "fake-small")
        _, reply, _, _ = await q.enqueue(session.id, "count", Priority.LOW)
        job, _ = await q.claim()
        parts = [ReasoningPart("plan it"), TextPart("one two ")]
        await q.give_back(job, "one two ", "paused: chatplex was stopped", parts)
    s = fake.scenario(reply="one two three four")
    cfg = make_config(tmp_path, provider_for(s, kind="anthropic"))
    coord, rec = await coordinators(cfg)
    done = (await rec.wait(finished(reply.id, MessageState.COMPLETE))).message
    assert done.content == "one two three four"
    assert done.parts == [ReasoningPart("plan it"), TextPart("one two three four")]
    assert s.requests[-1]["messages"][-1]["role"] == Role.ASSISTANT.value


async def test_a_reply_that_only_thinks_until_its_token_limit_says_so(fake, tmp_path, coordinators):
    s = fake.scenario(parts=[("reasoning", THOUGHT)], finish="length")
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s)))
    session = await coord.create_session("budget")
    _, reply, _ = await coord.send(session.id, "think hard")
    failed = (await rec.wait(finished(reply.id, MessageState.ERROR))).message
    assert "whole token budget thinking" in (failed.error or "") and "raise max_tokens" in (failed.error or "")
    assert failed.parts == [ReasoningPart(THOUGHT)]  # what it thought is kept and shown


async def test_a_crashed_run_s_stored_parts_stay_marked_interrupted(tmp_path):
    """The process died mid-thought: what its beats stored is kept, marked cut, until the
    job runs again (and then replaced by the new run's parts)."""
    from chatplex.core.db.parts import StreamWrite

    path = tmp_path / "crash.db"
    async with await Store.open(path) as store:
        q = JobQueue(store, owner="gone")
        session = await store.create_session("c", "fake", "m")
        _, reply, _, _ = await q.enqueue(session.id, "think", Priority.LOW)
        job, _ = await q.claim()
        lost, _ = await q.stream_writes([(job, StreamWrite("", [(0, "reasoning", "half a thou", None)], "thinking"))])
        assert lost == set()
        assert (await store.get_session(session.id)).status is SessionStatus.THINKING
        recovered = await store.recover(lambda j: True)
        assert [m.id for _, m, _ in recovered] == [reply.id]
        kept = await store.get_message(reply.id)
        assert kept.state is MessageState.INTERRUPTED and kept.parts == [ReasoningPart("half a thou")]
    assert rows(path, f"SELECT state FROM parts WHERE message_id={reply.id}") == [("interrupted",)]
