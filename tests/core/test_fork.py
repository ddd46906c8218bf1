"""Forking a session in the store: a copy up to a message, parts and settings included; the
original untouched; a reply still streaming is copied as interrupted, without its job."""

from __future__ import annotations

import pytest

from chatplex.core.db import Store
from chatplex.core.models import MessageState, Priority
from chatplex.providers.base import ReasoningPart, TextPart


async def test_a_fork_copies_messages_with_their_parts_up_to_one_and_the_original_stays(tmp_path):
    async with await Store.open(tmp_path / "x.db") as store:
        s = await store.create_session("thinking", "p", "m", "be brief")
        await store.update_session(s.id, servers=["time"])
        user, reply, _, _ = await store.create_turn(s.id, "why?", Priority.LOW, 1)
        job, _ = await store.claim("w", 30)
        parts = [ReasoningPart("hmm", seconds=2.5), TextPart("because")]
        await store.finish(job.id, "w", "succeeded", "because", parts=parts)
        _, streaming, _, _ = await store.create_turn(s.id, "and then?", Priority.LOW, 1)
        await store.claim("w", 30)  # still running when forked

        fork = await store.fork_session(s.id, None, "thinking (fork)")
        assert (fork.forked_from, fork.forked_at, fork.system_prompt, fork.servers) == (
            s.id,
            None,
            "be brief",
            ("time",),
        )
        copied = await store.messages(fork.id)
        assert [m.content for m in copied] == ["why?", "because", "and then?", ""]
        assert copied[1].parts == parts and copied[1].parts[0].seconds == 2.5
        assert copied[3].state is MessageState.INTERRUPTED and copied[3].job_id is None
        assert fork.preview == "and then?"
        assert [j.session_id for j in await store.jobs()] == [s.id, s.id]  # no job came with it

        upto = await store.fork_session(s.id, reply.id, "t")
        assert [m.content for m in await store.messages(upto.id)] == ["why?", "because"]
        before = await store.fork_session(s.id, user.id, "t", keep_at=False)  # to send an edit of it
        assert await store.messages(before.id) == []
        assert [m.id for m in await store.messages(s.id)] == [user.id, reply.id, streaming.id - 1, streaming.id]
        with pytest.raises(KeyError):
            await store.fork_session(s.id, 10_000, "t")


async def test_a_fork_at_a_step_that_called_tools_takes_their_results_and_answers_the_unanswered(tmp_path):
    """Both APIs refuse a request whose tool calls have no results: a fork at a model step
    takes the tool steps that answer it, and a call still waiting for approval is copied as
    answered with an error result (it is not run in the fork)."""
    from chatplex.core.models import Role
    from chatplex.providers.base import ToolCallPart, ToolResultPart

    async with await Store.open(tmp_path / "x.db") as store:
        s = await store.create_session("agent", "p", "m")
        _, step, _, _ = await store.create_turn(s.id, "what time is it?", Priority.LOW, 1)
        job, _ = await store.claim("w", 30)
        call = ToolCallPart("call_1", "get_time", "{}")
        await store.open_round(
            job.id, "w", "", [call], usage=(1, 1), finish_reason="tool_calls", unread=False,
            calls=[(call, "ask", "")], priority=Priority.LOW, max_rounds=5,
        )  # fmt: skip
        [held] = [m for m in await store.messages(s.id) if m.role is Role.TOOL]
        assert held.state is not MessageState.COMPLETE  # waits for an approval in the original

        fork = await store.fork_session(s.id, step.id, "agent (fork)")
        copied = await store.messages(fork.id)
        assert [m.role for m in copied] == [Role.USER, Role.ASSISTANT, Role.TOOL]
        result = copied[2]
        assert result.state is MessageState.COMPLETE
        [part] = result.parts
        assert type(part) is ToolResultPart and part.call_id == "call_1" and part.is_error
        assert "forked before this call had a result" in part.content
        history, _ = await store.context(fork.id, copied[-1].id + 10_000)
        assert [m.role for m in history][-1] is Role.TOOL  # what the next request would carry
        assert (await store.messages(s.id))[-1].state is held.state  # the original still waits
