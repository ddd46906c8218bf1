"""`Store`: the async facade every caller uses (coordinator, queue, cli, admin, tests).

Each method is one transaction (`Database.write`) or one read (`Database.read`) of a
function from the modules that own the SQL: sessions.py, jobs.py, scheduling.py, recovery.py,
maintenance.py. Where a write runs (on the loop or in the writer thread) is decided here,
from what the write carries: see connection.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from chatplex.core.db import connection, jobs, maintenance, recovery, scheduling, sessions, steps, usage
from chatplex.core.db.connection import BIG_TEXT, Database
from chatplex.core.db.errors import LeaseLost, StoreError
from chatplex.core.db.parts import StreamWrite
from chatplex.core.db.steps import Approval, Settled
from chatplex.core.models import Job, JobState, Message, Priority, QueueStats, Session
from chatplex.providers.base import ChatPart, ToolCallPart, ToolResultPart

Finished = tuple[Job, Message, Session]


class Store(Database):
    """The database of sessions, messages and jobs. ``async with await Store.open(path) as
    store:`` closes it on the way out; ``await Store.open(path)`` + ``close()`` also works."""

    # ------------------------------------------------------------ file health
    async def integrity_check(self) -> list[str]:
        return await self.read(maintenance.integrity_check)

    async def schema_version(self) -> int:
        return await self.read(maintenance.schema_version)

    # ------------------------------------------------------------ sessions
    async def create_session(self, title: str, provider: str, model: str, system_prompt: str = "") -> Session:
        return await self.write(sessions.create_session, title, provider, model, system_prompt)

    async def fork_session(self, sid: int, at: int | None, title: str, keep_at: bool = True) -> Session:
        """A copy of `sid` up to message `at` (all if None) as a new session (KeyError: none)."""
        return await self.write(sessions.fork_session, sid, at, title, keep_at, off_loop=True)

    async def update_session(self, sid: int, **fields: Any) -> Session | None:
        if not fields or not set(fields) <= sessions.UPDATABLE:
            raise ValueError(f"cannot update {sorted(set(fields) - sessions.UPDATABLE)}")
        return await self.write(sessions.update_session, sid, fields)

    async def delete_session(self, sid: int) -> list[int]:
        """Delete a session with its messages and jobs; returns the ids of its running jobs."""
        return await self.write(sessions.delete_session, sid, off_loop=True)  # cascades over all its messages

    async def get_session(self, sid: int) -> Session | None:
        return await self.read(sessions.get_session, sid)

    async def list_sessions(self, archived: bool = False) -> list[Session]:
        return await self.read(sessions.list_sessions, archived)

    async def find_session(self, ref: str) -> list[Session]:
        """Every session a command-line reference names, most recent first: the caller
        refuses more than one (two sessions with one title) instead of picking one.

        Only ASCII digits make an id, and an id is never read as a title: ids are never
        reused, so a script's saved id must not reach a session merely titled "3" once its
        own is gone (`title:3` names that one). str.isdigit() also takes '²' and '١' (int()
        reads 1: `rm ١` deleted session 1). Anything else is a title, `title:` prefix removed,
        as typed or with its whitespace collapsed the way the app stores titles."""
        if ref.isascii() and ref.isdigit():
            found = await self.get_session(int(ref)) if int(ref) < 2**63 else None
            return [found] if found else []
        title = ref.removeprefix("title:")
        return await self.find_sessions_by_title(title, " ".join(title.split()))

    async def find_sessions_by_title(self, *titles: str) -> list[Session]:
        """Sessions with any of these exact titles, most recent first."""
        return await self.read(sessions.find_sessions_by_title, titles)

    async def search(self, text: str, limit: int = 50) -> list[Session]:
        return await self.read(sessions.search, text, limit)

    async def sizes(self, sid: int) -> list[tuple[int, str, int, int | None]]:
        """What a request of the session would send, in characters (core/db/usage.py)."""
        return await self.read(usage.sizes, sid)

    async def spent(self, sid: int) -> tuple[list[usage.Spent], int | None]:
        """The session's tokens per model, and its newest reply's (core/db/usage.py)."""
        return await self.read(usage.spent, sid)

    async def import_session(self, session: dict[str, Any], messages: list[dict[str, Any]]) -> Session:
        """One transaction: the session and all its messages, or nothing."""
        return await self.write(sessions.import_session, session, messages, off_loop=True)

    # ------------------------------------------------------------ messages
    async def get_message(self, mid: int) -> Message | None:
        return await self.read(sessions.get_message, mid)

    async def messages(self, sid: int, limit: int | None = None, before_id: int | None = None) -> list[Message]:
        """Messages of a session in order; with `limit`, the newest ones (before `before_id`)."""
        return await self.read(sessions.messages, sid, limit, before_id)

    async def context(self, sid: int, message_id: int) -> tuple[list[Message], Message | None]:
        """What a run needs in one read: the history before the reply, and the reply as it is
        (its parts so far kept by `claim` for a provider that continues), with their parts."""
        return await self.read(sessions.context, sid, message_id)

    # ------------------------------------------------------------ jobs: enqueue
    async def create_turn(
        self, sid: int, text: str, priority: Priority, max_attempts: int
    ) -> tuple[Message, Message, Job, Session]:
        """The user message, its empty assistant reply and the job, in one transaction."""
        return await self.write(jobs.create_turn, sid, text, priority, max_attempts, off_loop=len(text) > BIG_TEXT)

    async def requeue_reply(self, mid: int, priority: Priority, max_attempts: int) -> Finished:
        """A fresh job for an assistant message (the user asked to retry it)."""
        return await self.write(jobs.requeue_reply, mid, priority, max_attempts)

    # ------------------------------------------------------------ jobs: the worker's side
    async def claim(
        self,
        owner: str,
        lease: float,
        exclude_providers: Sequence[str] = (),
        only_session: int | None = None,
        continuing: Collection[str] = (),
    ) -> tuple[Job, Session] | None:
        """Take the best runnable job: HIGH before LOW, then oldest, one job per session at a time
        (only `only_session`'s, if given). A partial reply is kept (less trailing whitespace,
        which Anthropic refuses at the end of a prefill) when the session's provider is one of
        `continuing`, else cleared for a fresh start."""
        return await self.write(jobs.claim, owner, lease, exclude_providers, only_session, continuing)

    async def runnable_high(self) -> list[tuple[int, int, str]]:
        """(job, session, provider) of HIGH jobs that could run now: preemption candidates."""
        return await self.read(scheduling.runnable_high)

    async def next_run_after(self, after: float | None = None) -> float | None:
        """When the earliest delayed job becomes runnable (an idle worker sleeps till then);
        `after`: the moment the claim that found nothing looked."""
        return await self.read(scheduling.next_run_after, after)

    async def append(self, job_id: int, token: str, text: str, lease: float) -> None:
        """Write streamed text and extend the lease; raises LeaseLost if the claim is not live."""
        if job_id in (await self.append_many(lease, [(job_id, token, text)]))[0]:
            raise LeaseLost(job_id)

    async def append_many(
        self, lease: float, items: Sequence[tuple[int, str, str | StreamWrite]]
    ) -> tuple[set[int], list[Session]]:
        """`append` for several running jobs (id, claim token, new text or a StreamWrite of
        text, parts and mark) in one transaction. Returns the jobs whose claim is not live any
        more (cancelled, or taken over after a lease expired; their writes are dropped), and
        the sessions whose mark changed."""
        # off the loop: ten times a second for all streams together, the hop costs nothing,
        # and the SQLite work runs beside the UI instead of in its way (B5)
        return await self.write(jobs.append_many, lease, items, off_loop=True)

    async def finish(
        self,
        job_id: int,
        token: str,
        outcome: str,
        text: str,
        *,
        error: str | None = None,
        run_after: float = 0.0,
        unread: bool = False,
        usage: tuple[int | None, ...] = (None, None),
        finish_reason: str | None = None,
        parts: Sequence[ChatPart] | None = None,
    ) -> Finished:
        """End a run in one transaction; `text` is the reply's *whole* text, which replaces what
        the periodic writes stored, so a reply is never complete with a hole in it even if
        one of those writes failed. Only the claim `token` may end it. Outcomes:
        succeeded · failed · cancelled · retry (queued at run_after, attempt spent) ·
        requeue (preempted or shut down: queued, attempt given back). `parts`, when given, are
        the reply's whole parts (`text` is their text); else `text` is its one part."""
        args = (job_id, token, outcome, text, error, run_after, unread, usage, finish_reason, parts)
        return await self.write(jobs.finish, *args, off_loop=len(text) > BIG_TEXT)

    async def recover(self, stale: Callable[[Job], bool]) -> list[Finished]:
        """Give back running jobs that `stale(job)` judges abandoned (the queue decides: a dead
        local owner, or a lease seen unrenewed for a whole lease). Their partial replies are
        kept, marked interrupted.

        A process killed from outside is not the reply's fault: the attempt is given back.
        Only a job that keeps being running when its process dies with *nothing* progressing
        (no text of its own stored since it was claimed, no other job finished since then)
        counts towards POISON_CRASHES; at that many in a row it fails, so a reply that crashes
        chatplex itself cannot crash it forever. Provider errors count apart, in attempts."""
        return await self.write(recovery.recover, stale)

    # ------------------------------------------------------------ agent steps (steps.py)
    async def open_round(
        self,
        job_id: int,
        token: str,
        text: str,
        parts: Sequence[ChatPart],
        *,
        usage: tuple[int | None, ...],
        finish_reason: str | None,
        unread: bool,
        calls: Sequence[tuple[ToolCallPart, str, str]],
        priority: Priority,
        max_rounds: int,
        notice: str | None = None,
    ) -> Settled:
        """A model step that asked for tools: settled, with its round of tool steps."""
        args = (job_id, token, text, parts, usage, finish_reason, unread, calls, priority, max_rounds, notice)
        return await self.write(steps.open_round, *args, off_loop=len(text) > BIG_TEXT)

    async def call_of(self, job: Job) -> ToolCallPart | None:
        return await self.read(steps.call_of, job)

    async def finish_call(
        self, job_id: int, token: str, result: ToolResultPart, *, priority: Priority, max_rounds: int, unread: bool
    ) -> Settled:
        return await self.write(
            steps.finish_call,
            job_id,
            token,
            result,
            priority,
            max_rounds,
            unread,
            off_loop=len(result.content) > BIG_TEXT,
        )

    async def give_back_call(self, job_id: int, token: str) -> Settled:
        return await self.write(steps.give_back_call, job_id, token)

    async def approvals(self, session_id: int | None = None) -> list[Approval]:
        return await self.read(steps.approvals, session_id)

    async def approve(self, job_id: int, always: bool, priority: Priority) -> Settled | None:
        return await self.write(steps.approve, job_id, always, priority)

    async def forget_always(self, tool: str, session_id: int | None = None) -> list[Session]:
        return await self.write(steps.forget_always, tool, session_id)

    async def deny(self, job_id: int, reason: str, priority: Priority, max_rounds: int) -> Settled | None:
        return await self.write(steps.deny, job_id, reason, priority, max_rounds)

    # ------------------------------------------------------------ jobs: the user's side
    async def cancel(self, job_id: int) -> Finished | None:
        """Cancel a queued or running job. A running job's worker notices at its next write."""
        return await self.write(scheduling.cancel, job_id)

    async def reprioritise(self, focused: int | None) -> int:
        """The focused session's jobs become HIGH, every other unfinished job LOW. Running jobs
        too: one paused by preemption goes back to the queue with the rank it has now."""
        return await self.write(scheduling.reprioritise, focused)

    async def set_priority(self, job_id: int, priority: Priority) -> Job | None:
        return await self.write(scheduling.set_priority, job_id, priority)

    async def run_now(self, job_id: int) -> Job | None:
        """A queued job waiting for its retry time becomes runnable now."""
        return await self.write(scheduling.run_now, job_id)

    async def get_job(self, job_id: int) -> Job | None:
        return await self.read(jobs.get_job, job_id)

    async def jobs(self, state: JobState | None = None, limit: int = 500) -> list[Job]:
        return await self.read(scheduling.jobs, state, limit)

    async def stats(self, finished: bool = False) -> QueueStats:
        """Counts by state and priority; queued/running only (an index range) unless `finished`."""
        return await self.read(scheduling.stats, finished)

    # ------------------------------------------------------------ maintenance
    async def prune(self, older_than: float) -> int:
        """Delete finished jobs that ended more than `older_than` seconds ago; messages stay."""
        return await self.write(maintenance.prune_jobs, older_than, off_loop=True)

    async def prune_sessions(self, older_than: float) -> int:
        """Delete sessions (with their messages) untouched for `older_than` seconds and with
        no unfinished job."""
        return await self.write(maintenance.prune_sessions, older_than, off_loop=True)

    async def vacuum(self) -> tuple[int, int]:
        """VACUUM (outside a transaction); returns the file size before and after."""
        before = self.path.stat().st_size
        await self.alone(maintenance.vacuum, connection.BUSY_TIMEOUT_MS)
        return before, self.path.stat().st_size

    async def backup(self, target: Path) -> None:
        """SQLite's online backup API: a consistent copy while other processes keep writing."""
        tmp = target.with_name(target.name + ".partial")
        try:
            await self.read(maintenance.backup, tmp)
            tmp.replace(target)  # never a half-written file under the target name
        except (OSError, sqlite3.Error) as e:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"backup to {target} failed: {e}") from e
