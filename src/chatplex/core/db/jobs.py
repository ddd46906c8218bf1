"""Jobs: every statement of the queue, and the session status each change of a job implies.

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

from chatplex.core.db.errors import LeaseLost
from chatplex.core.db.sessions import (
    Conn,
    Params,
    get_message,
    get_session,
    one,
    rowid,
    scalar,
    set_status,
    settle_status,
    the_message,
    the_session,
)
from chatplex.core.models import (
    Job,
    JobState,
    Message,
    MessageState,
    Priority,
    QueueStats,
    Role,
    Session,
    SessionStatus,
    preview_of,
)

Finished = tuple[Job, Message, Session]
POISON_CRASHES = 3  # runs in a row cut by a dying process with nothing progressing: put aside

JOB: Params = {
    "queued": JobState.QUEUED.value,
    "running": JobState.RUNNING.value,
    "succeeded": JobState.SUCCEEDED.value,
    "failed": JobState.FAILED.value,
    "cancelled": JobState.CANCELLED.value,
    "high": Priority.HIGH.value,
    "low": Priority.LOW.value,
}
# a session's next job cannot start while another of its jobs runs or is older and waiting
_NEXT_OF_SESSION = (
    "NOT EXISTS (SELECT 1 FROM jobs e WHERE e.session_id=j.session_id"
    " AND e.state IN (:queued, :running) AND (e.state=:running OR e.id<j.id))"
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
def _insert_job(
    db: Conn, sid: int, mid: int, priority: Priority, max_attempts: int, now: float
) -> int:
    job_id = rowid(
        db.execute(
            "INSERT INTO jobs(session_id, message_id, priority, state, max_attempts, run_after,"
            " created_at,"
            " updated_at) VALUES (:sid, :mid, :priority, :queued, :max_attempts, :now, :now, :now)",
            {
                **JOB,
                "sid": sid,
                "mid": mid,
                "priority": priority.value,
                "max_attempts": max_attempts,
                "now": now,
            },
        )
    )
    db.execute("UPDATE messages SET job_id=:job WHERE id=:mid", {"job": job_id, "mid": mid})
    return job_id


def create_turn(
    db: Conn, sid: int, text: str, priority: Priority, max_attempts: int
) -> tuple[Message, Message, Job, Session]:
    """The user message, its empty assistant reply (streaming) and the job."""
    now = time.time()
    if get_session(db, sid) is None:
        raise KeyError(f"no session {sid}")
    insert = (
        "INSERT INTO messages(session_id, role, content, state, created_at, updated_at)"
        " VALUES (:sid, :role, :content, :state, :now, :now)"
    )
    user = {
        "sid": sid,
        "role": Role.USER.value,
        "content": text,
        "state": MessageState.COMPLETE.value,
        "now": now,
    }
    user_id = rowid(db.execute(insert, user))
    reply = {
        **user,
        "role": Role.ASSISTANT.value,
        "content": "",
        "state": MessageState.STREAMING.value,
    }
    reply_id = rowid(db.execute(insert, reply))
    job_id = _insert_job(db, sid, reply_id, priority, max_attempts, now)
    settle_status(db, sid, now, SessionStatus.QUEUED)  # streaming if another job of it runs
    job, reply_message, session = finished(db, job_id)
    return the_message(db, user_id), reply_message, job, session


def requeue_reply(db: Conn, mid: int, priority: Priority, max_attempts: int) -> Finished:
    """A fresh job for an assistant message (the user asked to retry it)."""
    now = time.time()
    msg = get_message(db, mid)
    if msg is None or msg.role != Role.ASSISTANT:
        raise KeyError(f"no reply {mid}")
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
        job_id = _insert_job(db, msg.session_id, mid, priority, max_attempts, now)
        db.execute(
            "UPDATE messages SET content='', state=:streaming, error=NULL, finish_reason=NULL,"
            " updated_at=:now WHERE id=:mid",
            {"streaming": MessageState.STREAMING.value, "now": now, "mid": mid},
        )
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
    row = one(
        db,
        "UPDATE jobs SET state=:running, lease_owner=:owner, lease_expires_at=:expires,"
        " attempts=attempts+1, started_at=:now, updated_at=:now WHERE id=("
        " SELECT j.id FROM jobs j WHERE j.state=:queued AND j.run_after<=:now"
        f" AND {_NEXT_OF_SESSION}{skip}"
        " ORDER BY j.priority, j.run_after, j.id LIMIT 1) RETURNING *",
        {
            **JOB,
            **skipped,
            "owner": owner,
            "expires": now + lease,
            "now": now,
            "only": only_session,
        },
    )
    if row is None:
        return None
    job = job_of(row)
    session = the_session(db, job.session_id)
    db.execute(
        "UPDATE messages SET content=CASE WHEN :keep THEN rtrim(content, char(32, 9, 10, 13))"
        " ELSE '' END, state=:streaming, error=NULL, job_id=:job, updated_at=:now,"
        " model=:model WHERE id=:message",
        {
            "keep": session.provider in continuing,
            "streaming": MessageState.STREAMING.value,
            "job": job.id,
            "now": now,
            "model": session.model,
            "message": job.message_id,
        },
    )
    kept = scalar(
        db,
        "UPDATE jobs SET resumed_from=(SELECT length(content) FROM messages WHERE id=:message)"
        " WHERE id=:job RETURNING resumed_from",
        {"message": job.message_id, "job": job.id},
    )
    job.resumed_from = kept or 0
    set_status(db, job.session_id, SessionStatus.STREAMING, now)
    return job, the_session(db, job.session_id)


def runnable_high(db: Conn) -> list[tuple[int, int, str]]:
    """(job, session, provider) of HIGH jobs that could run now: preemption candidates."""
    return [
        (r[0], r[1], r[2])
        for r in db.execute(
            "SELECT j.id, j.session_id, s.provider FROM jobs j JOIN sessions s ON s.id=j.session_id"
            " WHERE j.state=:queued AND j.priority=:high AND j.run_after<=:now"
            f" AND {_NEXT_OF_SESSION}"
            " ORDER BY j.run_after, j.id LIMIT 16",
            {**JOB, "now": time.time()},
        )
    ]


def next_run_after(db: Conn) -> float | None:
    """When the earliest delayed job becomes runnable (so an idle worker can sleep till then).
    Jobs already due are left out: if they were not claimable, what frees them (a reply
    finishing, a provider slot) notifies; counting them made idle workers poll."""
    found: float | None = scalar(
        db,
        "SELECT MIN(run_after) FROM jobs WHERE state=:queued AND run_after>:now",
        {**JOB, "now": time.time()},
    )
    return found


# Streamed text onto the job's reply. By primary key: `WHERE job_id=?` scanned every message
# of the database on every flush (no index on messages.job_id).
APPEND_SQL = (
    "UPDATE messages SET content=content||:text, updated_at=:now"
    " WHERE id=(SELECT message_id FROM jobs WHERE id=:job) AND state=:streaming"
)


def append_many(db: Conn, lease: float, items: Sequence[tuple[int, str, str]]) -> set[int]:
    """Streamed text for several running jobs (id, claim token, new text), leases extended.
    Returns the jobs whose claim is not live any more (cancelled, or taken over after a
    lease expired): their text is dropped. The fence is the claim's own token, not the
    process: a stale run in this same process can never write."""
    now = time.time()
    lost = set()
    for job_id, token, text in items:
        cur = db.execute(
            "UPDATE jobs SET lease_expires_at=:expires"
            " WHERE id=:job AND lease_owner=:token AND state=:running",
            {**JOB, "expires": now + lease, "job": job_id, "token": token},
        )
        if cur.rowcount != 1:
            lost.add(job_id)
        elif text:
            db.execute(
                APPEND_SQL,
                {
                    "text": text,
                    "now": now,
                    "job": job_id,
                    "streaming": MessageState.STREAMING.value,
                },
            )
    return lost


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
    usage: tuple[int | None, int | None],
    finish_reason: str | None,
) -> Finished:
    """End a run (see Store.finish for the outcomes); only the claim `token` may end it."""
    now = time.time()
    job = get_job(db, job_id)
    if job is None or job.state != JobState.RUNNING or job.lease_owner != token:
        raise LeaseLost(job_id)
    job_state, msg_state, status = OUTCOMES[outcome]
    db.execute(
        "UPDATE jobs SET state=:state, lease_owner=NULL, lease_expires_at=NULL, updated_at=:now,"
        " last_error=COALESCE(:error, last_error), finished_at=:finished, run_after=:run_after,"
        # a run that ended: its crashes in a row end too
        " attempts=attempts-:given_back, crashes=0 WHERE id=:job",
        {
            "state": job_state.value,
            "now": now,
            "error": error,
            "finished": now if job_state.finished else None,
            "run_after": run_after if outcome == "retry" else job.run_after,
            "given_back": int(outcome == "requeue"),
            "job": job_id,
        },
    )
    db.execute(
        "UPDATE messages SET content=:text, state=:state, error=:error,"
        " prompt_tokens=COALESCE(:prompt, prompt_tokens), completion_tokens=COALESCE(:completion,"
        " completion_tokens), finish_reason=:reason, updated_at=:now WHERE id=:mid",
        {
            "text": text,
            "state": msg_state.value,
            "error": error,
            "prompt": usage[0],
            "completion": usage[1],
            "reason": finish_reason,
            "now": now,
            "mid": job.message_id,
        },
    )
    extra: dict[str, Any] = {}
    if outcome == "succeeded":
        extra["preview"] = preview_of(text)  # the reply's whole text (see the docstring)
    elif outcome == "failed":
        extra["preview"] = preview_of("⚠ " + (error or "failed"))
    elif outcome == "retry":  # the row says why it waits and when it tries again
        extra["preview"] = preview_of("↻ " + (error or "retrying"))
    if unread and outcome in ("succeeded", "failed"):
        db.execute("UPDATE sessions SET unread=unread+1 WHERE id=:sid", {"sid": job.session_id})
    if outcome in ("retry", "requeue"):  # this job is still the session's next one
        set_status(db, job.session_id, status, now, **extra)
    else:
        settle_status(db, job.session_id, now, status, **extra)
    return finished(db, job_id)


# ------------------------------------------------------------ the user's side
def cancel(db: Conn, job_id: int) -> Finished | None:
    """Cancel a queued or running job. A running job's worker notices at its next write."""
    now = time.time()
    job = get_job(db, job_id)
    if job is None or job.state.finished:
        return None
    db.execute(
        "UPDATE jobs SET state=:cancelled, lease_owner=NULL, lease_expires_at=NULL,"
        " finished_at=:now, updated_at=:now WHERE id=:job",
        {**JOB, "now": now, "job": job_id},
    )
    db.execute(
        "UPDATE messages SET state=:interrupted, error='cancelled', updated_at=:now WHERE id=:mid",
        {"interrupted": MessageState.INTERRUPTED.value, "now": now, "mid": job.message_id},
    )
    settle_status(db, job.session_id, now, SessionStatus.IDLE)
    return finished(db, job_id)


def reprioritise(db: Conn, focused: int | None) -> int:
    """The focused session's unfinished jobs become HIGH, every other one LOW."""
    rank = "CASE WHEN session_id IS :focused THEN :high ELSE :low END"
    return db.execute(
        f"UPDATE jobs SET priority={rank}, updated_at=:now"
        f" WHERE state IN (:queued, :running) AND priority != {rank}",
        {**JOB, "focused": focused, "now": time.time()},
    ).rowcount


def set_priority(db: Conn, job_id: int, priority: Priority) -> Job | None:
    db.execute(
        "UPDATE jobs SET priority=:priority, updated_at=:now WHERE id=:job AND state=:queued",
        {**JOB, "priority": priority.value, "now": time.time(), "job": job_id},
    )
    return get_job(db, job_id)


def run_now(db: Conn, job_id: int) -> Job | None:
    """A queued job waiting for its retry time becomes runnable now."""
    now = time.time()
    db.execute(
        "UPDATE jobs SET run_after=:now, updated_at=:now"
        " WHERE id=:job AND state=:queued AND run_after>:now",
        {**JOB, "now": now, "job": job_id},
    )
    return get_job(db, job_id)


def jobs(db: Conn, state: JobState | None, limit: int) -> list[Job]:
    return [
        job_of(r)
        for r in db.execute(
            "SELECT * FROM jobs WHERE :state IS NULL OR state=:state ORDER BY id DESC LIMIT :limit",
            {"state": state.value if state else None, "limit": limit},
        )
    ]


def stats(db: Conn, include_finished: bool) -> QueueStats:
    """Counts by state and priority; queued/running only (an index range) unless asked."""
    where = "" if include_finished else " WHERE state IN (:queued, :running)"
    out = QueueStats()
    for state, priority, n in db.execute(
        f"SELECT state, priority, COUNT(*) FROM jobs{where} GROUP BY state, priority", JOB
    ):
        out.counts[(JobState(state), Priority(priority))] = n
    now = time.time()
    oldest = scalar(
        db,
        "SELECT MIN(run_after) FROM jobs WHERE state=:queued AND run_after<=:now",
        {**JOB, "now": now},
    )
    out.oldest_wait = now - oldest if oldest is not None else None
    return out
