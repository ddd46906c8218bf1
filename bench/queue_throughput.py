"""Durable queue throughput: enqueue -> claim -> complete, jobs/s, with 1 and 4 workers.

    python bench/queue_throughput.py [--jobs 2000]

Each job is a real turn (user message + reply + job row) on a database file in a temp dir;
each worker claims with a lease and completes with the reply text, as the coordinator does.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from chatplex.core.models import Priority
from chatplex.core.queue import JobQueue
from chatplex.core.store import Store


async def run(jobs: int, workers: int, folder: Path) -> tuple[float, float]:
    store = await Store.open(folder / f"q{workers}.db")
    q = JobQueue(store)
    sessions = [(await store.create_session(f"s{i}", "p", "m")).id for i in range(jobs)]
    t0 = time.perf_counter()
    for sid in sessions:
        await q.enqueue(sid, "hello", Priority.LOW)
    t1 = time.perf_counter()

    async def worker() -> None:
        while (claimed := await q.claim()) is not None:
            await q.complete(claimed[0], "reply", unread=False, usage=(1, 1), finish_reason="stop")

    await asyncio.gather(*(worker() for _ in range(workers)))
    t2 = time.perf_counter()
    await store.close()
    return jobs / (t2 - t0), jobs / (t2 - t1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", type=int, default=2000)
    args = ap.parse_args()
    import logging

    logging.getLogger("chatplex").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 4):
            total, process = asyncio.run(run(args.jobs, workers, Path(tmp)))
            print(f"queue {workers} worker(s): {total:,.0f} jobs/s enqueue+claim+complete "
                  f"({process:,.0f} jobs/s claim+complete), {args.jobs} jobs")


if __name__ == "__main__":
    main()
