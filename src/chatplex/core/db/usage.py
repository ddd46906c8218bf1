"""A session's spending, summed in SQL: a long session's totals cost one query, not a read
of its messages (core/usage.py does the arithmetic)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from chatplex.core.models import Role

Conn = sqlite3.Connection


@dataclass(frozen=True, slots=True)
class Spent:
    """The replies of one model in a session: their summed token counts."""

    model: str | None  # None: replies stored before messages recorded their model
    prompt: int
    completion: int
    reasoning: int
    replies: int


def sizes(db: Conn, sid: int) -> list[tuple[int, str, int, int | None]]:
    """The messages a request of the session would send: (id, role, characters, the tokens
    the server counted for its request and answer — replies only, where known)."""
    return [
        (r[0], r[1], r[2], r[3])
        for r in db.execute(
            "SELECT id, role, length(content), CASE WHEN prompt_tokens IS NULL THEN NULL"
            " ELSE prompt_tokens + COALESCE(completion_tokens, 0) END FROM messages WHERE session_id=:sid"
            " AND id >= COALESCE((SELECT context_from FROM sessions WHERE id=:sid), 0) ORDER BY id",
            {"sid": sid},
        )
    ]


def spent(db: Conn, sid: int) -> tuple[list[Spent], int | None]:
    """Per model, the tokens of the session's replies that have counts; and the newest such
    reply's prompt + completion (how full the context was at its end)."""
    counted = "session_id=:sid AND role=:role AND (prompt_tokens IS NOT NULL OR completion_tokens IS NOT NULL)"
    args = {"sid": sid, "role": Role.ASSISTANT.value}
    rows = db.execute(
        "SELECT model, TOTAL(prompt_tokens), TOTAL(completion_tokens), TOTAL(reasoning_tokens), COUNT(*)"
        f" FROM messages WHERE {counted} GROUP BY model",
        args,
    ).fetchall()
    newest = db.execute(
        f"SELECT COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0) FROM messages WHERE {counted}"
        " ORDER BY id DESC LIMIT 1",
        args,
    ).fetchone()
    by_model = [Spent(r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows]
    return by_model, None if newest is None else int(newest[0])
