"""A coordinator process killed with SIGKILL mid-stream loses nothing and replies exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time

from chatplex.core.models import JobState, MessageState, Role
from tests.core.test_coordinator import finished
from tests.fakeserver import Fault
from tests.helpers import env_with_src, make_config, provider_for


def partial_text(db, message_id: int) -> str:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT content FROM messages WHERE id=?", (message_id,)).fetchone()
    return row[0] if row else ""


async def test_sigkill_mid_stream_then_recovery_replies_once(fake, tmp_path, coordinators):
    s = fake.scenario(reply=" ".join(f"w{i}" for i in range(300)), token_delay=0.01)
    config = make_config(tmp_path, provider_for(s))
    (tmp_path / "config.toml").write_text(
        f'[providers.fake]\nkind = "openai"\nbase_url = "{s.url}"\nmodel = "fake-small"\napi_key_env = ""\n'
    )
    coord, _ = await coordinators(config, start=False)
    session = await coord.create_session()
    user, reply, job = await coord.send(session.id, "a long answer please")
    await coord.stop()

    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatplex",
            "--config",
            str(tmp_path / "config.toml"),
            "--db",
            str(config.db_path),
            "worker",
            "--workers",
            "2",
        ],
        env=env_with_src(),
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while not partial_text(config.db_path, reply.id) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)  # watching another process's writes: nothing to await on
    assert partial_text(config.db_path, reply.id), "the child streamed and flushed some text"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    coord2, rec2 = await coordinators(config)  # start() recovers the dead process's job at once
    done = await rec2.wait(finished(reply.id, MessageState.COMPLETE), timeout=30)
    assert done.message.content == s.reply
    messages = await coord2.messages(session.id)
    assert [m.role for m in messages] == [Role.USER, Role.ASSISTANT]
    assert messages[0].content == "a long answer please"
    jobs = await coord2.jobs()
    assert [(j.id, j.state, j.attempts) for j in jobs] == [(job.id, JobState.SUCCEEDED, 1)]  # not its fault
    assert await coord2.store.integrity_check() == ["ok"]
    assert len(s.requests) == 2


async def test_worker_command_stops_cleanly_on_sigterm(fake, tmp_path, coordinators):
    s = fake.scenario(reply=" ".join(f"w{i}" for i in range(300)), token_delay=0.01)
    config = make_config(tmp_path, provider_for(s))
    (tmp_path / "config.toml").write_text(
        f'[providers.fake]\nkind = "openai"\nbase_url = "{s.url}"\nmodel = "fake-small"\napi_key_env = ""\n'
    )
    coord, _ = await coordinators(config, start=False)
    session = await coord.create_session()
    _, reply, job = await coord.send(session.id, "x")
    await coord.stop()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatplex",
            "--config",
            str(tmp_path / "config.toml"),
            "--db",
            str(config.db_path),
            "worker",
        ],
        env=env_with_src(),
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while not partial_text(config.db_path, reply.id) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    child.send_signal(signal.SIGTERM)
    assert child.wait(10) == 0
    with sqlite3.connect(config.db_path) as conn:
        state, attempts = conn.execute("SELECT state, attempts FROM jobs WHERE id=?", (job.id,)).fetchone()
        msg_state, content = conn.execute("SELECT state, content FROM messages WHERE id=?", (reply.id,)).fetchone()
    assert (state, attempts) == ("queued", 0)  # resumable, no attempt spent
    assert msg_state == "interrupted" and content.startswith("w0")


def write_config(tmp_path, url: str) -> None:
    (tmp_path / "config.toml").write_text(
        f'max_attempts = 3\n[providers.fake]\nkind = "openai"\nbase_url = "{url}"\nmodel = "fake-small"\n'
        'api_key_env = ""\n'
    )


def start_worker(tmp_path, db, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatplex",
            "--config",
            str(tmp_path / "config.toml"),
            "--db",
            str(db),
            "worker",
            "--workers",
            "4",
            *extra,
        ],
        env=env_with_src(),
        stderr=subprocess.DEVNULL,
    )


def running_ids(db) -> set[int]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT id FROM jobs WHERE state='running'")}


async def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # another process's progress: nothing to await on
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_killing_the_worker_five_times_loses_no_reply(fake, tmp_path, coordinators):
    """Kills from outside are not the replies' fault: max_attempts is 3, the same four replies
    are cut five times, and all four complete, none marked failed."""
    s = fake.scenario(reply=" ".join(f"w{i}" for i in range(400)), token_delay=0.01)
    config = make_config(tmp_path, provider_for(s), max_attempts=3)
    write_config(tmp_path, s.url)
    coord, _ = await coordinators(config, start=False)
    replies = []
    for n in range(4):
        session = await coord.create_session(f"s{n}")
        replies.append((await coord.send(session.id, "a long answer"))[1].id)
    await coord.stop()
    for _ in range(5):
        child = start_worker(tmp_path, config.db_path)
        await wait_for(
            lambda: len(running_ids(config.db_path)) == 4 and all(partial_text(config.db_path, r) for r in replies),
            "four replies streaming",
        )
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    finisher = start_worker(tmp_path, config.db_path, "--until-idle")
    assert finisher.wait(120) == 0
    with sqlite3.connect(config.db_path) as conn:
        jobs = conn.execute("SELECT state, attempts, crashes FROM jobs ORDER BY id").fetchall()
        states = conn.execute("SELECT state, content FROM messages WHERE role='assistant'").fetchall()
    assert jobs == [("succeeded", 1, 0)] * 4
    assert states == [("complete", s.reply)] * 4


async def test_a_reply_whose_runs_keep_dying_before_any_progress_is_put_aside(fake, tmp_path, coordinators):
    """Poison protection where it is earned: three runs in a row die before the reply streams
    anything and nothing else gets done meanwhile; then it fails with a plain reason."""
    s = fake.scenario(reply="never sent", faults=[Fault(hang_after=0) for _ in range(10)])
    config = make_config(tmp_path, provider_for(s), max_attempts=3)
    write_config(tmp_path, s.url)
    coord, _ = await coordinators(config, start=False)
    session = await coord.create_session()
    _, reply, job = await coord.send(session.id, "x")
    await coord.stop()
    for n in range(3):
        child = start_worker(tmp_path, config.db_path)
        await wait_for(
            lambda: running_ids(config.db_path) == {job.id} and len(s.requests) == n + 1,
            "the reply's request to be at the server",
        )
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    finisher = start_worker(tmp_path, config.db_path, "--until-idle")
    assert finisher.wait(60) == 0
    with sqlite3.connect(config.db_path) as conn:
        state, attempts, crashes = conn.execute("SELECT state, attempts, crashes FROM jobs").fetchone()
        msg_state, error = conn.execute("SELECT state, error FROM messages WHERE id=?", (reply.id,)).fetchone()
    assert (state, attempts, crashes) == ("failed", 0, 3)
    assert msg_state == "error" and "stopped 3 times in a row" in error and "ctrl+r" in error
    assert len(s.requests) == 3


async def test_a_worker_started_while_the_database_is_locked_waits_it_out(fake, tmp_path, coordinators):
    """Start-up recovery finds the write lock held past the busy timeout (a vacuum, an open
    sqlite3 shell): the worker keeps going instead of exiting, and then hanging on the
    database threads it never closed."""
    from tests.reliability.test_streams_and_leases import LockHolder

    s = fake.scenario(reply="done at last")
    config = make_config(tmp_path, provider_for(s))
    write_config(tmp_path, s.url)
    coord, _ = await coordinators(config, start=False)
    session = await coord.create_session()
    _, reply, _ = await coord.send(session.id, "x")
    await coord.stop()
    holder = LockHolder(config.db_path)
    try:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chatplex",
                "--config",
                str(tmp_path / "config.toml"),
                "--db",
                str(config.db_path),
                "worker",
                "--until-idle",
            ],
            env=env_with_src(),
            stderr=subprocess.PIPE,
            text=True,
        )
        first = child.stderr.readline()  # after start-up, which waited out the 5 s busy timeout
        assert "workers on" in first, first
    finally:
        holder.release()
    assert child.wait(60) == 0
    assert partial_text(config.db_path, reply.id) == "done at last"
