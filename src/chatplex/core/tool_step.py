"""One tool step of an agent turn, run by a worker; and the events of an agent step's write.

Apart from worker.py, whose loop claims the step: a tool step streams nothing, is never
preempted and never stopped for a stall (a call may take its server's `timeout`), and when
it is cut (a shutdown, or the user's cancel) its outcome is unknown, so it waits for the
user again instead of running a second time.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from chatplex.core.agent import run_call
from chatplex.core.db import LeaseLost
from chatplex.core.db.steps import Settled
from chatplex.core.events import EventBus, JobChanged, MessageAdded, Notification, ReplyFinished, SessionChanged
from chatplex.core.models import JobState, MessageState, Priority, SessionStatus

if TYPE_CHECKING:
    from chatplex.core.running import Running
    from chatplex.core.worker import Workers

log = logging.getLogger("chatplex.worker")


async def run_tool_step(w: Workers, rj: Running) -> None:
    """Run `rj`'s tool call and store its result (the round's last one queues the next
    model step); cut, hold it again, outcome unknown; cancelled by the user, end the turn."""
    job, session = rj.job, rj.session
    result: Settled | None = None
    try:
        call = await w.store.call_of(job)
        w.bus.publish(JobChanged(job))
        w.bus.publish(SessionChanged(session))
        w.changed()
        if w.stopping:
            rj.interrupt("shutdown")
        if rj.reason is None:
            rj.task = asyncio.create_task(run_call(w.tools(), call, session.servers))
            await asyncio.wait({rj.task})
        if rj.task is not None and not rj.task.cancelled() and rj.task.exception() is None:
            focused = session.id == w.focused
            result = await w.store.finish_call(
                job.id,
                rj.token,
                rj.task.result(),
                priority=Priority.HIGH if focused else Priority.LOW,
                max_rounds=w.config.max_tool_rounds,
                unread=not focused,
            )
        elif rj.cancel_requested:  # the user stopped it: no result, and the turn ends here
            cancelled = await w.queue.cancel(job.id)
            if cancelled:
                w.publish_finished(*cancelled)
        elif rj.reason != "lease_lost":
            if rj.task is not None and not rj.task.cancelled():
                log.error("job %d: the tool call failed", job.id, exc_info=rj.task.exception())
            result = await w.store.give_back_call(job.id, rj.token)
    except LeaseLost:
        log.warning("job %d: lease lost (cancelled elsewhere or taken over); its result is not written", job.id)
    finally:
        w.forget(rj)
        if rj.task and not rj.task.done():
            rj.task.cancel()
    if result is not None:
        w.publish_settled(result)
    w.queue.notify()
    w.changed()


def publish_settled(bus: EventBus, settled: Settled) -> None:
    """The events of one agent step's write: jobs changed, messages finished or begun, the
    session's mark; a toast when a call begins to wait for the user."""
    for job in settled.jobs:
        bus.publish(JobChanged(job))
    for message in settled.messages:
        bus.publish(MessageAdded(message) if message.state is MessageState.STREAMING else ReplyFinished(message))
    session = settled.session
    bus.publish(SessionChanged(session))
    if session.status is SessionStatus.NEEDS_APPROVAL and any(j.state is JobState.HELD for j in settled.jobs):
        bus.publish(Notification(session.id, session.title, "a tool call needs your approval", "warning"))
