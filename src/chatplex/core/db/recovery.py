"""Who holds a lease, and giving back the jobs of processes that died holding one."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

from chatplex.core.db.jobs import JOB, POISON_CRASHES, Finished, finished, job_of
from chatplex.core.db.parts import INTERRUPTED, STREAMING
from chatplex.core.db.sessions import Conn, one, settle_status
from chatplex.core.db.steps import hold_cut
from chatplex.core.models import Job, JobState, MessageState, SessionStatus


def owner_id() -> str:
    """Lease owner for this process: host, pid and a random part (pids get reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


def owner_is_dead(owner: str) -> bool:
    """True for a lease owner that was a process on this host and no longer runs."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def recover(db: Conn, stale: Callable[[Job], bool]) -> list[Finished]:
    """Give back running jobs that `stale(job)` judges abandoned (see Store.recover)."""
    now = time.time()
    out: list[Finished] = []
    for row in db.execute("SELECT * FROM jobs WHERE state=:running", JOB).fetchall():
        job = job_of(row)
        if not stale(job):
            continue
        if job.is_tool:  # it may have done its deed: never run again without the user's say
            hold_cut(db, job, now)
            settle_status(db, job.session_id, now, SessionStatus.WAITING)
            out.append(finished(db, job.id))
            continue
        progressed = one(
            db,
            "SELECT (SELECT length(content) > :kept FROM messages WHERE id=:message)"
            " OR EXISTS (SELECT 1 FROM jobs WHERE state=:succeeded AND id != :job"
            " AND finished_at >= :since)",
            {
                **JOB,
                "message": job.message_id,
                "job": job.id,
                "since": job.started_at or 0,
                "kept": job.resumed_from,
            },
        )
        crashes = 0 if progressed and progressed[0] else job.crashes + 1
        poison = crashes >= POISON_CRASHES
        error = (
            "the process running this reply stopped"
            if not poison
            else f"chatplex stopped {crashes} times in a row while starting this reply, with "
            "nothing else getting done; it was put aside in case it is what stops it "
            "— press ctrl+r to try again"
        )
        db.execute(
            "UPDATE jobs SET state=:state, lease_owner=NULL, lease_expires_at=NULL,"
            " last_error=:error, finished_at=:finished, updated_at=:now,"
            " attempts=MAX(attempts-1, 0), crashes=:crashes WHERE id=:job",
            {
                "state": (JobState.FAILED if poison else JobState.QUEUED).value,
                "error": error,
                "finished": now if poison else None,
                "now": now,
                "crashes": crashes,
                "job": job.id,
            },
        )
        db.execute(
            "UPDATE messages SET state=:state, error=:error, updated_at=:now WHERE id=:message",
            {
                "state": (MessageState.ERROR if poison else MessageState.INTERRUPTED).value,
                "error": error,
                "now": now,
                "message": job.message_id,
            },
        )
        # the parts its stream had stored stay, cut where the process died
        db.execute(
            "UPDATE parts SET state=:interrupted WHERE message_id=:message AND state=:streaming",
            {"interrupted": INTERRUPTED, "streaming": STREAMING, "message": job.message_id},
        )
        settle_status(db, job.session_id, now, SessionStatus.ERROR)
        out.append(finished(db, job.id))
    return out
