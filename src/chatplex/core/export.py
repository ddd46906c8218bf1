"""Every rendering of a whole session, in one place so the app and the CLI cannot drift
apart: Markdown (readable on GitHub; the app's Ctrl+S and `chatplex export`), JSON that
round-trips through `chatplex import`, the plain transcript of `chatplex show`, and the
records `--json` prints for scripts."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from chatplex.core.models import Message, MessageState, Role, Session
from chatplex.core.text import visible
from chatplex.providers.base import ChatPart, ReasoningPart, TextPart, ToolCallPart, ToolResultPart

FORMAT = "chatplex-session/1"


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _fence(text: str) -> str:
    """A code fence longer than any backtick run inside `text`."""
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def _author(m: Message, session: Session) -> str:
    """Who wrote `m`: "you", the model that wrote a reply (a session's model can change), or
    the role."""
    if m.role is Role.USER:
        return "you"
    return (m.model or session.model) if m.role is Role.ASSISTANT else m.role.value


def _note(m: Message) -> str | None:
    """What a message that is not complete says about itself, or None."""
    reason = f": {m.error}" if m.error else ""
    if m.state is MessageState.ERROR:
        return "failed" + reason
    if m.state is MessageState.INTERRUPTED:
        return "interrupted" + reason
    if m.state is MessageState.STREAMING:
        return "still generating"
    return m.error  # a complete reply's notice (a tool server that did not start), if any


_MARK = {
    MessageState.ERROR: "⚠",
    MessageState.INTERRUPTED: "⏸",
    MessageState.STREAMING: "⋯",
    MessageState.COMPLETE: "⚠",
}


def to_markdown(session: Session, messages: list[Message]) -> str:
    byline = f"*{session.provider} · {session.model} · {_when(session.created_at)}*"
    lines = [f"# {session.title}", "", byline, ""]
    if session.system_prompt:
        fence = _fence(session.system_prompt)
        lines += ["**System prompt**", "", fence + "text", session.system_prompt, fence, ""]
    for m in messages:
        if m.role is Role.ASSISTANT:
            lines += [f"## {_author(m, session)}", ""]
            for part in m.all_parts():
                lines += _part_markdown(part)
        elif m.role is Role.TOOL:
            lines += ["## Tool results", ""]
            for part in m.all_parts():
                lines += _part_markdown(part)
        else:
            # what a person typed is shown as typed; a fence keeps Markdown from reinterpreting it
            fence = _fence(m.content)
            heading = f"## {_author(m, session).capitalize()}"
            lines += [heading, "", fence + "text", m.content, fence, ""]
        if note := _note(m):
            lines += [f"> {_MARK[m.state]} {note}", ""]
    return "\n".join(lines).rstrip() + "\n"


def _fenced(text: str, info: str = "text") -> list[str]:
    fence = _fence(text)
    return [fence + info, text, fence, ""]


def _part_markdown(part: ChatPart) -> list[str]:
    """A reply's part in Markdown: the answer as written; the thinking folded in a
    <details> block, and tool calls and results in fences (all three literal: a fence
    longer than any backtick run in them, so nothing in them can end it)."""
    if type(part) is TextPart:
        return [part.text, ""]
    if type(part) is ReasoningPart:
        body = part.text if part.text else "(redacted by the provider)"
        return ["<details><summary>Thinking</summary>", "", *_fenced(body), "</details>", ""]
    if type(part) is ToolCallPart:
        return [f"**Tool call** `{part.name}` ({part.id})", "", *_fenced(part.arguments, "json")]
    assert type(part) is ToolResultPart
    label = "**Tool error**" if part.is_error else "**Tool result**"
    return [f"{label} ({part.call_id})", "", *_fenced(part.content)]


def part_record(part: ChatPart) -> dict[str, Any]:
    """A part as JSON (what `import` reads back with `part_from_record`)."""
    if type(part) is TextPart:
        return {"kind": "text", "text": part.text}
    if type(part) is ReasoningPart:
        record: dict[str, Any] = {"kind": "reasoning", "text": part.text}
        if part.signature:
            record["signature"] = part.signature
        if part.redacted:
            record["redacted"] = part.redacted
        if part.seconds is not None:
            record["seconds"] = part.seconds
        return record
    if type(part) is ToolCallPart:
        return {"kind": "tool_call", "id": part.id, "name": part.name, "arguments": part.arguments}
    assert type(part) is ToolResultPart
    return {"kind": "tool_result", "call_id": part.call_id, "content": part.content, "is_error": part.is_error}


def part_from_record(record: dict[str, Any]) -> ChatPart:
    """The inverse of `part_record`, for a record whose types were checked (cli/transfer.py)."""
    kind = record["kind"]
    if kind == "text":
        return TextPart(record["text"])
    if kind == "reasoning":
        seconds = record.get("seconds")
        took = float(seconds) if isinstance(seconds, int | float) and not isinstance(seconds, bool) else None
        return ReasoningPart(record.get("text", ""), record.get("signature", ""), record.get("redacted", ""), took)
    if kind == "tool_call":
        return ToolCallPart(record["id"], record["name"], record["arguments"])
    return ToolResultPart(record["call_id"], record["content"], bool(record.get("is_error", False)))


def _message_json(m: Message) -> dict[str, Any]:
    record: dict[str, Any] = {
        "role": m.role.value,
        "content": m.content,
        "state": m.state.value,
        "error": m.error,
        "created_at": m.created_at,
    }
    if m.model:
        record["model"] = m.model
    # a plain text message needs no parts: its content is its one part (as before parts existed)
    if m.parts and m.parts != [TextPart(m.content)]:
        record["parts"] = [part_record(p) for p in m.parts]
    for key in ("prompt_tokens", "completion_tokens", "reasoning_tokens", "seconds", "finish_reason"):
        if (value := getattr(m, key)) is not None:
            record[key] = value
    return record


def to_json(session: Session, messages: list[Message]) -> str:
    data: dict[str, Any] = {
        "format": FORMAT,
        "session": {
            "title": session.title,
            "provider": session.provider,
            "model": session.model,
            "system_prompt": session.system_prompt,
            "created_at": session.created_at,
            **({"settings": session.settings} if session.settings else {}),
        },
        "messages": [_message_json(m) for m in messages],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def to_text(session: Session, messages: list[Message]) -> str:
    """The transcript `chatplex show` prints: meant for a terminal, so control characters
    are shown as pictures whatever the output is."""
    lines = [f"# {visible(session.title)}  ({session.provider} · {session.model})", ""]
    if session.system_prompt:
        lines += ["[system]", visible(session.system_prompt), ""]
    for m in messages:
        lines.append(f"[{_author(m, session)}]")
        for part in m.all_parts() or [TextPart("")]:
            if isinstance(part, ReasoningPart):
                lines.append(f"(thinking: {visible(part.text) or 'redacted'})")
            elif isinstance(part, ToolCallPart):
                lines.append(f"(tool call {visible(part.name)} {visible(part.arguments)})")
            elif isinstance(part, ToolResultPart):
                lines.append(f"(tool result: {visible(part.content)})")
            else:
                lines.append(visible(part.text))
        if note := _note(m):
            lines.append(f"({visible(note)})")
        lines.append("")
    return "\n".join(lines)


def session_record(s: Session) -> dict[str, Any]:
    """A session for scripts (`sessions --json`, `show --json`): ids and live state too."""
    return {
        "id": s.id,
        "title": s.title,
        "status": s.status.value,
        "unread": s.unread,
        "provider": s.provider,
        "model": s.model,
        "system_prompt": s.system_prompt,
        "preview": s.preview,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "forked_from": s.forked_from,
        "forked_at": s.forked_at,
        "archived": s.archived,
    }


def message_record(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "role": m.role.value,
        "content": m.content,
        "state": m.state.value,
        "error": m.error,
        "created_at": m.created_at,
        "finish_reason": m.finish_reason,
        "model": m.model,
        "reasoning_tokens": m.reasoning_tokens,
        "parts": [part_record(p) for p in m.all_parts()],
    }


def render(session: Session, messages: list[Message], fmt: str = "md") -> str:
    """The session as `fmt` ("md" or "json") for a file."""
    return to_json(session, messages) if fmt == "json" else to_markdown(session, messages)


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` via a temporary file: a failure leaves no partial file, and an
    earlier export at that path stays whole. Raises OSError."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def save(path: Path, session: Session, messages: list[Message], fmt: str = "md") -> None:
    """Render and write in one call, so the app can run both off its event loop (a 10 MB
    transcript takes a while)."""
    write_atomically(path, render(session, messages, fmt))
