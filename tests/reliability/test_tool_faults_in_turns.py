"""The tool faults of tests/tools/test_tools.py, through whole agent turns: the model (the fake
server) asks for a call that goes wrong on the real MCP side (tests/mcpservers/faulty.py over
stdio), the call's step stores an error result, the model is asked again with it, and the turn
ends with the model's answer. Nothing crashes, nothing is lost, every step succeeds."""

from __future__ import annotations

import dataclasses

import pytest

from chatplex.core.models import JobKind, JobState, MessageState, Role, SessionStatus
from chatplex.providers.base import ToolResultPart
from tests.helpers import make_config, provider_for
from tests.tools.helpers import faulty_server

AFTER = "I saw what the tool said."

# (tool the model calls, its arguments, is the result an error, words the result holds)
FAULTS = {
    "the server dies mid-call": ("crash", "{}", True, "stopped during a call of crash (its outcome is unknown)"),
    "the call hangs past its timeout": ("hang", '{"seconds": 60}', True, "hang took longer than 1 s"),
    "malformed content": ("malformed", "{}", True, ""),
    "an unknown tool name": ("no_such_tool", "{}", True, "there is no tool named 'no_such_tool'"),
    "arguments that fail the schema": ("echo", '{"txt": "hi"}', True, "do not fit its schema"),
    "a 1 MB result": ("big", '{"kilobytes": 1024}', False, "0123456789abcdef"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_a_tool_fault_is_an_error_result_the_model_answers_and_the_turn_ends(coordinators, fake, tmp_path, fault):
    tool, args, is_error, words = FAULTS[fault]
    s = fake.scenario(parts=[("tool", tool, args)], after_tool=AFTER)
    config = make_config(tmp_path, provider_for(s), workers=2)
    server = faulty_server(approval="allow", timeout=1.0)
    coord, rec = await coordinators(dataclasses.replace(config, mcp={"faulty": server}, tool_result_limit=10_000))
    sid = (await coord.create_session("faulty turn")).id
    await coord.send(sid, "use the tool")
    await rec.wait(
        lambda e: (
            getattr(e, "session", None) is not None
            and e.session.id == sid
            and e.session.status is SessionStatus.WAITING
        )
    )
    messages = await coord.messages(sid)
    assert [m.role for m in messages] == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]
    step, result, answer = messages[1:]
    [part] = result.parts
    assert type(part) is ToolResultPart and part.call_id == step.parts[-1].id
    assert part.is_error is is_error and words in part.content, part.content[:300]
    assert answer.state is MessageState.COMPLETE and answer.content == AFTER
    jobs = sorted(await coord.queue.jobs(), key=lambda j: j.id)
    assert [(j.kind, j.state) for j in jobs] == [
        (JobKind.REPLY, JobState.SUCCEEDED),
        (JobKind.TOOL, JobState.SUCCEEDED),
        (JobKind.REPLY, JobState.SUCCEEDED),
    ]
    told = s.requests[-1]["messages"][-1]  # what the model was given: the result, cut at the limit
    assert told["role"] == "tool" and told["tool_call_id"] == part.call_id
    if tool == "big":
        assert len(part.content) == 1024 * 1024  # stored whole
        assert len(told["content"]) < 11_000 and "result truncated: 1,038,576 more characters" in told["content"]
    else:
        assert told["content"] == part.content
