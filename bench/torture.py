"""Crash torture: kill `chatplex worker` at random moments and check that nothing is lost.

    python bench/torture.py [--rounds 100] [--sessions 50] [--signal KILL|TERM] [--seed N] [--faults]

Each round queues one more message in each of the sessions, starts `chatplex worker` in a
child process (streaming from a local HTTP server at ~100 tokens/s per stream), sends it
SIGKILL (or SIGTERM) at a random moment, restarts it on the same database with
`--until-idle`, and then checks, over the whole database:

- every user message is present exactly once;
- every job ended `succeeded`, none is left queued or running;


- `PRAGMA integrity_check` says ok.

With --faults, each round also injects, at random: a hold of the database's write lock by
another connection for 0.5–7 s (past the 5 s busy timeout), a step of the worker's wall clock
40–120 s forward mid-stream (bench/clock_skew.py: past the 30 s lease; the restarted worker
keeps the stepped clock), and
odd chunks in 30 % of the streams (content as parts, unknown fields, bad types, bad JSON),
with the kill landing anywhere among them.

With --reasoning, every reply is a reasoning-then-answer stream (thinking, then the answer),
cut at random like the others, and each reply must end stored as exactly those two parts,
in order and whole, with the answer alone as its text.

It prints the counts and exits non-zero if any invariant broke. The test suite runs a few
rounds of each signal (tests/reliability/test_torture.py).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from chatplex.config import load  # noqa: E402
from chatplex.core.coordinator import Coordinator  # noqa: E402
from tests.fakeserver import FakeServer  # noqa: E402

REPLY = " ".join(f"token{i}" for i in range(40))
THOUGHT = " ".join(f"thought{i}" for i in range(30))


@dataclass
class Result:
    rounds: int = 0
    messages: int = 0
    kills_mid_stream: int = 0  # kills that landed while replies were streaming
    streams_cut: int = 0  # replies that were streaming when the process died
    recovered_attempts: collections.Counter = field(default_factory=collections.Counter)
    lock_holds: int = 0
    clock_jumps: int = 0
    odd_chunks: collections.Counter = field(default_factory=collections.Counter)
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            f"rounds                      {self.rounds}",
            f"user messages               {self.messages}",
            f"kills while streaming       {self.kills_mid_stream}",
            f"replies cut mid-stream      {self.streams_cut}",
            "jobs by attempts            " + ", ".join(f"{k}: {v}" for k, v in sorted(self.recovered_attempts.items())),
            f"write-lock holds            {self.lock_holds}",
            f"clock jumps                 {self.clock_jumps}",
            "odd chunks sent             " + ", ".join(f"{k}: {v}" for k, v in sorted(self.odd_chunks.items())),
            f"invariant violations        {len(self.problems)}",
        ] + [f"  ✗ {p}" for p in self.problems[:20]]


def write_config(folder: Path, url: str, workers: int, resume: str = "continue") -> Path:
    path = folder / "config.toml"
    path.write_text(f"""
default_provider = "local"
workers = {workers}
max_attempts = 10
[providers.local]
kind = "openai"
base_url = "{url}"
model = "fake-small"
api_key_env = ""
resume = "{resume}"
""")
    return path


async def queue_round(config_path: Path, db: Path, sessions: int, round_no: int) -> int:
    config = load(config_path, db)
    coord = await Coordinator.open(config)
    try:
        existing = await coord.sessions()
        ids = sorted(s.id for s in existing)
        while len(ids) < sessions:
            ids.append((await coord.create_session(f"torture {len(ids)}")).id)
        for sid in ids:
            await coord.send(sid, f"round {round_no} session {sid}")
    finally:
        await coord.store.close()
    return len(ids)


def worker(
    config_path: Path, db: Path, log: Path, *extra: str, step: float = 0.0, offset: float = 0.0
) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    entry = ["-m", "chatplex"]
    if step or offset:
        env["CHATPLEX_CLOCK_STEP"], env["CHATPLEX_CLOCK_OFFSET"] = str(step), str(offset)
        entry = [str(ROOT / "bench" / "clock_skew.py")]
    return subprocess.Popen(
        [
            sys.executable,
            *entry,
            "--config",
            str(config_path),
            "--db",
            str(db),
            "--log-level",
            "WARNING",
            "worker",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("a"),
        env=env,
    )


def hold_write_lock(db: Path, seconds: float) -> threading.Thread:
    """Another connection takes the write lock (as a `chatplex vacuum`, a big import, an open
    sqlite3 shell would) and keeps it for `seconds`."""

    def hold() -> None:
        con = sqlite3.connect(db, timeout=30, isolation_level=None)
        try:
            con.execute("BEGIN IMMEDIATE")
            time.sleep(seconds)  # the fault itself: the lock held this long
            con.execute("ROLLBACK")
        finally:
            con.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    return thread


def wait_for_streaming(db: Path, child: subprocess.Popen, timeout: float = 60.0) -> bool:
    """Until the child has claimed a job (start-up time varies a lot on a loaded machine; the
    kill must land on streaming replies, not on an interpreter still importing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.poll() is None:
        con = sqlite3.connect(db)
        try:
            if con.execute("SELECT 1 FROM jobs WHERE state='running' LIMIT 1").fetchone():
                return True
        except sqlite3.OperationalError:  # locked for a moment by the child's write
            pass
        finally:
            con.close()
        time.sleep(0.01)  # another process's progress: nothing to await on
    return False


def check(db: Path, expected_users: set[str], result: Result, reasoning: bool = False) -> None:
    con = sqlite3.connect(db)
    try:
        integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
        if integrity != "ok":
            result.problems.append(f"integrity_check: {integrity}")
        users = collections.Counter(c for (c,) in con.execute("SELECT content FROM messages WHERE role='user'"))
        for text, n in users.items():
            if n != 1:
                result.problems.append(f"user message {text!r} present {n} times")
        for text in expected_users - set(users):
            result.problems.append(f"user message {text!r} lost")
        states = dict(con.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())
        if set(states) - {"succeeded"}:
            result.problems.append(f"jobs not all succeeded: {states}")
        if states.get("succeeded", 0) != len(expected_users):
            result.problems.append(f"{states.get('succeeded', 0)} jobs succeeded for {len(expected_users)} messages")
        rows = con.execute("SELECT session_id, role, content, state FROM messages ORDER BY session_id, id").fetchall()
        by_session: dict[int, list[tuple[str, str, str]]] = collections.defaultdict(list)
        for sid, role, content, state in rows:
            by_session[sid].append((role, content, state))
        for sid, msgs in by_session.items():
            roles = [m[0] for m in msgs]
            if roles != ["user", "assistant"] * (len(msgs) // 2) or len(msgs) % 2:
                result.problems.append(f"session {sid}: turns are not user/assistant pairs: {roles}")
            for role, content, state in msgs:
                if role == "assistant" and (state != "complete" or content != REPLY):
                    result.problems.append(
                        f"session {sid}: reply {state} with {len(content)} chars (expected {len(REPLY)})"
                    )
        parts: dict[int, list[tuple[str, str, str]]] = collections.defaultdict(list)
        for mid, kind, text, state in con.execute(
            "SELECT p.message_id, p.kind, p.text, p.state FROM parts p JOIN messages m ON m.id=p.message_id"
            " WHERE m.role='assistant' ORDER BY p.message_id, p.seq"
        ):
            parts[mid].append((kind, text, state))
        want = (
            [("reasoning", THOUGHT, "complete"), ("text", REPLY, "complete")]
            if reasoning
            else [("text", REPLY, "complete")]
        )
        for (mid,) in con.execute("SELECT id FROM messages WHERE role='assistant'"):
            if parts[mid] != want:
                got = [(k, len(t), st) for k, t, st in parts[mid]]
                result.problems.append(f"reply {mid}: parts {got}, expected {[(k, len(t), st) for k, t, st in want]}")
        result.recovered_attempts = collections.Counter(a for (a,) in con.execute("SELECT attempts FROM jobs"))
    finally:
        con.close()


def run(
    rounds: int = 100,
    sessions: int = 50,
    sig: signal.Signals = signal.SIGKILL,
    seed: int | None = None,
    workers: int = 16,
    token_delay: float = 0.01,
    folder: Path | None = None,
    quiet: bool = False,
    faults: bool = False,
    resume: str = "continue",
    reasoning: bool = False,
) -> Result:
    rng = random.Random(seed)
    result = Result()
    server = FakeServer()
    scenario = server.scenario(
        reply=REPLY,
        token_delay=token_delay,
        chaos=0.3 if faults else 0.0,
        chaos_seed=seed or 0,
        parts=[("reasoning", THOUGHT), ("text", REPLY)] if reasoning else None,
    )
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        tmpdir = Path(tmp)
        db, log = tmpdir / "torture.db", tmpdir / "worker.log"
        config_path = write_config(tmpdir, scenario.url, workers, resume)
        expected: set[str] = set()
        # One round's replies take about sessions/workers * 40 tokens * token_delay.
        span = (sessions / workers) * (70 if reasoning else 40) * token_delay
        try:
            for round_no in range(rounds):
                n = asyncio.run(queue_round(config_path, db, sessions, round_no))
                con = sqlite3.connect(db)
                expected |= {c for (c,) in con.execute("SELECT content FROM messages WHERE role='user'")}
                con.close()
                step = rng.uniform(40, 120) if faults and rng.random() < 0.5 else 0.0
                stepped = 0.0
                child = worker(config_path, db, log, step=step)
                started = wait_for_streaming(db, child)
                holder = None
                if faults:  # the lock hold and the clock step land at random among the streams
                    moments = sorted(
                        [("kill", rng.uniform(0.0, span * 2)), ("lock", rng.uniform(0.0, span))]
                        + ([("jump", rng.uniform(0.0, span))] if step else []),
                        key=lambda m: m[1],
                    )
                    at = 0.0
                    for what, when in moments:
                        time.sleep(when - at)  # the random moments themselves
                        at = when
                        if what == "lock" and rng.random() < 0.6:
                            holder = hold_write_lock(db, rng.uniform(0.5, 7.0))
                            result.lock_holds += 1
                        elif what == "jump" and child.poll() is None:
                            child.send_signal(signal.SIGUSR1)
                            result.clock_jumps += 1
                            stepped = step
                        elif what == "kill":
                            break
                else:
                    time.sleep(rng.uniform(0.0, span))  # the random moment of death, while replies stream
                con = sqlite3.connect(db)
                streaming = con.execute("SELECT COUNT(*) FROM jobs WHERE state='running'").fetchone()[0]
                con.close()
                if not started:
                    result.problems.append(f"round {round_no}: the worker never started streaming")
                child.send_signal(sig)
                child.wait(30)
                result.kills_mid_stream += streaming > 0
                result.streams_cut += streaming
                finisher = worker(config_path, db, log, "--until-idle", offset=stepped)
                try:
                    if finisher.wait(180) != 0:
                        result.problems.append(f"round {round_no}: restarted worker exited {finisher.returncode}")
                except subprocess.TimeoutExpired:
                    finisher.kill()
                    finisher.wait()
                    con = sqlite3.connect(db)
                    stuck = con.execute(
                        "SELECT id, state, attempts, run_after - ?, lease_owner, last_error FROM jobs"
                        " WHERE state != 'succeeded'",
                        (time.time() + stepped,),
                    ).fetchall()
                    con.close()
                    result.problems.append(
                        f"round {round_no}: the restarted worker did not finish in 180 s "
                        f"(clock stepped {stepped:.0f} s); unfinished jobs: {stuck[:5]}; log: "
                        + " | ".join(log.read_text().splitlines()[-15:])
                    )
                if holder is not None:
                    holder.join()
                result.rounds += 1
                result.messages = len(expected)
                result.odd_chunks = collections.Counter(scenario.odd_chunks)
                before = len(result.problems)
                check(db, expected, result, reasoning)
                if not quiet:
                    print(
                        f"round {round_no + 1}/{rounds}: {n} sessions, {streaming} streaming at the "
                        f"{sig.name}, {'ok' if len(result.problems) == before else 'BROKEN'}",
                        flush=True,
                    )
                if len(result.problems) > before:
                    break
        finally:
            server.close()
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--signal", choices=["KILL", "TERM"], default="KILL")
    ap.add_argument("--seed", type=int)
    ap.add_argument(
        "--resume",
        choices=["continue", "regenerate"],
        default="continue",
        help="how cut replies go on (the server continues a prefill exactly)",
    )
    ap.add_argument(
        "--faults", action="store_true", help="also inject write-lock holds, clock jumps and odd chunks at random"
    )
    ap.add_argument("--reasoning", action="store_true", help="replies think first, then answer (both cut at random)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    result = run(
        args.rounds,
        args.sessions,
        signal.Signals[f"SIG{args.signal}"],
        args.seed,
        args.workers,
        faults=args.faults,
        resume=args.resume,
        reasoning=args.reasoning,
    )
    print("\n".join(result.lines()))
    print(f"elapsed                     {time.perf_counter() - t0:.0f} s")
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
