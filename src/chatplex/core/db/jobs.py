"""Jobs: a run's life, from enqueue through a claim with a lease and streamed text to finish.

A job changes three tables at once (the job, its reply, the session's status mark), so each
function here is one whole transaction's work, run by `Database.write` (or `read`); none
commits. Enum values are bound as named parameters (`JOB` holds the job states and
priorities every statement may use), never spelled as string literals.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Sequence
from typing import Any

from chatplex.core.db.errors import LeaseLost, StepOpen
from chatplex.core.db.parts import (
    COMPLETE,
    INTERRUPTED,
    StreamWrite,
    append_parts,
    clear_parts,
    insert_parts,
    rtrim_last_text,
    write_parts,
)
from chatplex.core.db.sessions import (
    Conn,
    Params,
    get_message,
    message_of,
    one,
    session_of,
    set_status,
    settle_status,
    the_message,
    the_session,
)
from chatplex.core.models import (
    Job,
    JobKind,
    JobState,
    Message,
    MessageState,
    Priority,
    Role,
    Session,
    SessionStatus,
    preview_of,
)
from chatplex.providers.base import ChatPart, TextPart

Finished = tuple[Job, Message, Session]
POISON_CRASHES = 3  # runs in a row cut by a dying process with nothing progressing: put aside

JOB: Params = {
    "queued": JobState.QUEUED.value,
    "running": JobState.RUNNING.value,
    "succeeded": JobState.SUCCEEDED.value,
    "failed": JobState.FAILED.value,
    "cancelled": JobState.CANCELLED.value,
    "held": JobState.HELD.value,
    "tool": JobKind.TOOL.value,
    "high": Priority.HIGH.value,
    "low": Priority.LOW.value,
}
# a session's next job cannot start while another of its jobs runs or is older and waiting
# (held for an approval included), except the tool calls of one round: they run together
NEXT_OF_SESSION = (
    "NOT EXISTS (SELECT 1 FROM jobs e WHERE e.session_id=j.session_id"
    " AND e.state IN (:queued, :running, :held) AND (e.state=:running OR e.id<j.id)"
    " AND NOT (e.kind=:tool AND j.kind=:tool AND e.parent=j.parent))"
)


def job_of(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        session_id=row["session_id"],
        message_id=row["message_id"],
        priority=Priority(row["priority"]),
        state=JobState(row["state"]),
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        run_after=row["run_after"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        crashes=row["crashes"],
        resumed_from=row["resumed_from"],
        kind=row["kind"],
        call_id=row["call_id"],
        parent=row["parent"],
        approved=bool(row["approved"]),
    )


def get_job(db: Conn, job_id: int) -> Job | None:
    row = one(db, "SELECT * FROM jobs WHERE id=:job", {"job": job_id})
    return job_of(row) if row else None


def finished(db: Conn, job_id: int) -> Finished:
    """A job with its message and session, read back in the transaction that changed them."""
    job = get_job(db, job_id)
    assert job is not None, job_id
    return job, the_message(db, job.message_id), the_session(db, job.session_id)


# ------------------------------------------------------------ enqueue
def _insert_job(db: Conn, sid: int, mid: int, priority: Priority, max_attempts: int, now: float) -> Job:
    row = one(
        db,
        "INSERT INTO jobs(session_id, message_id, priority, state, max_attempts, run_after,"
        " created_at, updated_at)"
        " VALUES (:sid, :mid, :priority, :queued, :max_attempts, :now, :now, :now) RETURNING *",
        {
            **JOB,
            "sid": sid,
            "mid": mid,
            "priority": priority.value,
            "max_attempts": max_attempts,
            "now": now,
        },
    )
    assert row is not None
    return job_of(row)


def _link(db: Conn, mid: int, job_id: int) -> Message:
    """The reply records the job that writes it; returns the reply as it is now."""
    row = one(
        db,
        "UPDATE messages SET job_id=:job WHERE id=:mid RETURNING *",
        {"job": job_id, "mid": mid},
    )
    assert row is not None, mid
    return message_of(row)


def create_turn(
    db: Conn, sid: int, text: str, priority: Priority, max_attempts: int
) -> tuple[Message, Message, Job, Session]:
    """The user message, its empty assistant reply (streaming) and the job. Every row is
    read back by RETURNING, not by another SELECT, and nothing is looked up or cleared that
    a new turn cannot have: B1 counts statements (bench/b1_queue.py)."""
    now = time.time()
    insert = (  # FROM sessions: no row (and no error) when the session does not exist
        "INSERT INTO messages(session_id, role, content, state, created_at, updated_at)"
        " SELECT id, :role, :content, :state, :now, :now FROM sessions WHERE id=:sid RETURNING *"
    )
    user = {
        "sid": sid,
        "role": Role.USER.value,
        "content": text,
        "state": MessageState.COMPLETE.value,
        "now": now,
    }
    user_row = one(db, insert, user)
    if user_row is None:
        raise KeyError(f"no session {sid}")
    insert_parts(db, user_row["id"], [TextPart(text)] if text else [])
    reply = {
        **user,
        "role": Role.ASSISTANT.value,
        "content": "",
        "state": MessageState.STREAMING.value,
    }
    reply_row = one(db, insert, reply)
    assert reply_row is not None
    job = _insert_job(db, sid, reply_row["id"], priority, max_attempts, now)
    db.execute("UPDATE messages SET job_id=:job WHERE id=:mid", {"job": job.id, "mid": job.message_id})
    reply_message = message_of(reply_row)
    reply_message.job_id = job.id  # as just written
    session = settle_status(db, sid, now, SessionStatus.QUEUED)  # streaming if another job runs
    return message_of(user_row), reply_message, job, session


def requeue_reply(db: Conn, mid: int, priority: Priority, max_attempts: int) -> Finished:
    """A fresh job for an assistant message (the user asked to retry it)."""
    now = time.time()
    msg = get_message(db, mid)
    if msg is None or msg.role != Role.ASSISTANT:
        raise KeyError(f"no reply {mid}")
    open_calls = one(
        db,
        "SELECT COALESCE(SUM(state=:held), 0), COALESCE(SUM(state IN (:queued, :running)), 0)"
        " FROM jobs WHERE parent=:mid AND kind=:tool",
        {**JOB, "mid": mid},
    )
    held, going = tuple(open_calls) if open_calls is not None else (0, 0)
    if held or going:
        what = [f"{held} waiting for your approval"] if held else []
        what += [f"{going} queued or running"] if going else []
        raise StepOpen(
            f"this reply's tool calls are not done ({', '.join(what)}): approve or deny them, "
            "or let them finish; the turn then goes on by itself"
        )
    active = one(
        db,
        "SELECT id FROM jobs WHERE message_id=:mid AND state IN (:queued, :running)",
        {**JOB, "mid": mid},
    )
    if active:  # already waiting: run it now instead of adding a second job
        job_id = active[0]
        db.execute(
            "UPDATE jobs SET run_after=:now, updated_at=:now WHERE id=:job AND state=:queued",
            {**JOB, "now": now, "job": job_id},
        )
    else:
        job_id = _insert_job(db, msg.session_id, mid, priority, max_attempts, now).id
        _link(db, mid, job_id)
        db.execute(
            "UPDATE messages SET content='', state=:streaming, error=NULL, finish_reason=NULL,"
            " updated_at=:now WHERE id=:mid",
            {"streaming": MessageState.STREAMING.value, "now": now, "mid": mid},
        )
        clear_parts(db, mid)
    settle_status(db, msg.session_id, now, SessionStatus.QUEUED)
    return finished(db, job_id)


# ------------------------------------------------------------ the worker's side
def claim(
    db: Conn,
    owner: str,
    lease: float,
    exclude_providers: Sequence[str],
    only_session: int | None,
    continuing: Collection[str],
) -> tuple[Job, Session] | None:
    """Take the best runnable job: HIGH before LOW, then oldest, one job per session at a time
    (only `only_session`'s, if given). A partial reply is kept (less trailing whitespace,
    which Anthropic refuses at the end of a prefill) when the session's provider is one of
    `continuing`, else cleared for a fresh start."""
    now = time.time()
    skipped = {f"p{i}": name for i, name in enumerate(exclude_providers)}
    skip = ""
    if skipped:
        marks = ", ".join(f":{name}" for name in skipped)
        skip = f" AND j.session_id NOT IN (SELECT id FROM sessions WHERE provider IN ({marks}))"
    if only_session is not None:
        skip += " AND j.session_id=:only"
    kept = {f"c{i}": name for i, name in enumerate(continuing)}
    # how much partial text the run continues from: the reply's text less its trailing
    # whitespace when the session's provider can continue it, else none (cleared below)
    resumed = "0"
    if kept:
        marks = ", ".join(f":{name}" for name in kept)
        resumed = (
            f"(SELECT CASE WHEN s.provider IN ({marks}) THEN length(rtrim(m.content, char(32, 9, 10, 13)))"
            " ELSE 0 END FROM messages m JOIN sessions s ON s.id=m.session_id WHERE m.id=jobs.message_id)"
        )
    row = one(
        db,
        "UPDATE jobs SET state=:running, lease_owner=:owner, lease_expires_at=:expires,"
        f" attempts=attempts+1, started_at=:now, updated_at=:now, resumed_from={resumed} WHERE id=("
        " SELECT j.id FROM jobs j WHERE j.state=:queued AND j.run_after<=:now"
        f" AND {NEXT_OF_SESSION}{skip}"
        " ORDER BY j.priority, j.run_after, j.id LIMIT 1) RETURNING *",
        {
            **JOB,
            **skipped,
            **kept,
            "owner": owner,
            "expires": now + lease,
            "now": now,
            "only": only_session,
        },
    )
    if row is None:
        return None
    job = job_of(row)
    db.execute(
        "UPDATE messages SET content=CASE WHEN :kept THEN rtrim(content, char(32, 9, 10, 13))"
        " ELSE '' END, state=:streaming, error=NULL, job_id=:job, updated_at=:now,"
        " model=(SELECT model FROM sessions WHERE id=:sid) WHERE id=:message",
        {
            "kept": bool(job.resumed_from),
            "streaming": MessageState.STREAMING.value,
            "job": job.id,
            "now": now,
            "sid": job.session_id,
            "message": job.message_id,
        },
    )
    # the parts go with the text: kept with it (trimmed alike), or cleared with it. A partial
    # with no text (only reasoning) is not continued: a prefill continues an answer, not a
    # thought, so that reply is generated again from the start.
    if job.resumed_from:
        rtrim_last_text(db, job.message_id)
    elif not job.is_tool:  # a tool step's message keeps its placeholder result (its call's id)
        clear_parts(db, job.message_id)
    if job.is_tool:  # its round's other calls may still wait for an approval
        return job, settle_status(db, job.session_id, now, SessionStatus.RUNNING_TOOL)
    return job, set_status(db, job.session_id, SessionStatus.STREAMING, now)


# Streamed text onto the job's reply. By primary key: `WHERE job_id=?` scanned every message
# of the database on every flush (no index on messages.job_id).
APPEND_SQL = (
    "UPDATE messages SET content=content||:text, updated_at=:now"
    " WHERE id=(SELECT message_id FROM jobs WHERE id=:job) AND state=:streaming"
)


def append_many(
    db: Conn, lease: float, items: Sequence[tuple[int, str, str | StreamWrite]]
) -> tuple[set[int], list[Session]]:
    """Streamed text and parts for several running jobs (id, claim token, new text or a
    StreamWrite), leases extended. Returns the jobs whose claim is not live any more
    (cancelled, or taken over after a lease expired): their writes are dropped; and the
    sessions whose mark changed (thinking ↔ streaming). The fence is the claim's own token,
    not the process: a stale run in this same process can never write."""
    now = time.time()
    lost = set()
    marked = []
    for job_id, token, write in items:
        row = one(
            db,
            "UPDATE jobs SET lease_expires_at=:expires WHERE id=:job AND lease_owner=:token AND state=:running"
            " RETURNING message_id, session_id",
            {**JOB, "expires": now + lease, "job": job_id, "token": token},
        )
        if row is None:
            lost.add(job_id)
            continue
        if isinstance(write, str):
            write = StreamWrite(write)
        if write.text:
            db.execute(
                APPEND_SQL,
                {
                    "text": write.text,
                    "now": now,
                    "job": job_id,
                    "streaming": MessageState.STREAMING.value,
                },
            )
        if write.parts:
            append_parts(db, row["message_id"], write.parts)
        if write.status:
            changed = one(
                db,
                "UPDATE sessions SET status=:status WHERE id=:sid AND status IN (:streaming, :thinking) RETURNING *",
                {
                    "status": write.status,
                    "sid": row["session_id"],
                    "streaming": SessionStatus.STREAMING.value,
                    "thinking": SessionStatus.THINKING.value,
                },
            )
            if changed is not None:
                marked.append(session_of(changed))
    return lost, marked


# outcome -> (job state, message state, session status when nothing else is active)
OUTCOMES = {
    "succeeded": (JobState.SUCCEEDED, MessageState.COMPLETE, SessionStatus.WAITING),
    "failed": (JobState.FAILED, MessageState.ERROR, SessionStatus.ERROR),
    "cancelled": (JobState.CANCELLED, MessageState.INTERRUPTED, SessionStatus.IDLE),
    "retry": (JobState.QUEUED, MessageState.INTERRUPTED, SessionStatus.QUEUED),
    "requeue": (JobState.QUEUED, MessageState.INTERRUPTED, SessionStatus.INTERRUPTED),
}


def finish(
    db: Conn,
    job_id: int,
    token: str,
    outcome: str,
    text: str,
    error: str | None,
    run_after: float,
    unread: bool,
    usage: tuple[int | None, ...],
    finish_reason: str | None,
    parts: Sequence[ChatPart] | None = None,
) -> Finished:
    """End a run (see Store.finish for the outcomes); only the claim `token` may end it.
    `parts` are the reply's whole parts (None: `text` is its one part). `usage`: prompt,
    completion and reasoning tokens, and the milliseconds the run streamed, as far as known."""
    now = time.time()
    job_state, msg_state, status = OUTCOMES[outcome]
    row = one(
        db,
        "UPDATE jobs SET state=:state, lease_owner=NULL, lease_expires_at=NULL, updated_at=:now,"
        " last_error=COALESCE(:error, last_error), finished_at=:finished,"
        " run_after=CASE WHEN :retry THEN :run_after ELSE run_after END,"
        # a run that ended: its crashes in a row end too
        " attempts=attempts-:given_back, crashes=0"
        " WHERE id=:job AND state=:running AND lease_owner=:token RETURNING *",
        {
            **JOB,
            "state": job_state.value,
            "now": now,
            "error": error,
            "finished": now if job_state.finished else None,
            "retry": outcome == "retry",
            "run_after": run_after,
            "given_back": int(outcome == "requeue"),
            "job": job_id,
            "token": token,
        },
    )
    if row is None:  # not running any more, or under another claim
        raise LeaseLost(job_id)
    job = job_of(row)
    row = one(
        db,
        "UPDATE messages SET content=:text, state=:state, error=:error,"
        " prompt_tokens=COALESCE(:prompt, prompt_tokens), completion_tokens=COALESCE(:completion,"
        " completion_tokens), reasoning_tokens=COALESCE(:reasoning, reasoning_tokens),"
        " seconds=COALESCE(:seconds, seconds), finish_reason=:reason, updated_at=:now WHERE id=:mid RETURNING *",
        {
            "text": text,
            "state": msg_state.value,
            "error": error,
            "prompt": usage[0],
            "completion": usage[1],
            "reasoning": usage[2] if len(usage) > 2 else None,
            "seconds": usage[3] / 1000 if len(usage) > 3 and usage[3] is not None else None,
            "reason": finish_reason,
            "now": now,
            "mid": job.message_id,
        },
    )
    assert row is not None, job.message_id
    whole: list[ChatPart] = list(parts) if parts is not None else ([TextPart(text)] if text else [])
    write_parts(db, job.message_id, whole, COMPLETE if msg_state == MessageState.COMPLETE else INTERRUPTED)
    extra: dict[str, Any] = {}
    if outcome == "succeeded":
        extra["preview"] = preview_of(text)  # the reply's whole text (see the docstring)
    elif outcome == "failed":
        extra["preview"] = preview_of("⚠ " + (error or "failed"))
    elif outcome == "retry":  # the row says why it waits and when it tries again
        extra["preview"] = preview_of("↻ " + (error or "retrying"))
    unread_more = int(unread and outcome in ("succeeded", "failed"))
    if outcome in ("retry", "requeue"):  # this job is still the session's next one
        session = set_status(db, job.session_id, status, now, unread_more, **extra)
    else:
        session = settle_status(db, job.session_id, now, status, unread_more, **extra)
    message = message_of(row)
    message.parts = whole
    return job, message, session
