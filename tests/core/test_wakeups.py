"""Idle workers never sleep through a job that becomes runnable while they look.

A loaded machine stretches the moment between a claim that found nothing and the look for
the next delayed job: a retry falling due in that moment was left out of both (not due for
the claim, "already due, so blocked" for the look), and every worker slept until some other
job woke them. CI caught it as a 20 s stall of a retry due in 30 ms."""

from __future__ import annotations

import asyncio

from chatplex.core.models import MessageState
from chatplex.core.queue import JobQueue
from tests.core.test_coordinator import finished
from tests.fakeserver import Fault
from tests.helpers import make_config, provider_for


async def test_a_retry_falling_due_while_idle_workers_look_for_the_next_one_still_runs(
    fake, tmp_path, coordinators, monkeypatch
):
    s = fake.scenario(reply="second time lucky", faults=[Fault(status=500)])
    looked = asyncio.Event()
    look = JobQueue.next_run_after

    async def slow_look(self, *args, **kwargs):
        # the loaded machine, made certain: the look starts after the retry (0.05 s) fell due
        await asyncio.sleep(0.2)
        looked.set()
        return await look(self, *args, **kwargs)

    monkeypatch.setattr(JobQueue, "next_run_after", slow_look)
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s), workers=1))
    session = await coord.create_session()
    _, reply, _ = await coord.send(session.id, "hello")
    done = await rec.wait(finished(reply.id, MessageState.COMPLETE), timeout=60)
    assert done.message.content == "second time lucky" and looked.is_set()
