"""The durable priority job queue: claim with a lease, heartbeat, complete, retry, cancel.

The rows live in SQLite (see store.py); this module adds what is not SQL: who we are (the
lease owner), how long a lease lasts, the backoff policy, and the in-process wake-up so an
enqueue reaches an idle worker at once instead of at the next poll. The coordinator and the
workers reach jobs only through here: one path for every job operation.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Collection, Sequence

from chatplex.core.db import Store, owner_id, owner_is_dead
from chatplex.core.db.parts import StreamWrite
from chatplex.core.models import Job, JobState, Message, Priority, QueueStats, Session
from chatplex.providers.base import ChatPart

log = logging.getLogger("chatplex.queue")

Finished = tuple[Job, Message, Session]


def backoff(
    attempt: int, retry_after: float | None = None, base: float = 1.0, cap: float = 60.0, retry_after_cap: float = 300.0
) -> float:
    """Seconds before retry number `attempt` (1-based): the server's Retry-After when it gave
    one (at most `retry_after_cap`: a day-long Retry-After would leave a reply, and a waiting
    `chatplex send`, stuck in silence), else exponential with full jitter in [½·d, d] so
    retries of many jobs spread out."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), retry_after_cap)
    delay = min(cap, base * 2 ** max(attempt - 1, 0))
    return delay * (0.5 + random.random() / 2)


class JobQueue:
    def __init__(
        self,
        store: Store,
        *,
        lease: float = 30.0,
        max_attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        owner: str | None = None,
    ):
        self.store = store
        self.owner = owner or owner_id()
        self.lease = lease
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._wake = asyncio.Event()
        self.version = 0  # counts notify(): what could make a job claimable has changed
        self._claims = itertools.count(1)
        # running jobs whose lease looked expired: job id -> ((token, expiry), monotonic when seen)
        self._suspects: dict[int, tuple[tuple[str, float | None], float]] = {}

    # ---------------------------------------------------------------- wake-up
    def token(self) -> asyncio.Event:
        """Take before a claim that may find nothing; `wait(token)` then misses no notify."""
        return self._wake

    def notify(self) -> None:
        """Wake every idle worker (a job arrived, a slot or a session became free)."""
        self.version += 1
        self._wake.set()
        self._wake = asyncio.Event()

    @staticmethod
    async def wait(token: asyncio.Event, timeout: float | None) -> None:
        try:
            await asyncio.wait_for(token.wait(), timeout)
        except TimeoutError:
            pass

    # ---------------------------------------------------------------- producer side
    async def enqueue(self, session_id: int, text: str, priority: Priority) -> tuple[Message, Message, Job, Session]:
        turn = await self.store.create_turn(session_id, text, priority, self.max_attempts)
        log.info("job %d queued for session %d (%s)", turn[2].id, session_id, priority.name)
        self.notify()
        return turn

    async def retry_reply(self, message_id: int, priority: Priority) -> tuple[Job, Message, Session]:
        job, msg, session = await self.store.requeue_reply(message_id, priority, self.max_attempts)
        log.info("job %d queued again for session %d (retry of message %d)", job.id, session.id, message_id)
        self.notify()
        return job, msg, session

    async def cancel(self, job_id: int) -> Finished | None:
        result = await self.store.cancel(job_id)
        if result:
            log.info("job %d cancelled (session %d)", job_id, result[0].session_id)
            self.notify()  # the session's next job may run now
        return result

    async def reprioritise(self, focused: int | None) -> int:
        changed = await self.store.reprioritise(focused)
        if changed:
            log.info("re-prioritised %d queued jobs for focus on session %s", changed, focused)
            self.notify()
        return changed

    async def set_priority(self, job_id: int, priority: Priority) -> Job | None:
        job = await self.store.set_priority(job_id, priority)
        self.notify()
        return job

    async def run_now(self, job_id: int) -> Job | None:
        """Skip the wait before a scheduled retry."""
        job = await self.store.run_now(job_id)
        if job:
            log.info("job %d runs now (session %d)", job.id, job.session_id)
            self.notify()
        return job

    # ---------------------------------------------------------------- worker side
    async def claim(
        self, exclude_providers: Sequence[str] = (), only_session: int | None = None, continuing: Collection[str] = ()
    ) -> tuple[Job, Session] | None:
        """Claim the best runnable job. Each claim gets a token of its own (this process's
        owner id + a sequence number) in `lease_owner`: every heartbeat and the final write
        must present it, so a stale run can never write, even one in this same process."""
        token = f"{self.owner}#{next(self._claims)}"
        claimed = await self.store.claim(token, self.lease, exclude_providers, only_session, continuing)
        if claimed:
            job = claimed[0]
            log.info(
                "job %d claimed for session %d (attempt %d/%d, %s)",
                job.id,
                job.session_id,
                job.attempts,
                job.max_attempts,
                job.priority.name,
            )
        return claimed

    async def heartbeat_many(self, items: Sequence[tuple[Job, str]]) -> set[int]:
        """Store each (job, new text) and extend their leases, in one write; returns the ids
        of the jobs whose lease is lost (their text is not written)."""
        return (await self.stream_writes(items))[0]

    async def stream_writes(self, items: Sequence[tuple[Job, str | StreamWrite]]) -> tuple[set[int], list[Session]]:
        """One beat of every running reply: each (job, its new text or StreamWrite) stored and
        the leases extended, in one write. Returns the jobs whose lease is lost (nothing of
        theirs written) and the sessions whose mark changed (thinking ↔ streaming)."""
        return await self.store.append_many(self.lease, [(j.id, j.lease_owner or "", w) for j, w in items])

    async def complete(
        self,
        job: Job,
        text: str,
        *,
        unread: bool,
        usage: tuple[int | None, ...],
        finish_reason: str | None,
        parts: Sequence[ChatPart] | None = None,
        notice: str | None = None,
    ) -> Finished:
        """`notice`: what the reply says of itself though it succeeded (stored as its error)."""
        done = await self.store.finish(
            job.id,
            job.lease_owner or "",
            "succeeded",
            text,
            error=notice,
            unread=unread,
            usage=usage,
            finish_reason=finish_reason,
            parts=parts,
        )
        log.info("job %d succeeded (session %d, finish %s)", job.id, job.session_id, finish_reason)
        self.notify()
        return done

    async def fail(
        self,
        job: Job,
        text: str,
        error: str,
        *,
        retryable: bool,
        unread: bool,
        retry_after: float | None = None,
        parts: Sequence[ChatPart] | None = None,
    ) -> Finished:
        """Retry with backoff while attempts remain and the error is transient, else fail for good."""
        if retryable and job.attempts < job.max_attempts:
            delay = backoff(job.attempts, retry_after, self.backoff_base, self.backoff_cap)
            when = f"{delay:.0f}s" if delay >= 1 else "under a second"
            if retry_after is not None and retry_after > delay:  # capped: say so, do not hide it
                error = f"{error}; the server asked to wait {retry_after:.0f}s, longer than chatplex waits"
            message = f"{error}; retrying in {when} (attempt {job.attempts + 1}/{job.max_attempts})"
            done = await self.store.finish(
                job.id, job.lease_owner or "", "retry", text, error=message, run_after=time.time() + delay, parts=parts
            )
            log.warning("job %d retry in %.2fs (session %d): %s", job.id, delay, job.session_id, error)
        else:
            done = await self.store.finish(
                job.id, job.lease_owner or "", "failed", text, error=error, unread=unread, parts=parts
            )
            log.error(
                "job %d failed (session %d, attempt %d/%d): %s",
                job.id,
                job.session_id,
                job.attempts,
                job.max_attempts,
                error,
            )
        self.notify()
        return done

    async def give_back(self, job: Job, text: str, reason: str, parts: Sequence[ChatPart] | None = None) -> Finished:
        """Preempted or shutting down: back to the queue, partial kept, attempt not spent."""
        done = await self.store.finish(job.id, job.lease_owner or "", "requeue", text, error=reason, parts=parts)
        log.info("job %d requeued (session %d): %s", job.id, job.session_id, reason)
        self.notify()
        return done

    async def cancelled(self, job: Job, text: str, parts: Sequence[ChatPart] | None = None) -> Finished:
        done = await self.store.finish(job.id, job.lease_owner or "", "cancelled", text, error="cancelled", parts=parts)
        log.info("job %d cancelled while running (session %d)", job.id, job.session_id)
        self.notify()
        return done

    # ---------------------------------------------------------------- maintenance
    async def recover(self, live: Collection[str] = ()) -> list[Finished]:
        """Requeue jobs of crashed or stuck processes. `live` holds the claim tokens this
        process is running now: never recovered, whatever their lease says."""
        recovered = await self.store.recover(lambda job: self._abandoned(job, live))
        for job, _, _ in recovered:
            self._suspects.pop(job.id, None)
            log.warning("job %d recovered from a stopped process (session %d) -> %s", job.id, job.session_id, job.state)
        if recovered:
            self.notify()
        return recovered

    def _abandoned(self, job: Job, live: Collection[str]) -> bool:
        """A dead local owner is abandoned at once. Otherwise the lease must be seen expired
        and unrenewed for a whole lease, timed by this process's monotonic clock: a jump of
        the wall clock (laptop resume, NTP step) makes every lease look expired at once, while
        the owner, if alive, renews within a third of a lease of real time."""
        token = job.lease_owner or ""
        if token in live:
            return False
        owner = token.partition("#")[0]
        if owner and owner != self.owner and owner_is_dead(owner):
            return True
        if job.lease_expires_at is not None and job.lease_expires_at >= time.time():
            self._suspects.pop(job.id, None)
            return False
        seen = (token, job.lease_expires_at)
        first = self._suspects.get(job.id)
        if first is None or first[0] != seen:
            self._suspects[job.id] = (seen, time.monotonic())
            return False
        return time.monotonic() - first[1] >= self.lease

    async def prune(self, older_than: float) -> int:
        n = await self.store.prune(older_than)
        log.info("pruned %d finished jobs older than %.0fs", n, older_than)
        return n

    # ---------------------------------------------------------------- reads
    async def get(self, job_id: int) -> Job | None:
        return await self.store.get_job(job_id)

    async def jobs(self, state: JobState | None = None, limit: int = 500) -> list[Job]:
        return await self.store.jobs(state, limit)

    async def active(self, session_id: int) -> list[Job]:
        """The session's queued, running and held jobs, oldest first."""
        states = (JobState.QUEUED, JobState.RUNNING, JobState.HELD)
        jobs = [j for s in states for j in await self.store.jobs(s, 10_000)]
        return sorted((j for j in jobs if j.session_id == session_id), key=lambda j: j.id)

    async def stats(self, finished: bool = False) -> QueueStats:
        """Counts by state and priority (queued and running only, unless `finished`)."""
        return await self.store.stats(finished)

    async def runnable_high(self) -> list[tuple[int, int, str]]:
        """(job, session, provider) of HIGH jobs that could run now: preemption candidates."""
        return await self.store.runnable_high()

    async def next_run_after(self, after: float | None = None) -> float | None:
        """When the earliest delayed job becomes runnable (an idle worker sleeps till then);
        `after`: when the claim that found nothing looked (see Store.next_run_after)."""
        return await self.store.next_run_after(after)
