"""A message's parts: rows of `parts`, in `seq` order, are the message.

Every part keeps its growing text in `text` (a text part's words, a reasoning part's
thinking, a tool call's arguments exactly as streamed, a tool result's content) and the
little rest as JSON in `data` (a signature, redacted data, a call's id and name), so the
periodic writes of a stream only ever append to `text` and rewrite a small `data`.
`messages.content` stays the plain-text projection: the text parts, joined.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chatplex.providers.base import ChatPart, ReasoningPart, TextPart, ToolCallPart, ToolResultPart

Conn = sqlite3.Connection
KINDS = ("text", "reasoning", "tool_call", "tool_result")
STREAMING, COMPLETE, INTERRUPTED = "streaming", "complete", "interrupted"


def kind_of(part: ChatPart) -> str:
    if type(part) is TextPart:
        return "text"
    if type(part) is ReasoningPart:
        return "reasoning"
    if type(part) is ToolCallPart:
        return "tool_call"
    return "tool_result"


def row_of(part: ChatPart) -> tuple[str, str, str]:
    """(kind, text, data JSON) of a part."""
    data: dict[str, Any] = {}
    if type(part) is TextPart:
        return "text", part.text, "{}"
    if type(part) is ReasoningPart:
        text = part.text
        if part.signature:
            data["signature"] = part.signature
        if part.redacted:
            data["redacted"] = part.redacted
        if part.seconds is not None:
            data["seconds"] = part.seconds
        return "reasoning", text, json.dumps(data) if data else "{}"
    if type(part) is ToolCallPart:
        return "tool_call", part.arguments, json.dumps({"id": part.id, "name": part.name})
    assert type(part) is ToolResultPart
    data = {"call_id": part.call_id, "is_error": part.is_error}
    return "tool_result", part.content, json.dumps(data)


def part_of(kind: str, text: str, data: str) -> ChatPart:
    d = json.loads(data) if data and data != "{}" else {}
    if kind == "text":
        return TextPart(text)
    if kind == "reasoning":
        seconds = d.get("seconds")
        took = float(seconds) if isinstance(seconds, int | float) else None
        return ReasoningPart(text, str(d.get("signature", "")), str(d.get("redacted", "")), took)
    if kind == "tool_call":
        return ToolCallPart(str(d.get("id", "")), str(d.get("name", "")), text)
    if kind == "tool_result":
        return ToolResultPart(str(d.get("call_id", "")), text, bool(d.get("is_error", False)))
    raise ValueError(f"unknown part kind {kind!r}")


def parts_of(db: Conn, message_ids: Sequence[int]) -> dict[int, list[ChatPart]]:
    """The parts of these messages, each list in order."""
    out: dict[int, list[ChatPart]] = {mid: [] for mid in message_ids}
    if not message_ids:
        return out
    for start in range(0, len(message_ids), 500):  # SQLite's bound-parameter limit
        chunk = message_ids[start : start + 500]
        params = {f"m{i}": mid for i, mid in enumerate(chunk)}
        marks = ", ".join(f":{name}" for name in params)
        rows = db.execute(
            f"SELECT message_id, kind, text, data FROM parts WHERE message_id IN ({marks}) ORDER BY message_id, seq",
            params,
        )
        for mid, kind, text, data in rows:
            out[mid].append(part_of(kind, text, data))
    return out


def state_of(db: Conn, message_id: int) -> list[str]:
    """Each part's state, in order (complete · streaming · interrupted)."""
    rows = db.execute("SELECT state FROM parts WHERE message_id=:mid ORDER BY seq", {"mid": message_id})
    return [r[0] for r in rows]


def write_parts(db: Conn, message_id: int, parts: Iterable[ChatPart], last_state: str = COMPLETE) -> None:
    """Replace the message's parts with `parts` (the end of a run writes them whole, as it
    writes the whole text). The last part gets `last_state`: a reply cut short keeps its
    partial last part marked interrupted."""
    db.execute("DELETE FROM parts WHERE message_id=:mid", {"mid": message_id})
    insert_parts(db, message_id, parts, last_state)


def insert_parts(db: Conn, message_id: int, parts: Iterable[ChatPart], last_state: str = COMPLETE) -> None:
    """`write_parts` for a message that has none yet (one it just inserted): no DELETE."""
    rows = [row_of(p) for p in parts]
    if not rows:
        return
    db.executemany(
        "INSERT INTO parts(message_id, seq, kind, text, data, state) VALUES (:mid, :seq, :kind, :text, :data, :state)",
        (
            {
                "mid": message_id,
                "seq": seq,
                "kind": kind,
                "text": text,
                "data": data,
                "state": last_state if seq == len(rows) - 1 else COMPLETE,
            }
            for seq, (kind, text, data) in enumerate(rows)
        ),
    )


def clear_parts(db: Conn, message_id: int) -> None:
    db.execute("DELETE FROM parts WHERE message_id=:mid", {"mid": message_id})


def rtrim_last_text(db: Conn, message_id: int) -> None:
    """A partial reply kept for continuing loses its trailing whitespace, in its last text
    part as in `content` (see jobs.claim)."""
    db.execute(
        "UPDATE parts SET text=rtrim(text, char(32, 9, 10, 13)) WHERE message_id=:mid AND seq=("
        " SELECT max(seq) FROM parts WHERE message_id=:mid AND kind='text')",
        {"mid": message_id},
    )


@dataclass(slots=True)
class StreamWrite:
    """What one beat stores for a running reply: its new text (appended to `content`), the
    parts that grew — (seq, kind, text to append, data JSON or None when unchanged) — and,
    when it changed, the session's mark (thinking while the model reasons, else streaming)."""

    text: str = ""
    parts: list[tuple[int, str, str, str | None]] = field(default_factory=list)
    status: str | None = None


def append_parts(db: Conn, message_id: int, grown: Sequence[tuple[int, str, str, str | None]]) -> None:
    db.executemany(
        "INSERT INTO parts(message_id, seq, kind, text, data, state)"
        " VALUES (:mid, :seq, :kind, :text, COALESCE(:data, '{}'), :streaming)"
        " ON CONFLICT(message_id, seq) DO UPDATE SET text=parts.text||excluded.text,"
        " data=COALESCE(:data, parts.data)",
        (
            {"mid": message_id, "seq": seq, "kind": kind, "text": text, "data": data, "streaming": STREAMING}
            for seq, kind, text, data in grown
        ),
    )
