"""Scheduling: what the user and the workers change or ask about jobs that are not running
under their own claim: cancel, rank (focus), run now, lists and counts, preemption
candidates, the next wake-up. One transaction's (or read's) work per function, as in jobs.py.
"""

from __future__ import annotations

import time

from chatplex.core.db.jobs import JOB, NEXT_OF_SESSION, Finished, finished, get_job, job_of
from chatplex.core.db.sessions import Conn, scalar, settle_status
from chatplex.core.models import Job, JobState, MessageState, Priority, QueueStats, SessionStatus


def runnable_high(db: Conn) -> list[tuple[int, int, str]]:
    """(job, session, provider) of HIGH jobs that could run now: preemption candidates."""
    return [
        (r[0], r[1], r[2])
        for r in db.execute(
            "SELECT j.id, j.session_id, s.provider FROM jobs j JOIN sessions s ON s.id=j.session_id"
            " WHERE j.state=:queued AND j.priority=:high AND j.run_after<=:now"
            f" AND {NEXT_OF_SESSION}"
            " ORDER BY j.run_after, j.id LIMIT 16",
            {**JOB, "now": time.time()},
        )
    ]


def next_run_after(db: Conn, after: float | None = None) -> float | None:
    """When the earliest delayed job becomes runnable (so an idle worker can sleep till then).
    Jobs already due at `after` (the moment of the claim that found nothing; default now)
    are left out: they were not claimable, and what frees them (a reply finishing, a
    provider slot) notifies; counting them made idle workers poll. A job that fell due since
    `after` is counted (the time may be past: claim again at once)."""
    found: float | None = scalar(
        db,
        "SELECT MIN(run_after) FROM jobs WHERE state=:queued AND run_after>:since",
        {**JOB, "since": time.time() if after is None else after},
    )
    return found


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
        f"UPDATE jobs SET priority={rank}, updated_at=:now WHERE state IN (:queued, :running) AND priority != {rank}",
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
        "UPDATE jobs SET run_after=:now, updated_at=:now WHERE id=:job AND state=:queued AND run_after>:now",
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
    """Counts by state and priority; queued/running/held only (an index range) unless asked."""
    where = "" if include_finished else " WHERE state IN (:queued, :running, :held)"
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
