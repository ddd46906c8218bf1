"""B6 — TUI start-up to the first complete frame with 1,000 sessions / 100,000 messages,
against start-up on an empty database. B7 — resident memory after opening the app on that
database and visiting 10 long sessions, against the app on an empty database.

    python bench/b6_b7_startup_memory.py [--sessions 1000] [--messages 100000] [--runs 3]

Each measurement runs in a fresh child process (imports are warm-cached by a first run, and
not counted: the clock starts when the app is created).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, line  # noqa: E402  (bench/common.py; sets sys.path)

LONG = 10  # sessions with many messages, visited for B7


def make_db(path: Path, sessions: int, messages: int) -> None:
    from chatplex.core.db import Store

    async def schema() -> None:
        store = await Store.open(path)
        await store.close()

    asyncio.run(schema())
    con = sqlite3.connect(path)
    now = time.time()
    long_share = messages // 2 // LONG  # half of all messages sit in the 10 long sessions
    rest = (messages - long_share * LONG) // max(1, sessions - LONG)
    with con:
        con.executemany(
            "INSERT INTO sessions(id, title, provider, model, status, preview, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?)",
            [
                (i, f"session {i}", "local", "m", "idle", f"last words of {i}", now - i, now - i)
                for i in range(1, sessions + 1)
            ],
        )
        rows = []
        for sid in range(1, sessions + 1):
            count = long_share if sid <= LONG else rest
            for k in range(count):
                role = "user" if k % 2 == 0 else "assistant"
                text = (
                    f"question {k} about things"
                    if role == "user"
                    else f"Answer {k}: **bold**, a list\n\n- one\n- two\n\n```python\nprint({k})\n```\n"
                )
                rows.append((sid, role, text, now - sid + k / 1000, now))
        con.executemany(
            "INSERT INTO messages(session_id, role, content, created_at, updated_at) VALUES (?,?,?,?,?)", rows
        )
    con.close()


CHILD = r"""
import asyncio, json, sys, time, resource
sys.path[:0] = [ROOT, ROOT + "/src", ROOT + "/tests/.."]
from pathlib import Path
from chatplex.config import Config, ProviderConfig
from chatplex.tui.app import ChatplexApp
from chatplex.tui.widgets.chat import ReplyMessage

def rss_mb():
    for row in open("/proc/self/status"):
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024

async def main(db, visit):
    config = Config(path=None, db_path=Path(db), log_dir=Path(db).parent, default_provider="local", workers=4,
                    providers={"local": ProviderConfig(name="local", kind="openai",
                                                       base_url="http://127.0.0.1:9/v1", model="m")})
    t0 = time.perf_counter()
    app = ChatplexApp(config)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()  # mounted, first frame composed and idle
        startup = time.perf_counter() - t0
        for sid in range(1, visit + 1):
            await app.focus_session(sid)
            await pilot.pause()
        rss = rss_mb()
    print(json.dumps({"startup": startup, "rss": rss}))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def child(db: Path, visit: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD.replace("ROOT", repr(str(ROOT))), str(db), str(visit)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CHATPLEX_LOG": "WARNING"},
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        big, empty = Path(tmp) / "big.db", Path(tmp) / "empty.db"
        make_db(big, args.sessions, args.messages)
        child(empty, 0)  # warm the import caches
        empty_runs = [child(empty, 0) for _ in range(args.runs)]
        big_runs = [child(big, LONG) for _ in range(args.runs)]
    e = min(r["startup"] for r in empty_runs)
    b = min(r["startup"] for r in big_runs)
    print(
        line(
            f"B6 start-up, {args.sessions} sessions/{args.messages} msgs",
            b * 1000,
            e * 1000,
            "< 500 ms and <= 3x empty",
            b < 0.5 and b <= 3 * e,
            "ms",
            ",.0f",
        )
    )
    er = min(r["rss"] for r in empty_runs)
    br = max(r["rss"] for r in big_runs)
    print(line(f"B7 RSS after visiting {LONG} long sessions", br, er, "< 200 MB", br < 200, "MB", ",.0f"))


if __name__ == "__main__":
    main()
