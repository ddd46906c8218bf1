"""Every path a user can hit, through llama.cpp's real server (xllamacpp, the tiny model),
for both wire formats, through the whole coordinator."""

from __future__ import annotations

import asyncio

import pytest

from chatplex.config import ProviderConfig
from chatplex.core.events import ReplyDelta, ReplyFinished, ReplyStarted
from chatplex.core.models import JobState, MessageState, SessionStatus
from tests.helpers import TinyServer, make_config

KINDS = ("openai", "anthropic")
LONG = {"ignore_eos": True}  # the tiny model then streams until max_tokens


@pytest.fixture
def servers(tiny_model):
    """Start private llama.cpp servers (to kill, restart or protect with a key)."""
    made: list[TinyServer] = []

    def start(api_key: str | None = None, port: int = 0) -> TinyServer:
        server = TinyServer(tiny_model, api_key=api_key)
        server.start(port)
        made.append(server)
        return server

    yield start
    for server in made:
        server.stop()


def provider(url: str, kind: str, **kw) -> ProviderConfig:
    return ProviderConfig(name="llama", kind=kind, base_url=url, model="tiny", **kw)


def finished(reply_id: int, after=None):
    return lambda e: isinstance(e, ReplyFinished) and e.message.id == reply_id


@pytest.mark.parametrize("kind", KINDS)
async def test_system_prompt_and_multi_turn_history_reach_the_model(tiny_server, tmp_path, coordinators, kind):
    coord, rec = await coordinators(make_config(tmp_path, provider(tiny_server.url, kind, params={"temperature": 0})))
    plain = await coord.create_session("plain")
    with_system = await coord.create_session("system", system_prompt="You are terse. " * 10)
    prompts = {}
    for session in (plain, with_system):
        for turn in range(2):
            _, reply, _ = await coord.send(session.id, f"question {turn}")
            done = await rec.wait(finished(reply.id))
            assert done.message.state is MessageState.COMPLETE, done.message.error
            assert done.message.content == TinyServer.REPLY
            prompts[session.title, turn] = done.message.prompt_tokens
    # the second turn carried the first question and answer; the system prompt was sent
    assert prompts["plain", 1] > prompts["plain", 0] + 7
    assert prompts["system", 0] > prompts["plain", 0] + 20


@pytest.mark.parametrize("kind", KINDS)
async def test_max_tokens_reached_completes_with_reason_length(tiny_server, tmp_path, coordinators, kind):
    coord, rec = await coordinators(make_config(tmp_path, provider(tiny_server.url, kind, max_tokens=3)))
    session = await coord.create_session()
    _, reply, _ = await coord.send(session.id, "hi")
    done = await rec.wait(finished(reply.id))
    assert done.message.state is MessageState.COMPLETE
    assert done.message.finish_reason in ("length", "max_tokens") and done.message.completion_tokens == 3


@pytest.mark.parametrize("kind", KINDS)
async def test_context_overflow_fails_at_once_with_the_servers_reason(tiny_server, tmp_path, coordinators, kind):
    coord, rec = await coordinators(make_config(tmp_path, provider(tiny_server.url, kind)))
    session = await coord.create_session()
    _, reply, job = await coord.send(session.id, "the of and " * 3000)  # > 4,096 tokens of context
    done = await rec.wait(finished(reply.id))
    assert done.message.state is MessageState.ERROR
    assert "HTTP 400" in done.message.error and "context" in done.message.error.lower()
    assert (await coord.job(job.id)).attempts == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_api_key_required_right_and_wrong(servers, tmp_path, coordinators, monkeypatch, kind):
    server = servers(api_key="sk-right")
    monkeypatch.setenv("TINY_KEY", "sk-right")
    monkeypatch.setenv("WRONG_KEY", "sk-wrong")
    config = make_config(tmp_path, provider(server.url, kind, api_key_env="TINY_KEY"))
    config.providers["bad"] = ProviderConfig(
        name="bad", kind=kind, base_url=server.url, model="tiny", api_key_env="WRONG_KEY"
    )
    coord, rec = await coordinators(config)
    good, bad = await coord.create_session("good"), await coord.create_session("bad", provider="bad")
    _, ok_reply, _ = await coord.send(good.id, "hi")
    _, bad_reply, bad_job = await coord.send(bad.id, "hi")
    assert (await rec.wait(finished(ok_reply.id))).message.state is MessageState.COMPLETE
    failed = await rec.wait(finished(bad_reply.id))
    assert failed.message.state is MessageState.ERROR and "HTTP 401" in failed.message.error
    assert "check the API key" in failed.message.error and "sk-wrong" not in failed.message.error
    assert (await coord.job(bad_job.id)).attempts == 1


async def test_server_killed_mid_stream_is_retried_once_it_is_back(servers, tmp_path, coordinators):
    """OpenAI API only: llama.cpp's /v1/messages ignores `ignore_eos`, so through it the tiny
    model's reply is 7 tokens, too short to kill mid-stream (the fault server's reset row
    covers that path for Anthropic; the next test covers a dead Anthropic server)."""
    kind = "openai"
    server = servers()
    pc = provider(server.url, kind, max_tokens=1500, params=LONG)
    coord, rec = await coordinators(make_config(tmp_path, pc, max_attempts=6), backoff_base=0.4)
    session = await coord.create_session()
    _, reply, job = await coord.send(session.id, "go on")
    await rec.wait(lambda e: isinstance(e, ReplyDelta) and e.message_id == reply.id)
    server.kill()
    cut = await rec.wait(finished(reply.id))
    assert cut.message.state is MessageState.INTERRUPTED and "retrying in" in cut.message.error
    assert (await coord.session(session.id)).status is SessionStatus.QUEUED
    server.start()  # same port: the server is back
    done = await rec.wait(
        lambda e: finished(reply.id)(e) and e.message.state is not MessageState.INTERRUPTED, after=cut, timeout=60
    )
    assert done.message.state is MessageState.COMPLETE, done.message.error
    assert done.message.completion_tokens == 1500
    final = await coord.job(job.id)
    assert final.state is JobState.SUCCEEDED and final.attempts >= 2


@pytest.mark.parametrize("kind", KINDS)
async def test_server_down_when_sending_is_retried_once_it_is_back(servers, tmp_path, coordinators, kind):
    """Down after it had answered (a restart): retried. One that never answered this process
    fails at once (tests/providers/test_first_contact.py)."""
    server = servers()
    coord, rec = await coordinators(make_config(tmp_path, provider(server.url, kind), max_attempts=8), backoff_base=0.3)
    await coord.list_models("llama")  # the server has answered this process
    server.kill()
    session = await coord.create_session()
    _, reply, job = await coord.send(session.id, "anyone there?")
    cut = await rec.wait(finished(reply.id))
    assert cut.message.state is MessageState.INTERRUPTED
    assert "cannot connect" in cut.message.error and "retrying in" in cut.message.error
    server.start()
    done = await rec.wait(
        lambda e: finished(reply.id)(e) and e.message.state is not MessageState.INTERRUPTED, after=cut, timeout=60
    )
    assert done.message.state is MessageState.COMPLETE and done.message.content == TinyServer.REPLY
    assert (await coord.job(job.id)).attempts >= 2


@pytest.mark.parametrize("kind", KINDS)
async def test_server_restarted_between_jobs_is_invisible(servers, tmp_path, coordinators, kind):
    server = servers()
    coord, rec = await coordinators(make_config(tmp_path, provider(server.url, kind)))
    session = await coord.create_session()
    _, first, _ = await coord.send(session.id, "one")
    assert (await rec.wait(finished(first.id))).message.state is MessageState.COMPLETE
    server.stop()
    server.start()  # a pooled keep-alive connection to the old process is now dead
    _, second, job = await coord.send(session.id, "two")
    done = await rec.wait(finished(second.id))
    assert done.message.state is MessageState.COMPLETE and done.message.error is None
    assert (await coord.job(job.id)).attempts == 1


async def test_twenty_streams_on_two_server_slots_all_progress(tiny_server, tmp_path, coordinators):
    """llama.cpp queues requests beyond its 2 slots. Every one must finish, none may time
    out, and while a request waits its session shows that it is streaming (the reply box
    says 'waiting for the model…'), not idle or failed."""
    pc = provider(tiny_server.url, "openai", max_tokens=300, params=LONG, read_timeout=30)
    coord, rec = await coordinators(make_config(tmp_path, pc, workers=20))
    replies = []
    for i in range(20):
        session = await coord.create_session(f"s{i}")
        replies.append((session.id, (await coord.send(session.id, "count"))[1].id))
    await asyncio.gather(
        *(rec.wait(lambda e, r=r: isinstance(e, ReplyStarted) and e.message_id == r) for _, r in replies)
    )
    statuses = [(await coord.session(sid)).status for sid, _ in replies]
    assert statuses.count(SessionStatus.STREAMING) >= 10  # all sent; most wait at the server
    for _, r in replies:
        done = await rec.wait(finished(r), timeout=120)
        assert done.message.state is MessageState.COMPLETE, done.message.error
        assert done.message.completion_tokens == 300
    firsts = {}
    for i, e in enumerate(rec.events):
        if isinstance(e, ReplyDelta) and e.message_id not in firsts:
            firsts[e.message_id] = rec.times[i]
    spread = max(firsts.values()) - min(firsts.values())
    assert spread > 0.05  # the first tokens came in waves: the server really queued
