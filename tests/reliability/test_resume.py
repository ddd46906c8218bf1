"""Resume means resume: a reply cut by a quit, a crash or preemption continues from its
partial text where the API can continue a final assistant message, and is regenerated (and
says so) where it cannot. Against the fault server (which continues a prefill as Anthropic
and llama.cpp do) and llama.cpp's real server."""

from __future__ import annotations

import sqlite3

import pytest

from chatplex.core.db import Store
from chatplex.core.events import ReplyDelta, ReplyFinished, ReplyStarted
from chatplex.core.models import MessageState, Priority
from chatplex.core.queue import JobQueue
from tests.helpers import TinyServer, make_config, provider_for
from tests.reliability.test_conformance import provider

REPLY = " ".join(f"w{i}" for i in range(80))


def started(message_id: int, kept: bool):
    return lambda e: isinstance(e, ReplyStarted) and e.message_id == message_id and bool(e.kept) is kept


def finished(message_id: int):
    return lambda e: (
        isinstance(e, ReplyFinished)
        and e.message.id == message_id
        and e.message.state in (MessageState.COMPLETE, MessageState.ERROR)
    )


def stored_text(db, reply_id: int) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT content FROM messages WHERE id=?", (reply_id,)).fetchone()[0]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_reply_cut_by_quit_continues_where_it_stopped(fake, tmp_path, coordinators, kind):
    s = fake.scenario(reply=REPLY, token_delay=0.01)
    config = make_config(tmp_path, provider_for(s, kind=kind, resume="continue"))
    coord, rec = await coordinators(config)
    session = await coord.create_session()
    await coord.focus(session.id)
    _, reply, _ = await coord.send(session.id, "go")
    await rec.wait(lambda e: isinstance(e, ReplyDelta) and e.message_id == reply.id and e.offset > 10)
    await coord.stop()  # Ctrl+Q: the partial is kept, the job queued again
    cut = stored_text(config.db_path, reply.id)
    assert 0 < len(cut) < len(REPLY) and REPLY.startswith(cut)

    coord2, rec2 = await coordinators(config)
    await coord2.focus(session.id)
    begin = await rec2.wait(started(reply.id, kept=True))
    done = await rec2.wait(finished(reply.id))
    assert done.message.state is MessageState.COMPLETE and done.message.content == REPLY
    assert begin.kept == len(cut.rstrip())
    # what the UI was sent after the kept text is exactly the rest: nothing shown twice
    rest = "".join(e.text for e in rec2.of(ReplyDelta) if e.message_id == reply.id)
    assert cut.rstrip() + rest == REPLY
    assert s.requests[-1]["messages"][-1] == {"role": "assistant", "content": cut.rstrip()}
    assert len(s.requests) == 2


async def test_a_preempted_reply_continues_after_the_focused_one(fake, tmp_path, coordinators):
    slow = fake.scenario(reply=REPLY, token_delay=0.01)
    config = make_config(tmp_path, provider_for(slow, kind="anthropic", resume="continue"), workers=1)
    coord, rec = await coordinators(config)
    background = await coord.create_session("bg")
    front = await coord.create_session("front")
    _, bg_reply, _ = await coord.send(background.id, "long")
    await rec.wait(lambda e: isinstance(e, ReplyDelta) and e.message_id == bg_reply.id)
    await coord.focus(front.id)
    _, front_reply, _ = await coord.send(front.id, "now")  # preempts the background reply
    await rec.wait(finished(front_reply.id))
    begin = await rec.wait(started(bg_reply.id, kept=True))
    done = await rec.wait(finished(bg_reply.id))
    assert done.message.content == REPLY and begin.kept > 0
    assert slow.requests[-1]["messages"][-1]["role"] == "assistant"


async def test_where_the_api_cannot_continue_the_reply_is_regenerated(fake, tmp_path, coordinators):
    s = fake.scenario(reply=REPLY, token_delay=0.01)
    config = make_config(tmp_path, provider_for(s, kind="openai"))  # OpenAI's own API: regenerate
    assert config.providers["fake"].resume == "regenerate"
    coord, rec = await coordinators(config)
    session = await coord.create_session()
    await coord.focus(session.id)
    _, reply, _ = await coord.send(session.id, "go")
    await rec.wait(lambda e: isinstance(e, ReplyDelta) and e.message_id == reply.id and e.offset > 10)
    await coord.stop()
    coord2, rec2 = await coordinators(config)
    await rec2.wait(started(reply.id, kept=False))
    done = await rec2.wait(finished(reply.id))
    assert done.message.content == REPLY
    assert s.requests[-1]["messages"][-1]["role"] == "user"  # asked afresh


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_llama_cpp_continues_a_partial_reply(tiny_server, tmp_path, coordinators, kind):
    """The tiny model answers every prompt ` the of and to in is.`; continuing the partial
    ` the of ` it adds ` to in is.`, so the stored reply shows the server really continued
    (regenerating would give the whole sentence again)."""
    config = make_config(tmp_path, provider(tiny_server.url, kind, params={"temperature": 0}, resume="continue"))
    store = await Store.open(config.db_path)
    q = JobQueue(store)
    session = await store.create_session("s", "llama", "tiny")
    _, reply, _, _ = await q.enqueue(session.id, "hi", Priority.LOW)
    job, _ = await q.claim()
    await q.give_back(job, " the of ", "paused: chatplex was stopped")  # as a quit mid-stream leaves it
    await store.close()

    coord, rec = await coordinators(config)
    done = await rec.wait(finished(reply.id))
    assert done.message.state is MessageState.COMPLETE, done.message.error
    assert done.message.content == " the of to in is." != TinyServer.REPLY


async def test_a_model_that_refuses_a_prefill_gets_its_reply_regenerated(fake, tmp_path, coordinators):
    """Claude 4.6 models (and extended thinking) answer 400 to a final assistant turn: the
    cut reply is generated again instead of failing, and this process stops trying."""
    s = fake.scenario(reply=REPLY, refuse_prefill=True)
    config = make_config(tmp_path, provider_for(s, kind="anthropic"))
    assert config.providers["fake"].resume == "continue"
    store = await Store.open(config.db_path)
    q = JobQueue(store)
    session = await store.create_session("s", "fake", "fake-small")
    replies = []
    for text in ("one", "two"):
        other = await store.create_session(text, "fake", "fake-small")
        _, reply, _, _ = await q.enqueue(other.id, text, Priority.LOW)
        job, _ = await q.claim()
        await q.give_back(job, "w0 w1 ", "paused: chatplex was stopped")
        replies.append(reply.id)
    await store.close()
    coord, rec = await coordinators(config)
    for reply_id in replies:
        done = await rec.wait(finished(reply_id))
        assert done.message.state is MessageState.COMPLETE and done.message.content == REPLY
    prefilled = [r for r in s.requests if r["messages"][-1]["role"] == "assistant"]
    assert len(prefilled) == 1 and len(s.requests) == 3  # tried once, then regenerated both
    assert session.id  # the third session never ran: nothing queued there


async def test_a_whitespace_only_reply_is_an_error(fake, tmp_path, coordinators):
    s = fake.scenario(reply="\n\n")
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s, kind="anthropic")))
    session = await coord.create_session()
    _, reply, _ = await coord.send(session.id, "x")
    done = await rec.wait(finished(reply.id))
    assert done.message.state is MessageState.ERROR and "empty reply" in done.message.error
