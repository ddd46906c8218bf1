"""Agent turns as durable steps: a model step that asked for tools opens a round of tool
steps (one job per call, queued, or `held` until the user approves it); when the round's
last call is settled, the next model step is queued. Each function is one transaction, so a
crash leaves either the step before or the step after, never half of one.

A tool call runs at most once without the user's say: a call whose process died while it
ran is held again, marked "outcome unknown" (recovery.py), and only an approval queues it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from chatplex.core.db.errors import LeaseLost
from chatplex.core.db.jobs import JOB, _insert_job, _link, finish, get_job, job_of
from chatplex.core.db.parts import INTERRUPTED, STREAMING, write_parts
from chatplex.core.db.sessions import (
    Conn,
    get_message,
    message_of,
    one,
    scalar,
    settle_status,
    the_message,
    the_session,
)
from chatplex.core.models import Job, JobKind, JobState, Message, MessageState, Priority, Role, Session, SessionStatus
from chatplex.providers.base import ChatPart, ToolCallPart, ToolResultPart

UNKNOWN_OUTCOME = (
    "interrupted — outcome unknown: chatplex stopped while this call ran; it runs again only if you approve it again"
)


@dataclass(slots=True)
class Settled:
    """What one step's transaction changed: the session as it is now, the jobs it settled
    or made (in order), and the messages it finished or began."""

    session: Session
    jobs: list[Job] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Approval:
    """A tool call waiting for the user's yes or no."""

    job: Job
    session: Session
    call: ToolCallPart
    reason: str  # why it waits: its policy asks, or its run was cut (outcome unknown)


def _insert_message(db: Conn, sid: int, role: Role, state: MessageState, now: float, error: str | None = None) -> int:
    row = one(
        db,
        "INSERT INTO messages(session_id, role, content, state, error, created_at, updated_at)"
        " VALUES (:sid, :role, '', :state, :error, :now, :now) RETURNING id",
        {"sid": sid, "role": role.value, "state": state.value, "error": error, "now": now},
    )
    assert row is not None
    return int(row[0])


def _complete_tool_message(db: Conn, mid: int, result: ToolResultPart, now: float) -> Message:
    row = one(
        db,
        "UPDATE messages SET content=:text, state=:complete, error=NULL, updated_at=:now WHERE id=:mid RETURNING *",
        {"text": result.content, "complete": MessageState.COMPLETE.value, "now": now, "mid": mid},
    )
    assert row is not None, mid
    write_parts(db, mid, [result])
    message = message_of(row)
    message.parts = [result]
    return message


# ------------------------------------------------------------ a model step asked for tools
def open_round(
    db: Conn,
    job_id: int,
    token: str,
    text: str,
    parts: Sequence[ChatPart],
    usage: tuple[int | None, ...],
    finish_reason: str | None,
    unread: bool,
    calls: Sequence[tuple[ToolCallPart, str, str]],
    priority: Priority,
    max_rounds: int,
    notice: str | None = None,
) -> Settled:
    """Settle the model step (its reply complete, tool calls included) and open its round:
    per call, a tool message and a job, queued (`allow`) or held (`ask`); a denied call gets
    its error result at once. `calls`: (call, decision, why) with decision allow/ask/deny.
    `notice`: what the reply says of itself (stored as its error: a server that did not start)."""
    job, message, _ = finish(db, job_id, token, "succeeded", text, notice, 0.0, False, usage, finish_reason, parts)
    now = time.time()
    out = Settled(the_session(db, job.session_id), [job], [message])
    for call, decision, why in calls:
        state = MessageState.COMPLETE if decision == "deny" else MessageState.STREAMING
        mid = _insert_message(db, job.session_id, Role.TOOL, state, now)
        if decision == "deny":
            out.messages.append(_complete_tool_message(db, mid, ToolResultPart(call.id, why, True), now))
            continue
        # until it has its result, the message holds an empty one: which call it answers
        write_parts(db, mid, [ToolResultPart(call.id, "")], STREAMING)
        step = _insert_job(db, job.session_id, mid, priority, 1, now)
        row = one(
            db,
            "UPDATE jobs SET kind=:tool, call_id=:call, parent=:parent,"
            " state=CASE WHEN :held THEN :held_state ELSE state END, last_error=:why"
            " WHERE id=:job RETURNING *",
            {
                **JOB,
                "call": call.id,
                "parent": job.message_id,
                "held": decision == "ask",
                "held_state": JobState.HELD.value,
                "why": why if decision == "ask" else None,
                "job": step.id,
            },
        )
        assert row is not None
        out.jobs.append(job_of(row))
        linked = _link(db, mid, step.id)
        linked.parts = [ToolResultPart(call.id, "")]
        out.messages.append(linked)
    out.messages.extend(_next_step(db, out, job.message_id, priority, max_rounds, unread, now))
    out.session = settle_status(db, job.session_id, now, SessionStatus.WAITING)
    return out


def _next_step(
    db: Conn, out: Settled, parent: int, priority: Priority, max_rounds: int, unread: bool, now: float
) -> list[Message]:
    """Once no call of `parent`'s round is left to settle, queue the next model step — unless
    the user sent a message meanwhile (its reply continues the turn, results in sight), or
    the turn has had `max_rounds` rounds of calls (then it stops, saying so)."""
    sid = out.session.id
    open_calls = scalar(
        db,
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE parent=:parent AND kind=:tool"
        " AND state IN (:queued, :running, :held))",
        {**JOB, "parent": parent},
    )
    if open_calls:
        return []
    later = scalar(
        db,
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE session_id=:sid AND kind!=:tool AND state IN (:queued, :running)"
        " AND message_id>:parent)",
        {**JOB, "sid": sid, "parent": parent},
    )
    if later:
        return []
    rounds = scalar(
        db,
        "SELECT count(DISTINCT m.id) FROM messages m JOIN parts p ON p.message_id=m.id AND p.kind='tool_call'"
        " WHERE m.session_id=:sid AND m.role=:assistant AND m.id > (SELECT COALESCE(MAX(id), 0) FROM messages"
        " WHERE session_id=:sid AND role=:user)",
        {"sid": sid, "assistant": Role.ASSISTANT.value, "user": Role.USER.value},
    )
    if rounds >= max_rounds:
        error = (
            f"the turn stopped after {rounds} rounds of tool calls (max_tool_rounds = {max_rounds} in "
            "config.toml); send a message to let it go on"
        )
        mid = _insert_message(db, sid, Role.ASSISTANT, MessageState.ERROR, now, error)
        db.execute(
            "UPDATE sessions SET preview=:preview, unread=unread+:unread WHERE id=:sid",
            {"preview": "⚠ " + error[:80], "unread": int(unread), "sid": sid},
        )
        return [the_message(db, mid)]
    mid = _insert_message(db, sid, Role.ASSISTANT, MessageState.STREAMING, now)
    step = _insert_job(db, sid, mid, priority, 5, now)
    out.jobs.append(step)
    return [_link(db, mid, step.id)]


# ------------------------------------------------------------ a tool step
def call_of(db: Conn, job: Job) -> ToolCallPart | None:
    """The call a tool step runs: its part in the assistant message that asked for it."""
    row = one(
        db,
        "SELECT text, data FROM parts WHERE message_id=:parent AND kind='tool_call'"
        " AND json_extract(data, '$.id')=:call",
        {"parent": job.parent, "call": job.call_id},
    )
    if row is None:
        return None
    data = json.loads(row["data"])
    return ToolCallPart(str(data.get("id", "")), str(data.get("name", "")), row["text"])


def finish_call(
    db: Conn, job_id: int, token: str, result: ToolResultPart, priority: Priority, max_rounds: int, unread: bool
) -> Settled:
    """Store a call's result (only the claim `token` may) and, if it was its round's last,
    queue the next model step."""
    now = time.time()
    row = one(
        db,
        "UPDATE jobs SET state=:succeeded, lease_owner=NULL, lease_expires_at=NULL, updated_at=:now,"
        " finished_at=:now, crashes=0 WHERE id=:job AND state=:running AND lease_owner=:token RETURNING *",
        {**JOB, "now": now, "job": job_id, "token": token},
    )
    if row is None:
        raise LeaseLost(job_id)
    job = job_of(row)
    out = Settled(the_session(db, job.session_id), [job])
    out.messages.append(_complete_tool_message(db, job.message_id, result, now))
    assert job.parent is not None
    out.messages.extend(_next_step(db, out, job.parent, priority, max_rounds, unread, now))
    out.session = settle_status(db, job.session_id, now, SessionStatus.WAITING)
    return out


def hold_cut(db: Conn, job: Job, now: float, error: str = UNKNOWN_OUTCOME) -> None:
    """A tool step whose run was cut (its process died, or stopped mid-call): its outcome is
    unknown, so it waits for the user again instead of running a second time."""
    db.execute(
        "UPDATE jobs SET state=:held, lease_owner=NULL, lease_expires_at=NULL, approved=0,"
        " last_error=:error, updated_at=:now WHERE id=:job",
        {**JOB, "error": error, "now": now, "job": job.id},
    )
    db.execute(
        "UPDATE messages SET state=:interrupted, error=:error, updated_at=:now WHERE id=:mid",
        {"interrupted": MessageState.INTERRUPTED.value, "error": error, "now": now, "mid": job.message_id},
    )
    db.execute(
        "UPDATE parts SET state=:interrupted WHERE message_id=:mid AND state=:streaming",
        {"interrupted": INTERRUPTED, "streaming": STREAMING, "mid": job.message_id},
    )


def give_back_call(db: Conn, job_id: int, token: str) -> Settled:
    """This process stops while the call runs: held, outcome unknown (see hold_cut)."""
    now = time.time()
    job = get_job(db, job_id)
    if job is None or job.state is not JobState.RUNNING or job.lease_owner != token:
        raise LeaseLost(job_id)
    hold_cut(db, job, now)
    session = settle_status(db, job.session_id, now, SessionStatus.WAITING)
    changed = get_job(db, job_id)
    assert changed is not None
    return Settled(session, [changed], [the_message(db, job.message_id)])


# ------------------------------------------------------------ the user's say
def approvals(db: Conn, session_id: int | None = None) -> list[Approval]:
    """Every held call (of one session, if given), oldest first."""
    rows = db.execute(
        "SELECT * FROM jobs WHERE state=:held AND (:sid IS NULL OR session_id=:sid) ORDER BY id",
        {**JOB, "sid": session_id},
    ).fetchall()
    out = []
    for row in rows:
        job = job_of(row)
        call = call_of(db, job) or ToolCallPart(job.call_id or "", "?", "")
        out.append(Approval(job, the_session(db, job.session_id), call, job.last_error or ""))
    return out


def forget_always(db: Conn, tool: str, session_id: int | None) -> list[Session]:
    """Calls of `tool` ask again in `session_id` (every session, if None): the "always" the
    user gave there is taken back. Returns the sessions that had it."""
    rows = db.execute(
        "SELECT id, allowed_tools FROM sessions WHERE (:sid IS NULL OR id=:sid) AND allowed_tools != '[]'",
        {"sid": session_id},
    ).fetchall()
    changed = []
    for row in rows:
        allowed = json.loads(row["allowed_tools"])
        if tool in allowed:
            allowed.remove(tool)
            db.execute(
                "UPDATE sessions SET allowed_tools=:allowed WHERE id=:sid",
                {"allowed": json.dumps(allowed), "sid": row["id"]},
            )
            changed.append(the_session(db, row["id"]))
    return changed


def approve(db: Conn, job_id: int, always: bool, priority: Priority) -> Settled | None:
    """Release a held call (None: it is not held). `always`: its tool runs without asking in
    this session from now on, and its other held calls there are released too."""
    now = time.time()
    job = get_job(db, job_id)
    if job is None or job.state is not JobState.HELD:
        return None
    released = [job_id]
    if always:
        call = call_of(db, job)
        if call is not None:
            session = the_session(db, job.session_id)
            allowed = sorted({*session.allowed_tools, call.name})
            db.execute(
                "UPDATE sessions SET allowed_tools=:allowed WHERE id=:sid",
                {"allowed": json.dumps(allowed), "sid": job.session_id},
            )
            for other in approvals(db, job.session_id):
                if other.job.id != job_id and other.call.name == call.name:
                    released.append(other.job.id)
    changed = []
    for jid in released:
        row = one(
            db,
            "UPDATE jobs SET state=:queued, approved=1, priority=:priority, run_after=:now, last_error=NULL,"
            " updated_at=:now WHERE id=:job AND state=:held RETURNING *",
            {**JOB, "priority": priority.value, "now": now, "job": jid},
        )
        if row is not None:
            changed.append(job_of(row))
    session = settle_status(db, job.session_id, now, SessionStatus.QUEUED)
    return Settled(session, changed, [m for j in changed if (m := get_message(db, j.message_id))])


def deny(db: Conn, job_id: int, reason: str, priority: Priority, max_rounds: int) -> Settled | None:
    """Refuse a held call: the model gets an error result (with the user's reason) and the
    turn goes on without it. None: the call is not held."""
    now = time.time()
    job = get_job(db, job_id)
    if job is None or job.state is not JobState.HELD:
        return None
    row = one(
        db,
        "UPDATE jobs SET state=:cancelled, last_error='denied', finished_at=:now, updated_at=:now"
        " WHERE id=:job RETURNING *",
        {**JOB, "now": now, "job": job_id},
    )
    assert row is not None and job.parent is not None
    text = "the user denied this call" + (f": {reason.strip()}" if reason.strip() else "")
    out = Settled(the_session(db, job.session_id), [job_of(row)])
    out.messages.append(_complete_tool_message(db, job.message_id, ToolResultPart(job.call_id or "", text, True), now))
    out.messages.extend(_next_step(db, out, job.parent, priority, max_rounds, False, now))
    out.session = settle_status(db, job.session_id, now, SessionStatus.WAITING)
    return out


__all__ = [
    "UNKNOWN_OUTCOME",
    "Approval",
    "JobKind",
    "Settled",
    "approvals",
    "approve",
    "call_of",
    "deny",
    "finish_call",
    "give_back_call",
    "hold_cut",
    "open_round",
]
