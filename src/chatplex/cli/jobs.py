"""`chatplex jobs`: the queue as a table, its counts, and cancel / retry by job id."""

from __future__ import annotations

import argparse
import time
from typing import Any

from chatplex.cli.output import UsageError, emit, table
from chatplex.config import Config
from chatplex.core.coordinator import Coordinator
from chatplex.core.db import StepOpen
from chatplex.core.models import Job, JobState
from chatplex.core.text import duration, preview_of


def job_record(j: Job) -> dict[str, Any]:
    return {
        "id": j.id,
        "session": j.session_id,
        "message": j.message_id,
        "state": j.state.value,
        "priority": j.priority.name,
        "attempts": j.attempts,
        "max_attempts": j.max_attempts,
        "run_after": j.run_after,
        "created_at": j.created_at,
        "started_at": j.started_at,
        "finished_at": j.finished_at,
        "last_error": j.last_error,
    }


def times(j: Job, now: float) -> tuple[str, str]:
    """The "waited" and "ran" columns, as the app's queue inspector (F3) counts them: a queued
    job has waited until now, and has not run (its earlier tries are history)."""
    queued = j.state is JobState.QUEUED
    waited = (now if queued or not j.started_at else j.started_at) - j.created_at
    ran = "" if queued or not j.started_at else duration((j.finished_at or now) - j.started_at)
    return duration(waited), ran


def parse_job_id(text: str) -> int:
    """A job id is ASCII digits: int() also reads '١' as 1, which would act on job 1. An id
    past SQLite's integers cannot exist (0 is never used)."""
    if not (text.isascii() and text.isdigit()):
        raise UsageError(f"bad job id {text!r}: use a number from `chatplex jobs`")
    n = int(text)
    return n if n < 2**63 else 0


async def cmd_jobs(config: Config, args: argparse.Namespace) -> int:
    async with await Coordinator.open(config) as coord:
        if args.jobs_command == "stats":
            stats = await coord.stats(finished=True)
            rows = {f"{state.value}/{prio.name}": n for (state, prio), n in sorted(stats.counts.items())}
            human = "\n".join(f"{k:<20} {n:>7}" for k, n in rows.items()) or "no jobs"
            if stats.oldest_wait is not None:
                human += f"\noldest runnable job has waited {duration(stats.oldest_wait)}"
            return emit(args.json, {"counts": rows, "oldest_wait": stats.oldest_wait}, human)
        if args.jobs_command in ("cancel", "retry"):
            return await _act(coord, args)
        jobs = await coord.jobs(JobState(args.state) if args.state else None)
    if args.json:
        return emit(True, [job_record(j) for j in jobs], "")
    now = time.time()
    table(
        ["id", "session", "prio", "state", "tries", "waited", "ran", "error"],
        [
            [
                str(j.id),
                str(j.session_id),
                j.priority.name,
                j.state.value,
                f"{j.attempts}/{j.max_attempts}",
                *times(j, now),
                preview_of(j.last_error or "", 60),
            ]
            for j in jobs
        ],
        empty="no jobs",
    )
    return 0


async def _act(coord: Coordinator, args: argparse.Namespace) -> int:
    job = await coord.store.get_job(parse_job_id(args.id))
    if job is None:
        raise UsageError(f"no job {args.id} (see `chatplex jobs`)")
    if args.jobs_command == "cancel":
        if job.state not in (JobState.QUEUED, JobState.RUNNING, JobState.HELD):
            raise UsageError(f"job {job.id} is {job.state.value}; only queued, running or held jobs can be cancelled")
        await coord.cancel_job(job.id)
        return emit(args.json, {"cancelled": job.id}, f"cancelled job {job.id}")
    if job.is_tool:  # a call may have side effects: it runs again only with the user's say
        raise UsageError(
            f"job {job.id} is a tool call: it is not run again by itself "
            f"(`chatplex approve {job.id}` if it waits; else retry its reply)"
        )
    try:
        new = await coord.retry_job(job.id)
    except StepOpen as e:
        raise UsageError(f"job {job.id}: {e}") from e
    if new is None:
        raise UsageError(f"job {job.id}'s reply is being generated right now")
    return emit(
        args.json,
        {"job": new.id, "session": new.session_id},
        f"queued job {new.id} to regenerate the reply (session {new.session_id})",
    )


COMMANDS = {"jobs": cmd_jobs}
