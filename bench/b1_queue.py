"""B1 — durable queue throughput: enqueue -> claim -> complete, jobs/s, 1 and 4 workers,
against huey's SqliteHuey doing enqueue + dequeue of the same number of tasks on the same
disk, in the same run.

    python bench/b1_queue.py [--jobs 2000]

Each chatplex job is a real turn (user message + reply row + job row, session status
kept): enqueue, claim with a lease, complete with the reply text, as the coordinator does.
Needs `pip install -e '.[bench]'` for the huey baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path

from common import line  # noqa: E402  (bench/common.py; sets sys.path)

from chatplex.core.db import Store
from chatplex.core.models import Priority
from chatplex.core.queue import JobQueue

TARGET = 2000.0


async def chatplex_rate(jobs: int, workers: int, folder: Path) -> float:
    store = await Store.open(folder / f"chatplex-{workers}.db")
    q = JobQueue(store)
    sessions = [(await store.create_session(f"s{i}", "p", "m")).id for i in range(jobs)]
    t0 = time.perf_counter()
    for sid in sessions:
        await q.enqueue(sid, "hello", Priority.LOW)

    async def worker() -> None:
        while (claimed := await q.claim()) is not None:
            await q.complete(claimed[0], "reply", unread=False, usage=(1, 1), finish_reason="stop")

    await asyncio.gather(*(worker() for _ in range(workers)))
    elapsed = time.perf_counter() - t0
    await store.close()
    return jobs / elapsed


def huey_rate(jobs: int, folder: Path) -> float:
    from huey import SqliteHuey

    huey = SqliteHuey(filename=str(folder / "huey.db"))

    @huey.task()
    def work(n: int) -> int:
        return n

    t0 = time.perf_counter()
    for i in range(jobs):
        work(i)
    done = 0
    while huey.dequeue() is not None:
        done += 1
    elapsed = time.perf_counter() - t0
    assert done == jobs
    return jobs / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=2000)
    args = ap.parse_args()
    logging.getLogger("chatplex").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(dir=".") as tmp:  # the same disk for both
        folder = Path(tmp)
        base = huey_rate(args.jobs, folder)
        for workers in (1, 4):
            rate = asyncio.run(chatplex_rate(args.jobs, workers, folder))
            print(
                line(
                    f"B1 queue, {workers} worker(s)",
                    rate,
                    base,
                    ">= 2,000 and >= 1.0x huey",
                    rate >= TARGET and rate >= base,
                    "job/s",
                    ",.0f",
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
