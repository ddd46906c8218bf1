"""Sessions, their status mark and their messages: every statement on them outside a job.

Each function takes the connection first and runs inside the caller's transaction (writes,
through `Database.write`) or read (`Database.read`); none commits. The job side of a
conversation (a turn, a claim, a finish) is in jobs.py, since it changes all three tables.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from chatplex.core.db.parts import insert_parts, parts_of, row_of
from chatplex.core.models import (
    JobKind,
    JobState,
    Message,
    MessageState,
    Role,
    Session,
    SessionStatus,
    preview_of,
)
from chatplex.providers.base import TextPart, ToolResultPart

Conn = sqlite3.Connection
Params = dict[str, Any]

NO_SETTINGS: Mapping[str, Any] = MappingProxyType({})
UPDATABLE = frozenset(
    {
        "title",
        "provider",
        "model",
        "system_prompt",
        "unread",
        "servers",
        "pinned",
        "archived",
        "settings",
        "context_from",
    }
)


def one(db: Conn, sql: str, params: Params | None = None) -> sqlite3.Row | None:
    row: sqlite3.Row | None = db.execute(sql, params or {}).fetchone()
    return row


def scalar(db: Conn, sql: str, params: Params | None = None) -> Any:
    """The first column of an aggregate's single row."""
    row = db.execute(sql, params or {}).fetchone()
    return row[0] if row is not None else None


def rowid(cur: sqlite3.Cursor) -> int:
    assert cur.lastrowid is not None  # after an INSERT
    return cur.lastrowid


def session_of(row: sqlite3.Row) -> Session:
    return Session(
        id=row["id"],
        title=row["title"],
        provider=row["provider"],
        model=row["model"],
        system_prompt=row["system_prompt"],
        status=SessionStatus(row["status"]),
        unread=row["unread"],
        preview=row["preview"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        allowed_tools=tuple(json.loads(row["allowed_tools"] or "[]")),
        servers=None if row["servers"] is None else tuple(json.loads(row["servers"])),
        forked_from=row["forked_from"],
        forked_at=row["forked_at"],
        pinned=bool(row["pinned"]),
        archived=bool(row["archived"]),
        # most sessions have none: one shared empty mapping, not 10,000 dicts (B7)
        settings=NO_SETTINGS if row["settings"] in ("{}", None) else json.loads(row["settings"]),
        context_from=row["context_from"],
    )


def message_of(row: sqlite3.Row) -> Message:
    return Message(
        id=row["id"],
        session_id=row["session_id"],
        role=Role(row["role"]),
        content=row["content"],
        state=MessageState(row["state"]),
        error=row["error"],
        job_id=row["job_id"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        finish_reason=row["finish_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        model=row["model"],
        reasoning_tokens=row["reasoning_tokens"],
        seconds=row["seconds"],
    )


def with_parts(db: Conn, found: list[Message]) -> list[Message]:
    """The messages with their parts read (one query for all of them)."""
    parts = parts_of(db, [m.id for m in found])
    for m in found:
        m.parts = parts[m.id]
    return found


def get_session(db: Conn, sid: int) -> Session | None:
    row = one(db, "SELECT * FROM sessions WHERE id=:sid", {"sid": sid})
    return session_of(row) if row else None


def get_message(db: Conn, mid: int) -> Message | None:
    row = one(db, "SELECT * FROM messages WHERE id=:mid", {"mid": mid})
    return with_parts(db, [message_of(row)])[0] if row else None


def the_session(db: Conn, sid: int) -> Session:
    """A session the transaction knows exists (it just wrote or checked it)."""
    found = get_session(db, sid)
    assert found is not None, sid
    return found


def the_message(db: Conn, mid: int) -> Message:
    found = get_message(db, mid)
    assert found is not None, mid
    return found


# ------------------------------------------------------------ the session's status mark
def set_status(db: Conn, sid: int, status: SessionStatus, now: float, unread: int = 0, **extra: Any) -> Session:
    """Set the mark (and `unread` more unread replies, and `extra` columns by name: the
    preview); returns the session as it is now."""
    return _status(db, ":status", sid, now, unread, extra, {"status": status.value})


def settle_status(db: Conn, sid: int, now: float, otherwise: SessionStatus, unread: int = 0, **extra: Any) -> Session:
    """After a job left the running state (or joined the queue): a tool call held for an
    approval makes the session need approval (the loudest mark), else a running tool call
    makes it running a tool, a running reply streaming, a queued job queued; else it is
    `otherwise`."""
    mark = (
        "CASE WHEN EXISTS (SELECT 1 FROM jobs WHERE session_id=:sid AND state=:held) THEN :needs"
        " WHEN EXISTS (SELECT 1 FROM jobs WHERE session_id=:sid AND state=:running AND kind=:tool)"
        " THEN :running_tool"
        " WHEN EXISTS (SELECT 1 FROM jobs WHERE session_id=:sid AND state=:running)"
        " THEN :streaming WHEN EXISTS (SELECT 1 FROM jobs WHERE session_id=:sid AND state=:queued)"
        " THEN :queued_mark ELSE :otherwise END"
    )
    marks = {
        "held": JobState.HELD.value,
        "needs": SessionStatus.NEEDS_APPROVAL.value,
        "tool": JobKind.TOOL.value,
        "running_tool": SessionStatus.RUNNING_TOOL.value,
        "running": JobState.RUNNING.value,
        "queued": JobState.QUEUED.value,
        "streaming": SessionStatus.STREAMING.value,
        "queued_mark": SessionStatus.QUEUED.value,
        "otherwise": otherwise.value,
    }
    return _status(db, mark, sid, now, unread, extra, marks)


def _status(db: Conn, mark: str, sid: int, now: float, unread: int, extra: Params, params: Params) -> Session:
    cols = "".join(f", {name}=:{name}" for name in extra)
    row = one(
        db,
        f"UPDATE sessions SET status={mark}, updated_at=:now, unread=unread+:unread{cols} WHERE id=:sid RETURNING *",
        {**extra, **params, "now": now, "unread": unread, "sid": sid},
    )
    assert row is not None, sid
    return session_of(row)


# ------------------------------------------------------------ sessions
def create_session(db: Conn, title: str, provider: str, model: str, system_prompt: str) -> Session:
    now = time.time()
    row = one(
        db,
        "INSERT INTO sessions(title, provider, model, system_prompt, created_at, updated_at)"
        " VALUES (:title, :provider, :model, :system_prompt, :now, :now) RETURNING *",
        {
            "title": title,
            "provider": provider,
            "model": model,
            "system_prompt": system_prompt,
            "now": now,
        },
    )
    assert row is not None
    return session_of(row)


def fork_session(db: Conn, sid: int, at: int | None, title: str, keep_at: bool = True) -> Session:
    """A new session holding a copy of `sid`'s messages up to message `at` (all of them if
    None; without `at` itself unless `keep_at`: an edited message is sent there anew), with
    their parts, settings and chosen servers; the original is not touched. A reply still
    being generated is copied as interrupted (its job stays with the original)."""
    source = get_session(db, sid)
    if source is None:
        raise KeyError(f"no session {sid}")
    if (
        at is not None
        and one(db, "SELECT 1 FROM messages WHERE id=:at AND session_id=:sid", {"at": at, "sid": sid}) is None
    ):
        raise KeyError(f"no message {at} in session {sid}")
    now = time.time()
    row = one(
        db,
        "INSERT INTO sessions(title, provider, model, system_prompt, servers, settings, forked_from, forked_at,"
        " status, preview, created_at, updated_at)"
        " SELECT :title, provider, model, system_prompt, servers, settings, id, :at, :idle, '', :now, :now"
        " FROM sessions WHERE id=:sid RETURNING *",
        {"title": title, "at": at, "idle": SessionStatus.IDLE.value, "now": now, "sid": sid},
    )
    assert row is not None
    fork = session_of(row)
    upto = "" if at is None else " AND id<=:at" if keep_at else " AND id<:at"
    rows = db.execute(f"SELECT * FROM messages WHERE session_id=:sid{upto} ORDER BY id", {"sid": sid, "at": at})
    copied = [message_of(r) for r in rows.fetchall()]
    # a model step's tool calls go with it: the cut takes the tool steps that answer them
    # (a request whose calls have no results is refused by both APIs, so the fork could
    # never send), and a call not answered yet is copied answered with an error result
    more = (
        db.execute(
            "SELECT * FROM messages WHERE session_id=:sid AND id>:last ORDER BY id LIMIT 1000",
            {"sid": sid, "last": copied[-1].id},
        )
        if copied and copied[-1].role in (Role.ASSISTANT, Role.TOOL)
        else None
    )
    for r in more.fetchall() if more is not None else []:
        if r["role"] != Role.TOOL.value:
            break
        copied.append(message_of(r))
    with_parts(db, copied)
    last_preview = ""
    for m in copied:
        state = MessageState.INTERRUPTED if m.state is MessageState.STREAMING else m.state
        unanswered = m.role is Role.TOOL and m.state is not MessageState.COMPLETE
        if unanswered:  # held, running or cut: not run in the fork, and the model is told so
            call_id = next((p.call_id for p in m.parts if type(p) is ToolResultPart), "")
            note = "not run: the session was forked before this call had a result"
            m.content, m.parts, state, m.error = (
                note,
                [ToolResultPart(call_id, note, True)],
                MessageState.COMPLETE,
                None,
            )
        new = one(
            db,
            "INSERT INTO messages(session_id, role, content, state, error, prompt_tokens, completion_tokens,"
            " reasoning_tokens, seconds, finish_reason, model, created_at, updated_at)"
            " VALUES (:sid, :role, :content, :state, :error, :prompt, :completion, :reasoning, :seconds, :reason,"
            " :model, :created, :now) RETURNING id",
            {
                "sid": fork.id,
                "role": m.role.value,
                "content": m.content,
                "state": state.value,
                "error": "copied while it was being generated" if m.state is MessageState.STREAMING else m.error,
                "prompt": m.prompt_tokens,
                "completion": m.completion_tokens,
                "reasoning": m.reasoning_tokens,
                "seconds": m.seconds,
                "reason": m.finish_reason,
                "model": m.model,
                "created": m.created_at,
                "now": now,
            },
        )
        assert new is not None
        if unanswered:
            insert_parts(db, new[0], m.parts)
        else:
            db.execute(
                "INSERT INTO parts(message_id, seq, kind, text, data, state)"
                " SELECT :new, seq, kind, text, data, state FROM parts WHERE message_id=:old ORDER BY seq",
                {"new": new[0], "old": m.id},
            )
        if m.content:
            last_preview = m.content
    if last_preview:
        db.execute("UPDATE sessions SET preview=:p WHERE id=:sid", {"p": preview_of(last_preview), "sid": fork.id})
    return the_session(db, fork.id)


def update_session(db: Conn, sid: int, fields: Params) -> Session | None:
    """`fields` are checked against UPDATABLE by the caller, before the transaction."""
    if "servers" in fields:  # a list of names, or None for config.toml's default
        chosen = fields["servers"]
        fields = {**fields, "servers": None if chosen is None else json.dumps(list(chosen))}
    if "settings" in fields:
        fields = {**fields, "settings": json.dumps(fields["settings"], sort_keys=True)}
    cols = ", ".join(f"{name}=:{name}" for name in fields)
    db.execute(f"UPDATE sessions SET {cols} WHERE id=:sid", {**fields, "sid": sid})
    return get_session(db, sid)


def delete_session(db: Conn, sid: int) -> list[int]:
    """Delete a session (cascading over its messages and jobs); returns the ids of its running
    jobs (their workers must be told)."""
    params = {"sid": sid, "running": JobState.RUNNING.value}
    found = db.execute("SELECT id FROM jobs WHERE session_id=:sid AND state=:running", params)
    ids = [r[0] for r in found]
    db.execute("DELETE FROM sessions WHERE id=:sid", {"sid": sid})
    return ids


def list_sessions(db: Conn, archived: bool = False) -> list[Session]:
    """The sessions of the sidebar, or (`archived`) the ones put away."""
    sql = "SELECT * FROM sessions WHERE archived=:archived ORDER BY pinned DESC, updated_at DESC, id DESC"
    return [session_of(r) for r in db.execute(sql, {"archived": int(archived)})]


def find_sessions_by_title(db: Conn, titles: tuple[str, ...]) -> list[Session]:
    """Sessions with any of these exact titles, most recent first."""
    params = {f"t{i}": title for i, title in enumerate(titles)}
    marks = ", ".join(f":{name}" for name in params)
    sql = f"SELECT * FROM sessions WHERE title IN ({marks}) ORDER BY updated_at DESC, id DESC"
    return [session_of(r) for r in db.execute(sql, params)]


def search(db: Conn, text: str, limit: int) -> list[Session]:
    """Sessions whose title or any message contains `text` literally (LIKE's wildcards escaped)."""
    like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return [
        session_of(r)
        for r in db.execute(
            "SELECT * FROM sessions WHERE title LIKE :like ESCAPE '\\' OR id IN ("
            " SELECT session_id FROM messages WHERE content LIKE :like ESCAPE '\\')"
            " ORDER BY updated_at DESC LIMIT :limit",
            {"like": like, "limit": limit},
        )
    ]


def import_session(db: Conn, session: Params, messages: list[Params]) -> Session:
    """One session and all its messages (an export read back), in the caller's transaction."""
    now = time.time()
    cur = db.execute(
        "INSERT INTO sessions(title, provider, model, system_prompt, settings, created_at, updated_at)"
        " VALUES (:title, :provider, :model, :system_prompt, :settings, :created, :now)",
        {
            "title": session["title"],
            "provider": session["provider"],
            "model": session["model"],
            "system_prompt": session.get("system_prompt", ""),
            "settings": json.dumps(session.get("settings") or {}, sort_keys=True),
            "created": float(session.get("created_at") or now),
            "now": now,
        },
    )
    sid = rowid(cur)
    for m in messages:
        mid = rowid(
            db.execute(
                "INSERT INTO messages(session_id, role, content, state, error, model, prompt_tokens,"
                " completion_tokens, reasoning_tokens, seconds, finish_reason, created_at, updated_at) VALUES (:sid,"
                " :role, :content, :state, :error, :model, :prompt, :completion, :reasoning, :seconds, :finish,"
                " :created, :now)",
                {
                    "sid": sid,
                    "role": m["role"],
                    "content": m["content"],
                    "state": m.get("state", MessageState.COMPLETE.value),
                    "error": m.get("error"),
                    "model": m.get("model"),
                    "prompt": m.get("prompt_tokens"),
                    "completion": m.get("completion_tokens"),
                    "reasoning": m.get("reasoning_tokens"),
                    "seconds": m.get("seconds"),
                    "finish": m.get("finish_reason"),
                    "created": float(m.get("created_at") or now),
                    "now": now,
                },
            )
        )
        # an export made before parts existed: its text is the message's one part
        parts = m.get("parts") or ([TextPart(m["content"])] if m["content"] else [])
        db.executemany(
            "INSERT INTO parts(message_id, seq, kind, text, data) VALUES (:mid, :seq, :kind, :text, :data)",
            (
                {"mid": mid, "seq": seq, "kind": kind, "text": text, "data": data}
                for seq, (kind, text, data) in enumerate(map(row_of, parts))
            ),
        )
    return the_session(db, sid)


# ------------------------------------------------------------ messages
def messages(db: Conn, sid: int, limit: int | None, before_id: int | None) -> list[Message]:
    """Messages of a session in order; with `limit`, the newest ones (before `before_id`)."""
    sql = "SELECT * FROM messages WHERE session_id=:sid"
    if before_id is not None:
        sql += " AND id<:before"
    sql += " ORDER BY id DESC"
    if limit is not None:
        sql += " LIMIT :limit"
    rows = db.execute(sql, {"sid": sid, "before": before_id, "limit": limit}).fetchall()
    return with_parts(db, [message_of(r) for r in reversed(rows)])


def context(db: Conn, sid: int, message_id: int) -> tuple[list[Message], Message | None]:
    """What a run needs in one read: what the model sees before the reply (complete messages,
    failed replies left out, nothing before the session's context_from), and the reply as it
    is (its parts so far were kept by a claim for a provider that continues), all with their
    parts."""
    history = [
        message_of(r)
        for r in db.execute(
            "SELECT * FROM messages WHERE session_id=:sid AND id<:before"
            " AND id >= COALESCE((SELECT context_from FROM sessions WHERE id=:sid), 0) AND (content != ''"
            # an agent's step may be its tool calls alone, and a tool's result may be empty
            " OR (role IN (:assistant, :tool) AND EXISTS (SELECT 1 FROM parts p WHERE"
            " p.message_id=messages.id AND p.kind IN ('tool_call', 'tool_result'))))"
            " AND (role != :assistant OR state IN (:complete, :interrupted))"
            " AND (role != :tool OR state=:complete) ORDER BY id",
            {
                "sid": sid,
                "before": message_id,
                "assistant": Role.ASSISTANT.value,
                "tool": Role.TOOL.value,
                "complete": MessageState.COMPLETE.value,
                "interrupted": MessageState.INTERRUPTED.value,
            },
        )
    ]
    return with_parts(db, history), get_message(db, message_id)
