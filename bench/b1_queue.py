"""B1 — durable queue throughput, like for like: enqueue -> claim with a lease -> complete with
a result row, jobs/s, all on the same disk in the same run.

    python bench/b1_queue.py [--jobs 2000]

- floor: the same three transactions per job done by plain `sqlite3` in one thread, with
  chatplex's durability settings (WAL, synchronous=NORMAL, a checkpoint every
  CHECKPOINT_EVERY commits): what the work costs with no framework at all.
- huey: SqliteHuey enqueue + dequeue + put_result, as shipped (synchronous=OFF: it never
  fsyncs) and with chatplex's synchronous=NORMAL.
- chatplex: each job a real turn (user message + reply row + job row, session status kept),
  claimed with a lease and completed with the reply text, as the coordinator does; 1 and 4
  workers, and 1 worker with every write in the writer thread (no inline writes: what
  chatplex would do without core/db/adapter.py's private aiosqlite access).

Target: chatplex within 2x of the floor. Needs `pip install -e '.[bench]'` for huey.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from common import line  # noqa: E402  (bench/common.py; sets sys.path)

from chatplex.core.db import Store
from chatplex.core.db.connection import CHECKPOINT_EVERY, WRITER_PRAGMAS
from chatplex.core.models import Priority
from chatplex.core.queue import JobQueue

FLOOR_SCHEMA = (
    "CREATE TABLE jobs(id INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT NOT NULL, priority INTEGER NOT NULL,"
    " state TEXT NOT NULL, run_after REAL NOT NULL, lease_owner TEXT, lease_expires_at REAL,"
    " attempts INTEGER NOT NULL DEFAULT 0, finished_at REAL)",
    "CREATE INDEX jobs_claim ON jobs(state, priority, run_after, id)",
    "CREATE TABLE results(job_id INTEGER PRIMARY KEY, value TEXT NOT NULL)",
)


def floor_rate(jobs: int, path: Path, synchronous: str = "NORMAL") -> float:
    """Three transactions per job, BEGIN IMMEDIATE each, like chatplex's."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    for pragma in WRITER_PRAGMAS:
        db.execute(f"PRAGMA {pragma}")
    db.execute(f"PRAGMA synchronous={synchronous}")
    for sql in FLOOR_SCHEMA:
        db.execute(sql)
    commits = 0

    def tx(sql: str, params: dict) -> sqlite3.Row | None:
        nonlocal commits
        db.execute("BEGIN IMMEDIATE")
        row = db.execute(sql, params).fetchone()
        if sql.startswith("UPDATE jobs SET state=:done"):
            db.execute("INSERT INTO results(job_id, value) VALUES (:job, :value)", params)
        db.execute("COMMIT")
        commits += 1
        if commits % CHECKPOINT_EVERY == 0:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        return row

    t0 = time.perf_counter()
    for i in range(jobs):
        tx(
            "INSERT INTO jobs(payload, priority, state, run_after) VALUES (:payload, :low, :queued, :now)",
            {"payload": f"hello {i}", "low": Priority.LOW.value, "queued": "queued", "now": time.time()},
        )
    done = 0
    while True:
        now = time.time()
        row = tx(
            "UPDATE jobs SET state=:running, lease_owner=:owner, lease_expires_at=:expires, attempts=attempts+1"
            " WHERE id=(SELECT id FROM jobs WHERE state=:queued AND run_after<=:now"
            " ORDER BY priority, run_after, id LIMIT 1) RETURNING id",
            {"running": "running", "owner": "me", "expires": now + 30, "queued": "queued", "now": now},
        )
        if row is None:
            break
        tx(
            "UPDATE jobs SET state=:done, lease_owner=NULL, lease_expires_at=NULL, finished_at=:now"
            " WHERE id=:job AND lease_owner=:owner",
            {"done": "succeeded", "now": time.time(), "job": row[0], "owner": "me", "value": "reply"},
        )
        done += 1
    elapsed = time.perf_counter() - t0
    db.close()
    assert done == jobs
    return jobs / elapsed


def rows_floor_rate(jobs: int, path: Path) -> float:
    """The rows chatplex writes for a turn, on chatplex's schema (its migrations), with the
    fewest statements plain `sqlite3` needs, in one thread: enqueue = user message + its text
    part + empty reply + job + the reply's job id + the session's mark; claim = the job leased
    + the reply streaming + the mark; complete = the job done + the reply's text + its part +
    the mark and preview. What chatplex's own layers (asyncio, dataclasses, its status rules)
    cost is the gap between this and chatplex; what the data model costs, the gap between
    this and the plain floor."""
    from chatplex.core.db.schema import migrate

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    for pragma in WRITER_PRAGMAS:
        db.execute(f"PRAGMA {pragma}")
    migrate(db)
    db.execute("PRAGMA foreign_keys=ON")
    now = time.time()
    db.execute("BEGIN IMMEDIATE")
    db.executemany(
        "INSERT INTO sessions(title, provider, model, created_at, updated_at) VALUES (:t, 'p', 'm', :now, :now)",
        ({"t": f"s{i}", "now": now} for i in range(jobs)),
    )
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    sessions = [r[0] for r in db.execute("SELECT id FROM sessions ORDER BY id")]
    commits = 0

    def tx(statements: list[tuple[str, dict]]) -> sqlite3.Row | None:
        nonlocal commits
        db.execute("BEGIN IMMEDIATE")
        first = None
        for n, (sql, params) in enumerate(statements):
            cur = db.execute(sql, params)
            if n == 0:
                first = cur.fetchone()
                if first is None:
                    break
        db.execute("COMMIT")
        commits += 1
        if commits % CHECKPOINT_EVERY == 0:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        return first

    msg = (
        "INSERT INTO messages(session_id, role, content, state, created_at, updated_at)"
        " VALUES (:sid, :role, :content, :state, :now, :now)"
    )
    part = "INSERT INTO parts(message_id, seq, kind, text, state) VALUES (:mid, 0, 'text', :text, 'complete')"
    t0 = time.perf_counter()
    for sid in sessions:
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        user = db.execute(msg, {"sid": sid, "role": "user", "content": "hello", "state": "complete", "now": now})
        db.execute(part, {"mid": user.lastrowid, "text": "hello"})
        reply = db.execute(msg, {"sid": sid, "role": "assistant", "content": "", "state": "streaming", "now": now})
        job = db.execute(
            "INSERT INTO jobs(session_id, message_id, priority, state, max_attempts, run_after, created_at,"
            " updated_at) VALUES (:sid, :mid, :low, 'queued', 5, :now, :now, :now)",
            {"sid": sid, "mid": reply.lastrowid, "low": Priority.LOW.value, "now": now},
        )
        db.execute("UPDATE messages SET job_id=:job WHERE id=:mid", {"job": job.lastrowid, "mid": reply.lastrowid})
        db.execute("UPDATE sessions SET status='queued', updated_at=:now WHERE id=:sid", {"sid": sid, "now": now})
        db.execute("COMMIT")
        commits += 1
        if commits % CHECKPOINT_EVERY == 0:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    done = 0
    while True:
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        row = db.execute(
            "UPDATE jobs SET state='running', lease_owner='me', lease_expires_at=:expires,"
            " attempts=attempts+1, started_at=:now, updated_at=:now WHERE id=(SELECT id FROM jobs"
            " WHERE state='queued' AND run_after<=:now ORDER BY priority, run_after, id LIMIT 1)"
            " RETURNING id, message_id, session_id",
            {"expires": now + 30, "now": now},
        ).fetchone()
        if row is None:
            db.execute("COMMIT")
            break
        job, mid, sid = row
        db.execute(
            "UPDATE messages SET state='streaming', job_id=:job, updated_at=:now WHERE id=:mid",
            {"job": job, "now": now, "mid": mid},
        )
        db.execute("UPDATE sessions SET status='streaming', updated_at=:now WHERE id=:sid", {"sid": sid, "now": now})
        db.execute("COMMIT")
        commits += 1
        if commits % CHECKPOINT_EVERY == 0:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        now = time.time()
        tx(
            [
                (
                    "UPDATE jobs SET state='succeeded', lease_owner=NULL, lease_expires_at=NULL, updated_at=:now,"
                    " finished_at=:now WHERE id=:job AND lease_owner='me' RETURNING id",
                    {"now": now, "job": job},
                ),
                (
                    "UPDATE messages SET content='reply', state='complete', updated_at=:now WHERE id=:mid",
                    {"now": now, "mid": mid},
                ),
                (part, {"mid": mid, "text": "reply"}),
                (
                    "UPDATE sessions SET status='waiting', preview='reply', updated_at=:now WHERE id=:sid",
                    {"now": now, "sid": sid},
                ),
            ]
        )
        done += 1
    elapsed = time.perf_counter() - t0
    db.close()
    assert done == jobs
    return jobs / elapsed


def huey_rate(jobs: int, path: Path, synchronous: str | None = None) -> float:
    """enqueue + dequeue + put_result: one transaction each, as a huey consumer does them."""
    from huey import SqliteHuey

    huey = SqliteHuey(filename=str(path))
    if synchronous is not None:  # huey's connection is per thread and made on first use: this one
        huey.storage.conn.execute(f"PRAGMA synchronous={synchronous}")

    @huey.task()
    def work(n: int) -> str:
        return "reply"

    t0 = time.perf_counter()
    for i in range(jobs):
        work(i)
    done = 0
    while (task := huey.dequeue()) is not None:
        huey.put_result(task.id, task.execute())
        done += 1
    elapsed = time.perf_counter() - t0
    assert done == jobs and huey.result_count() == jobs
    return jobs / elapsed


async def chatplex_rate(jobs: int, workers: int, path: Path, inline_writes: bool = True) -> float:
    async with await Store.open(path, inline_writes=inline_writes) as store:
        q = JobQueue(store)
        sessions = [(await store.create_session(f"s{i}", "p", "m")).id for i in range(jobs)]
        await store.checkpoint()  # the set-up's pages are not the timed run's work (as in the floors)
        t0 = time.perf_counter()
        for sid in sessions:
            await q.enqueue(sid, "hello", Priority.LOW)

        async def worker() -> None:
            while (claimed := await q.claim()) is not None:
                await q.complete(claimed[0], "reply", unread=False, usage=(1, 1), finish_reason="stop")

        await asyncio.gather(*(worker() for _ in range(workers)))
        return jobs / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3, help="each figure is the median of this many")
    args = ap.parse_args()
    logging.getLogger("chatplex").setLevel(logging.WARNING)
    n = args.jobs
    runs: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(dir=".") as tmp:  # the same disk for all
        folder = Path(tmp)
        for r in range(args.rounds):  # interleaved, so a burst of load hits every figure alike
            measures = {
                "floor": lambda p: floor_rate(n, p),
                "floor_off": lambda p: floor_rate(n, p, "OFF"),
                "rows": lambda p: rows_floor_rate(n, p),
                "huey_off": lambda p: huey_rate(n, p),
                "huey_normal": lambda p: huey_rate(n, p, "NORMAL"),
                "one": lambda p: asyncio.run(chatplex_rate(n, 1, p)),
                "four": lambda p: asyncio.run(chatplex_rate(n, 4, p)),
                "threaded": lambda p: asyncio.run(chatplex_rate(n, 1, p, inline_writes=False)),
            }
            for name, measure in measures.items():
                os.sync()  # no figure pays for the writeback another one left (huey never fsyncs)
                runs.setdefault(name, []).append(measure(folder / f"{name}-{r}.db"))
    m = {name: statistics.median(values) for name, values in runs.items()}
    floor, rows_floor, one, four = m["floor"], m["rows"], m["one"], m["four"]
    rows = [
        ("B1 floor: plain sqlite3, synchronous=NORMAL", floor, None, "-", True),
        ("B1 floor: plain sqlite3, synchronous=OFF", m["floor_off"], floor, "- (vs NORMAL)", True),
        ("B1 floor on chatplex's rows: plain sqlite3", rows_floor, floor, "- (vs floor)", True),
        ("B1 huey + results, synchronous=OFF (shipped)", m["huey_off"], floor, "- (vs floor)", True),
        ("B1 huey + results, synchronous=NORMAL", m["huey_normal"], floor, "- (vs floor)", True),
        ("B1 chatplex, 1 worker", one, floor, ">= 0.5x floor", one >= floor / 2),
        ("B1 chatplex, 4 workers", four, floor, ">= 0.5x floor", four >= floor / 2),
        ("B1 chatplex, 1 worker vs its rows' floor", one, rows_floor, ">= 0.5x", one >= rows_floor / 2),
        ("B1 chatplex, 1 worker vs huey (shipped)", one, m["huey_off"], "- (vs huey)", True),
        ("B1 chatplex, 1 worker vs huey (NORMAL)", one, m["huey_normal"], "- (vs huey)", True),
        ("B1 chatplex, 1 worker, writes in the thread", m["threaded"], one, "- (vs inline)", True),
    ]
    print(f"medians of {args.rounds} interleaved rounds of {n} jobs")
    for name, value, base, target, ok in rows:
        print(line(name, value, base, target, ok, "job/s", ",.0f"), flush=True)


if __name__ == "__main__":
    main()
