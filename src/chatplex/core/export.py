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
    return None


_MARK = {MessageState.ERROR: "⚠", MessageState.INTERRUPTED: "⏸", MessageState.STREAMING: "⋯"}


def to_markdown(session: Session, messages: list[Message]) -> str:
    byline = f"*{session.provider} · {session.model} · {_when(session.created_at)}*"
    lines = [f"# {session.title}", "", byline, ""]
    if session.system_prompt:
        fence = _fence(session.system_prompt)
        lines += ["**System prompt**", "", fence + "text", session.system_prompt, fence, ""]
    for m in messages:
        if m.role is Role.ASSISTANT:
            lines += [f"## {_author(m, session)}", "", m.content, ""]
        else:
            # what a person typed is shown as typed; a fence keeps Markdown from reinterpreting it
            fence = _fence(m.content)
            heading = f"## {_author(m, session).capitalize()}"
            lines += [heading, "", fence + "text", m.content, fence, ""]
        if note := _note(m):
            lines += [f"> {_MARK[m.state]} {note}", ""]
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


def to_text(session: Session, messages: list[Message]) -> str:
    """The transcript `chatplex show` prints: meant for a terminal, so control characters
    are shown as pictures whatever the output is."""
    lines = [f"# {visible(session.title)}  ({session.provider} · {session.model})", ""]
    if session.system_prompt:
        lines += ["[system]", visible(session.system_prompt), ""]
    for m in messages:
        lines += [f"[{_author(m, session)}]", visible(m.content)]
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
