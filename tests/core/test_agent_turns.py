"""Agent turns as durable steps, with nothing faked: the tiny agent model on llama.cpp's real
server asks for get_current_time({"timezone": "UTC"}), the real `mcp-server-time` answers,
and the model answers back ("and to in is.") once it has seen a result."""

from __future__ import annotations

import dataclasses
import json
import socket

import pytest

from chatplex.config import Config, ProviderConfig
from chatplex.core import export
from chatplex.core.db import Store
from chatplex.core.db.steps import UNKNOWN_OUTCOME
from chatplex.core.models import JobKind, JobState, Message, MessageState, Role, SessionStatus
from chatplex.core.running import turn_of
from chatplex.providers.base import ReasoningPart, ToolCallPart, ToolResultPart
from tests.helpers import make_config
from tests.tools.helpers import time_server

ANSWER = "and to in is."


def agent_config(tmp_path, agent_server, kind: str = "openai", approval: str = "allow", **kw) -> Config:
    provider = ProviderConfig(
        name="agent", kind=kind, base_url=agent_server.url, model="tiny", max_tokens=60, params={"temperature": 0}
    )
    config = make_config(tmp_path, provider, workers=kw.pop("workers", 2))
    return dataclasses.replace(config, mcp={"time": time_server(approval=approval)}, **kw)


async def wait_for(rec, coord, sid, status: SessionStatus, after=None):
    """The session's mark becomes `status` (in an event later than `after`, if given)."""
    await rec.wait(
        lambda e: getattr(e, "session", None) is not None and e.session.id == sid and e.session.status is status,
        after=after,
    )


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_whole_turn_thinks_calls_the_real_time_server_and_answers(coordinators, tmp_path, agent_server, kind):
    coord, rec = await coordinators(agent_config(tmp_path, agent_server, kind))
    sid = (await coord.create_session("agent", provider="agent")).id
    await coord.send(sid, "what time is it?")
    await wait_for(rec, coord, sid, SessionStatus.WAITING)
    messages = await coord.messages(sid)
    assert [m.role for m in messages] == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]
    step, result, answer = messages[1:]
    assert [type(p) for p in step.parts] == [ReasoningPart, ToolCallPart]
    call = step.parts[1]
    assert call.name == "get_current_time" and '"UTC"' in call.arguments
    assert result.state is MessageState.COMPLETE and result.parts[0].call_id == call.id
    assert not result.parts[0].is_error and '"timezone": "UTC"' in result.content  # the real server's JSON
    assert answer.state is MessageState.COMPLETE and answer.content.strip() == ANSWER
    jobs = sorted(await coord.queue.jobs(), key=lambda j: j.id)
    assert [(j.kind, j.state) for j in jobs] == [
        (JobKind.REPLY, JobState.SUCCEEDED),
        (JobKind.TOOL, JobState.SUCCEEDED),
        (JobKind.REPLY, JobState.SUCCEEDED),
    ]
    assert jobs[1].parent == step.id and jobs[1].call_id == call.id
    # the whole turn is in both exports
    session = await coord.store.get_session(sid)
    md = export.to_markdown(session, messages)
    assert "get_current_time" in md and '"timezone": "UTC"' in md and ANSWER in md
    again = json.loads(export.to_json(session, messages))
    kinds = [[p["kind"] for p in m.get("parts", [])] for m in again["messages"]]
    assert kinds == [[], ["reasoning", "tool_call"], ["tool_result"], []]  # plain texts need no parts


def test_a_result_past_the_limit_reaches_the_model_cut_with_a_note_and_stays_whole():
    big = "x" * 250_000
    stored = Message(1, 1, Role.TOOL, big, parts=[ToolResultPart("c1", big)])
    [sent] = turn_of(stored, result_limit=100_000).parts
    assert sent.content.startswith("x" * 100_000) and sent.content.endswith(
        "[… result truncated: 150,000 more characters not shown]"
    )
    assert stored.parts[0].content == big  # the stored result is untouched


async def test_a_call_whose_policy_asks_is_held_holding_no_worker_until_approved(coordinators, tmp_path, agent_server):
    coord, rec = await coordinators(agent_config(tmp_path, agent_server, approval="ask", workers=1))
    sid = (await coord.create_session("asks", provider="agent")).id
    await coord.send(sid, "what time is it?")
    await wait_for(rec, coord, sid, SessionStatus.NEEDS_APPROVAL)
    [waiting] = await coord.approvals()
    assert waiting.session.id == sid and waiting.call.name == "get_current_time" and "asks" in waiting.reason
    assert waiting.job.state is JobState.HELD and coord.workers_busy == 0  # it holds no worker
    # the one worker serves another session meanwhile
    other = (await coord.create_session("other", provider="agent")).id
    await coord.send(other, "hello")
    await wait_for(rec, coord, other, SessionStatus.NEEDS_APPROVAL)
    assert await coord.approve(waiting.job.id)
    assert not await coord.approve(waiting.job.id)  # answered already: nothing to do
    await wait_for(rec, coord, sid, SessionStatus.WAITING)
    messages = await coord.messages(sid)
    assert messages[-1].content.strip() == ANSWER and '"UTC"' in messages[-2].content


async def test_approve_always_lets_that_tool_run_unasked_in_that_session_only(coordinators, tmp_path, agent_server):
    from chatplex.core.agent import decide_calls

    coord, rec = await coordinators(agent_config(tmp_path, agent_server, approval="ask"))
    sid = (await coord.create_session("trusting", provider="agent")).id
    await coord.send(sid, "what time is it?")
    await wait_for(rec, coord, sid, SessionStatus.NEEDS_APPROVAL)
    [waiting] = await coord.approvals(sid)
    assert await coord.approve(waiting.job.id, always=True)
    await wait_for(rec, coord, sid, SessionStatus.WAITING)
    trusting = await coord.store.get_session(sid)
    assert trusting.allowed_tools == ("get_current_time",)
    # (the tiny model calls a tool once per turn: the next calls are decided here, as a step's are)
    offered, _ = await coord.toolbox().offered()
    call = ToolCallPart("c2", "get_current_time", '{"timezone": "UTC"}')
    assert decide_calls(coord.toolbox(), offered, trusting, [call]) == [(call, "allow", "")]
    other = await coord.create_session("careful", provider="agent")
    assert decide_calls(coord.toolbox(), offered, other, [call])[0][1] == "ask"


async def test_a_denied_call_gives_the_model_an_error_result_with_the_reason(coordinators, tmp_path, agent_server):
    coord, rec = await coordinators(agent_config(tmp_path, agent_server, approval="ask"))
    sid = (await coord.create_session("denied", provider="agent")).id
    await coord.send(sid, "what time is it?")
    await wait_for(rec, coord, sid, SessionStatus.NEEDS_APPROVAL)
    [waiting] = await coord.approvals()
    assert await coord.deny(waiting.job.id, reason="not now")
    await wait_for(rec, coord, sid, SessionStatus.WAITING)
    messages = await coord.messages(sid)
    result = messages[2].parts[0]
    assert result == ToolResultPart(waiting.call.id, "the user denied this call: not now", True)
    assert messages[-1].content.strip() == ANSWER  # the turn went on without the call


async def test_a_policy_that_denies_never_runs_the_call_and_the_turn_goes_on(coordinators, tmp_path, agent_server):
    coord, rec = await coordinators(agent_config(tmp_path, agent_server, approval="deny"))
    sid = (await coord.create_session("denied", provider="agent")).id
    await coord.send(sid, "what time is it?")
    await wait_for(rec, coord, sid, SessionStatus.WAITING)
    messages = await coord.messages(sid)
    assert messages[2].parts[0].is_error and "denies get_current_time" in messages[2].content
    assert messages[-1].content.strip() == ANSWER
    assert [j.kind for j in await coord.queue.jobs()].count(JobKind.TOOL) == 0


async def test_max_tool_rounds_stops_the_turn_and_says_so(coordinators, tmp_path, agent_server):
    """The tiny model answers after one result: one round is the most this limit allows."""
    coord, rec = await coordinators(agent_config(tmp_path, agent_server, max_tool_rounds=1))
    sid = (await coord.create_session("bounded", provider="agent")).id
    await coord.send(sid, "what time is it?")
    await wait_for(rec, coord, sid, SessionStatus.WAITING)
    last = (await coord.messages(sid))[-1]
    assert last.role is Role.ASSISTANT and last.state is MessageState.ERROR
    assert "stopped after 1 rounds of tool calls (max_tool_rounds = 1" in (last.error or "")


async def test_a_call_cut_by_a_dead_process_is_held_outcome_unknown_not_run_again(coordinators, tmp_path, agent_server):
    """The process running a call died (its lease owner is gone): recovery never queues the
    call again; it waits for the user, saying its outcome is unknown."""
    config = agent_config(tmp_path, agent_server, approval="ask")
    coord, rec = await coordinators(config)
    sid = (await coord.create_session("cut", provider="agent")).id
    await coord.send(sid, "what time is it?")
    await wait_for(rec, coord, sid, SessionStatus.NEEDS_APPROVAL)
    [waiting] = await coord.approvals()
    await coord.stop()
    # as if a process (long dead) had claimed it and died mid-call
    dead = f"{socket.gethostname()}:999999999:0"
    async with await Store.open(config.db_path) as store:
        await store.write(
            lambda db: db.execute(
                "UPDATE jobs SET state='running', lease_owner=:o, lease_expires_at=0 WHERE id=:j",
                {"o": dead, "j": waiting.job.id},
            )
        )
    again, rec = await coordinators(config)
    [held] = await again.approvals()
    assert held.job.id == waiting.job.id and held.reason == UNKNOWN_OUTCOME
    assert (await again.store.get_session(sid)).status is SessionStatus.NEEDS_APPROVAL
    assert [m.role for m in await again.messages(sid)] == [Role.USER, Role.ASSISTANT, Role.TOOL]


def test_approve_all_turns_ask_into_allow_but_a_deny_stays_and_unknown_names_run():
    from chatplex.core.agent import decide_calls
    from chatplex.core.models import Session
    from chatplex.tools.spec import ToolSpec
    from chatplex.tools.toolbox import Toolbox

    box = Toolbox([time_server(approval="ask", tools={"convert_*": "deny"})])
    offered = {n: ToolSpec("time", n, "", {}) for n in ("get_current_time", "convert_time")}
    session = Session(1, "s", "p", "m")
    ask, deny, ghost = (
        ToolCallPart(str(i), n, "{}") for i, n in enumerate(["get_current_time", "convert_time", "nope"])
    )
    decided = [d for _, d, _ in decide_calls(box, offered, session, [ask, deny, ghost])]
    assert decided == ["ask", "deny", "allow"]  # an unknown name gets its error without reaching a server
    decided = [d for _, d, _ in decide_calls(box, offered, session, [ask, deny, ghost], approve_all=True)]
    assert decided == ["allow", "deny", "allow"]
