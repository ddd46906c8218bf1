"""Exports of replies with parts: JSON carries the parts and reads back the same, a file
exported by the last release still imports, and Markdown folds the thinking and fences the
tool calls so nothing in them can change the page around them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatplex.cli.output import UsageError
from chatplex.cli.transfer import _parse_import
from chatplex.core.db import Store
from chatplex.core.export import to_json, to_markdown
from chatplex.core.models import Message, MessageState, Role, Session
from chatplex.providers.base import ReasoningPart, TextPart, ToolCallPart, ToolResultPart

RELEASE_EXPORT = Path(__file__).parents[1] / "fixtures" / "export-release-30ab670.json"
TRICKY = "step ``` one </details> <script>x</script>\n\n# not a heading"
PARTS = [
    ReasoningPart(TRICKY, signature="sig-1"),
    ReasoningPart("", redacted="opaque=="),
    TextPart("Let me look."),
    ToolCallPart("call_1", "get_time", '{"tz": "UTC"'),  # as streamed: not even valid JSON
]


def session() -> Session:
    return Session(id=1, title="parts", provider="fake", model="m1", created_at=1_700_000_000)


def reply(parts=PARTS, **kw) -> Message:
    text = "".join(p.text for p in parts if isinstance(p, TextPart))
    return Message(2, 1, Role.ASSISTANT, text, parts=list(parts), model="m1", created_at=1_700_000_001, **kw)


async def test_json_carries_the_parts_and_an_import_reads_back_the_same(tmp_path):
    messages = [
        Message(1, 1, Role.USER, "what time?", parts=[TextPart("what time?")], created_at=1_700_000_000),
        reply(prompt_tokens=12, completion_tokens=40, reasoning_tokens=30, finish_reason="tool_calls"),
        Message(
            3, 1, Role.TOOL, "", parts=[ToolResultPart("call_1", "12:00", is_error=False)], created_at=1_700_000_002
        ),
    ]
    first = to_json(session(), messages)
    path = tmp_path / "e.json"
    path.write_text(first)
    async with await Store.open(tmp_path / "db.sqlite") as store:
        created = await store.import_session(*_parse_import(path))
        back = await store.messages(created.id)
        assert [m.parts for m in back] == [m.parts for m in messages]
        assert back[1].reasoning_tokens == 30 and back[1].content == "Let me look."
        again = to_json(created, back)
    assert _without_times(again) == _without_times(first)


def _without_times(text: str) -> list[dict]:
    return [{k: v for k, v in m.items() if k != "created_at"} for m in json.loads(text)["messages"]]


async def test_an_export_of_the_last_release_imports_each_message_as_one_text_part(tmp_path):
    async with await Store.open(tmp_path / "db.sqlite") as store:
        created = await store.import_session(*_parse_import(RELEASE_EXPORT))
        back = await store.messages(created.id)
    old = json.loads(RELEASE_EXPORT.read_text())["messages"]
    assert [(m.role.value, m.content, m.state.value) for m in back] == [
        (m["role"], m["content"], m["state"]) for m in old
    ]
    assert all(m.parts == ([TextPart(m.content)] if m.content else []) for m in back)


@pytest.mark.parametrize(
    "parts, complaint",
    [
        ("no", "parts must be a list"),
        ([{"kind": "picture"}], "needs a kind"),
        ([{"kind": "tool_call", "id": "c", "name": 5, "arguments": "{}"}], "name must be a string"),
        ([{"kind": "text", "text": "other"}], "do not add up to its content"),
        ([{"kind": "reasoning", "text": "\ud800"}], "lone UTF-16 surrogate"),
    ],
)
def test_malformed_parts_are_refused_in_one_line(tmp_path, parts, complaint):
    data = json.loads(to_json(session(), [reply()]))
    data["messages"][0]["parts"] = parts
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError, match=complaint):
        _parse_import(path)


def test_markdown_folds_the_thinking_and_fences_tool_calls_literally():
    md = to_markdown(session(), [reply(state=MessageState.COMPLETE)])
    head, _, rest = md.partition("<details><summary>Thinking</summary>")
    assert "## m1" in head
    thought, _, after = rest.partition("</details>\n")
    # the model's "</details>" and backticks stay inside a longer fence, inside the fold
    assert "````text\n" + TRICKY + "\n````" in thought
    assert "(redacted by the provider)" in after
    assert after.index("Let me look.") < after.index("**Tool call** `get_time` (call_1)")
    assert '```json\n{"tz": "UTC"\n```' in after
