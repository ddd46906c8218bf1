"""The coordinator's life cycle as a context manager, and the facade's job operations."""

from __future__ import annotations

import time

from chatplex.core.coordinator import Coordinator
from chatplex.core.events import ReplyDelta, ReplyFinished
from chatplex.core.models import JobState, MessageState
from tests.fakeserver import Fault
from tests.helpers import Recorder, make_config, provider_for


async def test_async_with_runs_the_workers_and_leaving_keeps_the_partial_reply(fake, tmp_path):
    s = fake.scenario(reply=" ".join(f"w{i}" for i in range(400)), token_delay=0.02)
    config = make_config(tmp_path, provider_for(s))
    async with await Coordinator.open(config, start=True) as coord:
        rec = Recorder(coord.bus)
        session = await coord.create_session()
        await coord.focus(session.id)
        _, reply, job = await coord.send(session.id, "go")
        await rec.wait(lambda e: isinstance(e, ReplyDelta) and e.message_id == reply.id)
        assert not coord.stopping and coord.workers_busy == 1
    assert coord.stopping and coord.workers_busy == 0
    await coord.stop()  # a second stop (the UI's quit, then its unmount) does nothing
    async with await Coordinator.open(config) as again:  # not started: reads only
        kept = next(m for m in await again.messages(session.id) if m.id == reply.id)
        assert kept.state is MessageState.INTERRUPTED and kept.content.startswith("w0")
        assert (await again.job(job.id)).state is JobState.QUEUED  # resumes at the next start
        assert again.workers_busy == 0 and not again.running()


async def test_run_now_skips_a_scheduled_retry(fake, tmp_path, coordinators):
    """A 429 asking for five minutes: `run_now` runs the job at once, through the queue's
    wake-up (no worker polls for it)."""
    s = fake.scenario(reply="after all", faults=[Fault(status=429, headers={"retry-after": "300"})])
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s)), workers=1)
    session = await coord.create_session()
    _, reply, job = await coord.send(session.id, "go")
    await rec.wait(lambda e: isinstance(e, ReplyFinished) and "retrying in" in (e.message.error or ""))
    scheduled = await coord.job(job.id)
    assert scheduled.state is JobState.QUEUED and scheduled.run_after > time.time() + 200
    assert (await coord.run_now(job.id)) is not None
    done = await rec.wait(lambda e: isinstance(e, ReplyFinished) and e.message.state is MessageState.COMPLETE)
    assert done.message.content == "after all"
