"""Replies made of parts (reasoning, text, tool calls) on both APIs: what the stream gives,
how the pieces are put back together, and how a history with parts is sent back.

Against the fault server's switches for each wire format, and against llama.cpp's real
server with the tiny agent and think-only models (tests/tinyllm/make_tiny_agent.py)."""

from __future__ import annotations

import logging
import random

import pytest

from chatplex.providers.anthropic import AnthropicProvider
from chatplex.providers.base import (
    ChatMessage,
    ChatRequest,
    Finish,
    ReasoningDelta,
    ReasoningPart,
    TextDelta,
    TextPart,
    ToolCallPart,
    ToolDef,
    ToolResultPart,
    Usage,
)
from chatplex.providers.openai import OpenAIProvider
from chatplex.providers.parts import Assembler, ThinkTags

KINDS = {"openai": OpenAIProvider, "anthropic": AnthropicProvider}
TIME_TOOL = {
    "name": "get_current_time",
    "description": "the time now",
    "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]},
}


async def run(provider, request: ChatRequest) -> tuple[list, Assembler, str, list[Usage]]:
    events = [e async for e in provider.stream(request)]
    assembled = Assembler()
    for e in events:
        assembled.feed(e)
    finish = next(e.reason for e in events if isinstance(e, Finish))
    return events, assembled, finish, [e for e in events if isinstance(e, Usage)]


def ask(text: str = "hi", **kw) -> ChatRequest:
    return ChatRequest(model=kw.pop("model", "fake-small"), messages=[ChatMessage("user", text)], **kw)


# ---------------------------------------------------------------------- inline <think> tags
def test_think_tags_split_reasoning_from_text_wherever_the_deltas_are_cut():
    whole = "\n<think>weigh <b>it</b> up</think>\n\nThe answer is <4."
    rng = random.Random(5)
    for _ in range(300):
        cuts = sorted(rng.sample(range(1, len(whole)), rng.randrange(0, 12)))
        pieces = [whole[a:b] for a, b in zip([0, *cuts], [*cuts, len(whole)], strict=True)]
        tags = ThinkTags()
        events = [e for p in pieces for e in tags.feed(p)] + tags.end()
        thought = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        assert (thought, text) == ("weigh <b>it</b> up", "\nThe answer is <4."), pieces


def test_think_tags_give_back_a_tag_cut_short_at_the_end():
    tags = ThinkTags()
    events = tags.feed("a <thi") + tags.end()
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "a <thi"


# ---------------------------------------------------------------------- the fault server
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_reasoning_then_text_then_a_tool_call_arrive_as_parts_in_order(fake, kind):
    s = fake.scenario(
        parts=[("reasoning", "Let me check the clock"), ("text", "One moment."), ("tool", "get_time", '{"tz": "UTC"}')]
    )
    p = KINDS[kind]("fake", s.url)
    _, assembled, finish, _ = await run(p, ask())
    await p.aclose()
    parts = assembled.parts()
    assert [type(x) for x in parts] == [ReasoningPart, TextPart, ToolCallPart]
    assert parts[0].text == "Let me check the clock"
    assert parts[1] == TextPart("One moment.")
    assert (parts[2].name, parts[2].arguments) == ("get_time", '{"tz": "UTC"}') and parts[2].id
    assert finish == ("tool_calls" if kind == "openai" else "tool_use")
    assert assembled.text == "One moment."
    if kind == "anthropic":
        assert parts[0].signature == "sig-abc"


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_tool_arguments_split_at_every_character_are_joined_exactly(fake, kind):
    args = '{"city": "Zürich", "days": [1, 2], "note": "a \\"quoted\\" word"}'
    s = fake.scenario(parts=[("tool", "forecast", args), ("tool", "clock", "{}")], split_args=True)
    p = KINDS[kind]("fake", s.url)
    _, assembled, _, _ = await run(p, ask())
    await p.aclose()
    calls = assembled.parts()
    assert [(c.name, c.arguments) for c in calls] == [("forecast", args), ("clock", "{}")]
    assert len({c.id for c in calls}) == 2


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_malformed_arguments_are_kept_as_streamed(fake, kind):
    s = fake.scenario(parts=[("tool", "clock", '{"tz": "UT')])
    p = KINDS[kind]("fake", s.url)
    _, assembled, _, _ = await run(p, ask())
    await p.aclose()
    assert assembled.parts()[0].arguments == '{"tz": "UT'  # judged by whoever runs it, not lost here


async def test_anthropic_interleaved_blocks_and_a_late_signature_find_their_block(fake):
    """llama.cpp's server opens block 1 before it stops block 0, and sends block 0's
    signature after block 1's deltas."""
    s = fake.scenario(
        parts=[("reasoning", "first thought"), ("text", "Hello"), ("reasoning", "second thought"), ("text", "there")],
        interleave=True,
        signature="SIG",
    )
    p = AnthropicProvider("fake", s.url)
    _, assembled, _, _ = await run(p, ask())
    await p.aclose()
    assert assembled.parts() == [
        ReasoningPart("first thought", "SIG"),
        TextPart("Hello"),
        ReasoningPart("second thought", "SIG"),
        TextPart("there"),
    ]


async def test_anthropic_redacted_thinking_is_kept_whole(fake):
    s = fake.scenario(parts=[("redacted", "EuoBCkYIBBgCKkB+opaque=="), ("reasoning", "visible"), ("text", "Done.")])
    p = AnthropicProvider("fake", s.url)
    _, assembled, _, _ = await run(p, ask())
    await p.aclose()
    parts = assembled.parts()
    assert parts[0] == ReasoningPart("", "", "EuoBCkYIBBgCKkB+opaque==")
    assert parts[1] == ReasoningPart("visible", "sig-abc") and parts[2] == TextPart("Done.")


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_reasoning_only_reply_cut_at_the_token_limit(fake, kind):
    s = fake.scenario(parts=[("reasoning", "still thinking about it")], finish="length")
    p = KINDS[kind]("fake", s.url)
    _, assembled, finish, _ = await run(p, ask())
    await p.aclose()
    assert finish == "length"
    assert [type(x) for x in assembled.parts()] == [ReasoningPart] and assembled.text == ""


async def test_inline_think_tags_become_reasoning_when_the_provider_says_so(fake):
    s = fake.scenario(parts=[("reasoning", "hmm, <tags> inside"), ("text", "Answer.")], think_inline=True)
    plain = OpenAIProvider("fake", s.url)
    _, as_text, _, _ = await run(plain, ask())
    await plain.aclose()
    assert as_text.parts() == [TextPart("<think>hmm, <tags> inside</think>\n\nAnswer.")]  # default: text as sent
    tagged = OpenAIProvider("fake", s.url, think_tags=True)
    _, split, _, _ = await run(tagged, ask())
    await tagged.aclose()
    assert split.parts() == [ReasoningPart("hmm, <tags> inside"), TextPart("Answer.")]


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content", "both"])
async def test_openai_reasoning_in_either_field_or_both_counts_once(fake, field):
    s = fake.scenario(parts=[("reasoning", "one two three"), ("text", "Four.")], reasoning_field=field)
    p = OpenAIProvider("fake", s.url)
    _, assembled, _, _ = await run(p, ask())
    await p.aclose()
    assert assembled.parts() == [ReasoningPart("one two three"), TextPart("Four.")]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_unknown_block_and_delta_types_are_skipped_and_logged(fake, kind, caplog):
    s = fake.scenario(parts=[("reasoning", "a"), ("text", "b")], unknown_types=True)
    p = KINDS[kind]("fake", s.url)
    with caplog.at_level(logging.WARNING, logger="chatplex.provider"):
        _, assembled, _, _ = await run(p, ask())
    await p.aclose()
    assert assembled.parts() == [ReasoningPart("a", "sig-abc" if kind == "anthropic" else ""), TextPart("b")]
    if kind == "anthropic":
        logged = [r.getMessage() for r in caplog.records]
        assert any("server_gadget_v9" in m for m in logged) and any("gadget_delta_v9" in m for m in logged)
        assert len(logged) == 2  # once each, not once per event


async def test_openai_reasoning_tokens_are_counted_apart(fake):
    s = fake.scenario(parts=[("reasoning", "a b"), ("text", "c")], reasoning_tokens=2)
    p = OpenAIProvider("fake", s.url)
    _, _, _, usage = await run(p, ask())
    await p.aclose()
    assert usage[-1].reasoning_tokens == 2


# ---------------------------------------------------------------------- requests: history with parts
THOUGHT = ReasoningPart("the user wants the time", "SIG-1")
CALL = ToolCallPart("call_9", "get_current_time", '{"timezone": "UTC"}')
RESULT = ToolResultPart("call_9", "12:00 UTC")


def history(model: str = "m1") -> list[ChatMessage]:
    return [
        ChatMessage("user", "what time is it?"),
        ChatMessage("assistant", "", (THOUGHT, TextPart("Checking."), CALL), model=model),
        ChatMessage("tool", "12:00 UTC", (RESULT,)),
        ChatMessage("assistant", "It is noon.", (ReasoningPart("easy", "SIG-2"), TextPart("It is noon.")), model=model),
        ChatMessage("user", "thanks"),
    ]


def test_openai_replays_tool_calls_results_and_reasoning_of_tool_turns_only():
    p = OpenAIProvider("x", "http://127.0.0.1:1/v1")
    messages = p.body(ChatRequest(model="m1", messages=history()))["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {"id": "call_9", "type": "function", "function": {"name": "get_current_time", "arguments": CALL.arguments}}
        ],
        "reasoning_content": "the user wants the time",  # DeepSeek requires it on a tool turn
    }
    assert messages[2] == {"role": "tool", "tool_call_id": "call_9", "content": "12:00 UTC"}
    assert messages[3] == {"role": "assistant", "content": "It is noon."}  # and rejects it elsewhere
    always = OpenAIProvider("x", "http://127.0.0.1:1/v1", replay_reasoning="always")
    assert always.body(ChatRequest(model="m1", messages=history()))["messages"][3]["reasoning_content"] == "easy"
    never = OpenAIProvider("x", "http://127.0.0.1:1/v1", replay_reasoning="never")
    assert "reasoning_content" not in never.body(ChatRequest(model="m1", messages=history()))["messages"][1]


def test_anthropic_replays_thinking_unchanged_while_the_model_is_the_same():
    p = AnthropicProvider("x", "http://127.0.0.1:1/v1")
    messages = p.body(ChatRequest(model="m1", messages=history("m1")))["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "the user wants the time", "signature": "SIG-1"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "call_9", "name": "get_current_time", "input": {"timezone": "UTC"}},
        ],
    }
    assert messages[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "call_9", "content": "12:00 UTC", "is_error": False}],
    }
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    after_switch = p.body(ChatRequest(model="m2", messages=history("m1")))["messages"]
    assert all(b["type"] != "thinking" for m in after_switch if isinstance(m["content"], list) for b in m["content"])


def test_anthropic_thinking_settings_from_config_and_session():
    p = AnthropicProvider("x", "http://127.0.0.1:1/v1", thinking={"type": "enabled", "budget_tokens": 6000})
    body = p.body(ChatRequest(model="m", messages=[ChatMessage("user", "hi")], temperature=0.2, max_tokens=1000))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 6000}
    assert body["max_tokens"] > 6000 and "temperature" not in body  # the API's rules for thinking
    high = p.body(ChatRequest(model="m", messages=[ChatMessage("user", "hi")], reasoning_effort="high"))
    assert high["thinking"]["budget_tokens"] == 24576
    off = p.body(ChatRequest(model="m", messages=[ChatMessage("user", "hi")], reasoning_effort="off"))
    assert "thinking" not in off


def test_tools_are_offered_in_each_api_s_own_shape():
    tool = ToolDef(TIME_TOOL["name"], TIME_TOOL["description"], TIME_TOOL["parameters"])
    request = ChatRequest(model="m", messages=[ChatMessage("user", "hi")], tools=(tool,))
    assert OpenAIProvider("x", "http://127.0.0.1:1/v1").body(request)["tools"] == [
        {"type": "function", "function": TIME_TOOL}
    ]
    assert AnthropicProvider("x", "http://127.0.0.1:1/v1").body(request)["tools"] == [
        {"name": TIME_TOOL["name"], "description": TIME_TOOL["description"], "input_schema": TIME_TOOL["parameters"]}
    ]
    assert "tools" not in OpenAIProvider("x", "http://127.0.0.1:1/v1").body(ChatRequest("m", []))


def test_openai_reasoning_effort_from_config_and_session():
    p = OpenAIProvider("x", "http://127.0.0.1:1/v1", reasoning_effort="low")
    assert p.body(ChatRequest(model="m", messages=[]))["reasoning_effort"] == "low"
    assert p.body(ChatRequest(model="m", messages=[], reasoning_effort="high"))["reasoning_effort"] == "high"
    assert "reasoning_effort" not in OpenAIProvider("x", "http://127.0.0.1:1/v1").body(ChatRequest("m", []))


# ---------------------------------------------------------------------- llama.cpp's real server
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_whole_agent_turn_against_llamacpp(agent_server, kind):
    """think → call → result → answer, with llama.cpp's own parsers on both APIs; the
    second request replays the first turn's parts in the API's own shape."""
    p = KINDS[kind]("tiny", agent_server.url)
    tool = ToolDef(TIME_TOOL["name"], TIME_TOOL["description"], TIME_TOOL["parameters"])
    first = ChatRequest(
        model="tiny",
        messages=[ChatMessage("user", "what time is it?")],
        temperature=0,
        max_tokens=60,
        tools=(tool,),
    )
    _, assembled, finish, _ = await run(p, first)
    parts = assembled.parts()
    assert finish == ("tool_calls" if kind == "openai" else "tool_use")
    assert [type(x) for x in parts] == [ReasoningPart, ToolCallPart]
    assert parts[0].text.strip() == "the of"
    call = parts[1]
    assert call.name == "get_current_time" and call.arguments.replace(" ", "") == '{"timezone":"UTC"}' and call.id
    second = ChatRequest(
        model="tiny",
        messages=[
            *first.messages,
            ChatMessage("assistant", "", tuple(parts), model="tiny"),
            ChatMessage("tool", "12:00", (ToolResultPart(call.id, "12:00"),)),
        ],
        temperature=0,
        max_tokens=60,
        tools=(tool,),
    )
    _, answer, finish, _ = await run(p, second)
    await p.aclose()
    assert answer.text.strip() == "and to in is." and finish in ("stop", "end_turn")
    assert not any(isinstance(x, ToolCallPart) for x in answer.parts())


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_reasoning_then_answer_from_llamacpp(think_server, kind):
    p = KINDS[kind]("tiny", think_server.url)
    _, assembled, _, _ = await run(p, ask(model="tiny", temperature=0, max_tokens=40))
    await p.aclose()
    parts = assembled.parts()
    assert [type(x) for x in parts] == [ReasoningPart, TextPart]
    assert parts[0].text.strip() == "you that" and parts[1].text.strip() == "it was for on."
