"""A session as Markdown (readable on GitHub) or JSON (round-trips through import)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from chatplex.core.models import Message, MessageState, Role, Session

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


def to_markdown(session: Session, messages: list[Message]) -> str:
    lines = [f"# {session.title}", "", f"*{session.provider} · {session.model} · {_when(session.created_at)}*", ""]
    if session.system_prompt:
        fence = _fence(session.system_prompt)
        lines += ["**System prompt**", "", fence + "text", session.system_prompt, fence, ""]
    for m in messages:
        if m.role is Role.USER:
            lines += ["## You", ""]
            # a user's text is shown as typed; a fence keeps Markdown from reinterpreting it
            fence = _fence(m.content)
            lines += [fence + "text", m.content, fence, ""]
        elif m.role is Role.ASSISTANT:
            lines += [f"## {m.model or session.model}", "", m.content or "", ""]
            if m.state is MessageState.ERROR:
                lines += [f"> ⚠ failed: {m.error}", ""]
            elif m.state is MessageState.INTERRUPTED:
                lines += [f"> ⏸ interrupted{': ' + m.error if m.error else ''}", ""]
    return "\n".join(lines).rstrip() + "\n"


def to_json(session: Session, messages: list[Message]) -> str:
    data: dict[str, Any] = {
        "format": FORMAT,
        "session": {
            "title": session.title,
            "provider": session.provider,
            "model": session.model,
            "system_prompt": session.system_prompt,
            "created_at": session.created_at,
        },
        "messages": [
            {
                "role": m.role.value,
                "content": m.content,
                "state": m.state.value,
                "error": m.error,
                "created_at": m.created_at,
                **({"model": m.model} if m.model else {}),
            }
            for m in messages
        ],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
