"""kill -9 of the process running a tool call: the call is never run again by itself. The
next chatplex to start finds it cut, holds it ("outcome unknown") and runs it only once the
user approves it again. Real peers: llama.cpp's tiny agent model (it calls hang) and
tests/mcpservers/faulty.py over stdio."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatplex.core.db.steps import UNKNOWN_OUTCOME
from tests.cli.helpers import wait_until
from tests.helpers import TinyServer, env_with_src, make_agent_model
from tests.tools.helpers import FAULTY


@pytest.fixture(scope="module")
def hang_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyServer]:
    """The tiny agent model that calls hang({"seconds": 600})."""
    server = TinyServer(make_agent_model(tmp_path_factory.mktemp("hang"), call=("hang", '{"seconds": 600}')))
    server.start()
    yield server
    server.stop()


def write_config(tmp_path: Path, server: TinyServer, approval: str) -> list[str]:
    (tmp_path / "config.toml").write_text(
        f'[providers.agent]\nkind = "openai"\nbase_url = "{server.url}"\nmodel = "tiny"\napi_key_env = ""\n'
        "max_tokens = 60\n[providers.agent.params]\ntemperature = 0\n"
        f"[mcp.faulty]\ncommand = {json.dumps(sys.executable)}\nargs = {json.dumps([str(FAULTY)])}\n"
        f'approval = "{approval}"\n'
    )
    return [sys.executable, "-m", "chatplex", "--config", str(tmp_path / "config.toml"), "--db", str(tmp_path / "x.db")]


def rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as c:
        return c.execute(sql).fetchall()


def kill_9_a_worker_once(argv: list[str], env: dict[str, str], db: Path, ready: str, what: str) -> None:
    """A `chatplex worker` runs until the query `ready` finds a row, then is killed with -9."""
    worker = subprocess.Popen([*argv, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: rows(db, ready), what, 60)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()


def test_a_call_cut_by_kill_9_waits_for_approval_and_never_runs_twice(tmp_path, hang_agent):
    argv = write_config(tmp_path, hang_agent, approval="allow")
    env = env_with_src()
    queued = subprocess.run([*argv, "send", "--no-wait", "--session", "cut", "wake me"], env=env, capture_output=True)
    assert queued.returncode == 0, queued.stderr
    db = tmp_path / "x.db"
    kill_9_a_worker_once(argv, env, db, "SELECT 1 FROM jobs WHERE kind='tool' AND state='running'", "the call to run")
    # the next chatplex to start recovers it: held, never queued
    after = subprocess.run([*argv, "worker", "--until-idle"], env=env, capture_output=True, text=True, timeout=120)
    assert after.returncode == 0, after.stderr
    assert rows(db, "SELECT state, attempts, last_error FROM jobs WHERE kind='tool'") == [("held", 1, UNKNOWN_OUTCOME)]
    listed = subprocess.run([*argv, "approvals", "--json"], env=env, capture_output=True, text=True)
    [waiting] = json.loads(listed.stdout)
    assert waiting["tool"] == "hang" and waiting["reason"] == UNKNOWN_OUTCOME
    status = rows(db, "SELECT status FROM sessions")
    assert status == [("needs_approval",)]


def test_kill_9_while_a_call_waits_for_approval_leaves_it_waiting_once(tmp_path, hang_agent):
    argv = write_config(tmp_path, hang_agent, approval="ask")
    env = env_with_src()
    assert subprocess.run([*argv, "send", "--no-wait", "--session", "w", "wake me"], env=env).returncode == 0
    db = tmp_path / "x.db"
    kill_9_a_worker_once(argv, env, db, "SELECT 1 FROM jobs WHERE state='held'", "the call to wait")
    after = subprocess.run([*argv, "worker", "--until-idle"], env=env, capture_output=True, text=True, timeout=120)
    assert after.returncode == 0, after.stderr
    assert rows(db, "SELECT kind, state, attempts FROM jobs ORDER BY id") == [
        ("reply", "succeeded", 1),
        ("tool", "held", 0),
    ]
    assert rows(db, "SELECT role FROM messages ORDER BY id") == [("user",), ("assistant",), ("tool",)]
    [waiting] = json.loads(subprocess.run([*argv, "approvals", "--json"], env=env, capture_output=True).stdout)
    assert "asks before hang runs" in waiting["reason"]
