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
from tests.conftest import env_with_src, make_config, provider_for
from tests.core.test_coordinator import finished


def partial_text(db, message_id: int) -> str:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT content FROM messages WHERE id=?", (message_id,)).fetchone()
    return row[0] if row else ""


async def test_sigkill_mid_stream_then_recovery_replies_once(fake, tmp_path, coordinators):
    s = fake.scenario(reply=" ".join(f"w{i}" for i in range(300)), token_delay=0.01)
    config = make_config(tmp_path, provider_for(s))
    (tmp_path / "config.toml").write_text(
        f'[providers.fake]\nkind = "openai"\nbase_url = "{s.url}"\nmodel = "fake-small"\napi_key_env = ""\n')
    coord, _ = await coordinators(config, start=False)
    session = await coord.create_session()
    user, reply, job = await coord.send(session.id, "a long answer please")
    await coord.stop()

    child = subprocess.Popen(
        [sys.executable, "-m", "chatplex", "--config", str(tmp_path / "config.toml"), "--db", str(config.db_path),
         "worker", "--workers", "2"], env=env_with_src(), stderr=subprocess.PIPE)
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
    assert [(j.id, j.state, j.attempts) for j in jobs] == [(job.id, JobState.SUCCEEDED, 2)]
    assert await coord2.store.integrity_check() == ["ok"]
    assert len(s.requests) == 2


async def test_worker_command_stops_cleanly_on_sigterm(fake, tmp_path, coordinators):
    s = fake.scenario(reply=" ".join(f"w{i}" for i in range(300)), token_delay=0.01)
    config = make_config(tmp_path, provider_for(s))
    (tmp_path / "config.toml").write_text(
        f'[providers.fake]\nkind = "openai"\nbase_url = "{s.url}"\nmodel = "fake-small"\napi_key_env = ""\n')
    coord, _ = await coordinators(config, start=False)
    session = await coord.create_session()
    _, reply, job = await coord.send(session.id, "x")
    await coord.stop()
    child = subprocess.Popen(
        [sys.executable, "-m", "chatplex", "--config", str(tmp_path / "config.toml"), "--db", str(config.db_path),
         "worker"], env=env_with_src(), stderr=subprocess.PIPE)
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
