"""B6 — TUI start-up to the first settled frame with 1,000 sessions / 100,000 messages, and
B6b with 10,000 sessions / 1,000,000 messages, against start-up on an empty database.
B7 — resident memory after opening the app on the 10,000-session database and visiting 10
long sessions, against the app on an empty database.

    python bench/b6_b7_startup_memory.py [--sessions 1000] [--messages 100000]
        [--big-sessions 10000] [--big-messages 1000000] [--runs 3]

Each measurement runs in a fresh child process (imports are warm-cached by a first run, and
not counted: the clock starts when the app is created and stops at the first idle frame
after the app has loaded its sessions). The databases are generated with sqlite3 into the
real schema once and kept in the system temp directory (chatplex-bench/); each invocation
works on a copy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from common import ROOT, line  # noqa: E402  (bench/common.py; sets sys.path)

LONG = 10  # sessions with many messages, visited for B7
CACHE = Path(tempfile.gettempdir()) / "chatplex-bench"


def _schema(path: Path) -> int:
    """An empty database in the app's own schema; its schema version."""
    from chatplex.core.db import Store

    async def schema() -> None:
        store = await Store.open(path)
        await store.close()

    asyncio.run(schema())
    con = sqlite3.connect(path)
    try:
        return int(con.execute("PRAGMA user_version").fetchone()[0])
    finally:
        con.close()


def make_db(path: Path, sessions: int, messages: int) -> None:
    """`sessions` sessions holding `messages` messages, half of them in the LONG first ones."""
    _schema(path)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    now = time.time()
    long_share = messages // 2 // LONG  # half of all messages sit in the 10 long sessions
    rest = (messages - long_share * LONG) // max(1, sessions - LONG)

    def rows() -> Iterator[tuple[int, str, str, float, float]]:
        for sid in range(1, sessions + 1):
            for k in range(long_share if sid <= LONG else rest):
                if k % 2 == 0:
                    yield sid, "user", f"question {k} about things", now - sid + k / 1000, now
                else:
                    text = f"Answer {k}: **bold**, a list\n\n- one\n- two\n\n```python\nprint({k})\n```\n"
                    yield sid, "assistant", text, now - sid + k / 1000, now

    with con:
        con.executemany(
            "INSERT INTO sessions(id, title, provider, model, status, preview, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (
                (i, f"session {i}", "local", "m", "idle", f"last words of {i}", now - i, now - i)
                for i in range(1, sessions + 1)
            ),
        )
        con.executemany(
            "INSERT INTO messages(session_id, role, content, created_at, updated_at) VALUES (?,?,?,?,?)", rows()
        )
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def cached_db(into: Path, sessions: int, messages: int, empty_newest: bool = False) -> Path:
    """A fresh copy in `into` of the generated database, generating it on first use.
    `empty_newest` adds a newest session with no messages: the app opens on it, so the chat
    pane shows no Markdown and the figure is the session list's own cost."""
    CACHE.mkdir(exist_ok=True)
    probe = Path(tempfile.mkdtemp(dir=CACHE)) / "probe.db"
    version = _schema(probe)
    shutil.rmtree(probe.parent)
    kept = CACHE / f"v{version}-{sessions}s-{messages}m.db"
    if not kept.exists():
        started = time.perf_counter()
        partial = kept.with_suffix(".partial")
        for leftover in CACHE.glob(partial.name + "*"):
            leftover.unlink()
        make_db(partial, sessions, messages)
        partial.rename(kept)
        print(f"(generated {kept} in {time.perf_counter() - started:.1f} s)", file=sys.stderr)
    copy = into / (("empty-newest-" if empty_newest else "") + kept.name)
    shutil.copyfile(kept, copy)
    if empty_newest:
        con = sqlite3.connect(copy)
        with con:
            con.execute(
                "INSERT INTO sessions(title, provider, model, status, created_at, updated_at)"
                " VALUES ('new', 'local', 'm', 'idle', ?, ?)",
                (time.time() + 60, time.time() + 60),
            )
        con.close()
    return copy


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
        await app.ready.wait()  # the sessions are loaded and the first one is shown
        await pilot.pause()  # and that frame is composed and idle
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
    ap.add_argument("--big-sessions", type=int, default=10_000)
    ap.add_argument("--big-messages", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.db"
        big = cached_db(Path(tmp), args.sessions, args.messages)
        huge = cached_db(Path(tmp), args.big_sessions, args.big_messages)
        list_only = cached_db(Path(tmp), args.sessions, args.messages, empty_newest=True)
        huge_list_only = cached_db(Path(tmp), args.big_sessions, args.big_messages, empty_newest=True)
        child(empty, 0)  # warm the import caches
        runs: dict[str, list[dict]] = {"empty": [], "B6": [], "B6b": [], "B6-list": [], "B6b-list": []}
        for _ in range(args.runs):  # interleaved, so a burst of load on the machine hits them all
            runs["empty"].append(child(empty, 0))
            runs["B6"].append(child(big, 0))
            runs["B6b"].append(child(huge, LONG))
            runs["B6-list"].append(child(list_only, 0))
            runs["B6b-list"].append(child(huge_list_only, 0))
    empty_runs, huge_runs = runs["empty"], runs["B6b"]
    e = min(r["startup"] for r in empty_runs)
    for name, sessions, messages, factor in (
        ("B6", args.sessions, args.messages, 1.5),
        ("B6b", args.big_sessions, args.big_messages, 2.0),
        ("B6-list", args.sessions, args.messages, 1.5),
        ("B6b-list", args.big_sessions, args.big_messages, 2.0),
    ):
        title = f"{name} start-up, {sessions} sessions/{messages // 1000}k msgs"
        if name.endswith("-list"):
            title = f"{name} same, opening an empty session"
        b = min(r["startup"] for r in runs[name])
        spread = "/".join(f"{r['startup'] * 1000:.0f}" for r in runs[name])
        print(
            line(
                title,
                b * 1000,
                e * 1000,
                f"<= {factor}x empty",
                b <= factor * e,
                "ms",
                ",.0f",
            ),
            f"(runs {spread} ms)",
        )
    er = min(r["rss"] for r in empty_runs)
    br = max(r["rss"] for r in huge_runs)
    print(
        line(
            f"B7 RSS, {args.big_sessions} sessions, {LONG} long visited",
            br,
            er,
            "<= empty + 40 MB",
            br <= er + 40,
            "MB",
            ",.0f",
        ),
        f"(+{br - er:.0f} MB)",
    )


if __name__ == "__main__":
    main()
