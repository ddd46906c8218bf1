"""Agent turns headless: `chatplex send` follows a turn through its tool calls, stops with
exit code 3 when a call waits for approval, and `approvals` / `approve` / `deny` answer it
from any shell. Real peers: llama.cpp's tiny agent model and mcp-server-time."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import env_with_src
from tests.tools.helpers import time_server

ANSWER = "and to in is."


def run(tmp_path, agent_server, *args: str, approval: str = "ask") -> subprocess.CompletedProcess:
    time = time_server()
    (tmp_path / "config.toml").write_text(
        f'[providers.agent]\nkind = "openai"\nbase_url = "{agent_server.url}"\nmodel = "tiny"\napi_key_env = ""\n'
        "max_tokens = 60\n[providers.agent.params]\ntemperature = 0\n"
        f"[mcp.time]\ncommand = {json.dumps(time.command)}\nargs = {json.dumps(time.args)}\n"
        f'approval = "{approval}"\n'
    )
    argv = [sys.executable, "-m", "chatplex", "--config", str(tmp_path / "config.toml"), "--db", str(tmp_path / "x.db")]
    return subprocess.run([*argv, *args], capture_output=True, text=True, env=env_with_src(), timeout=120)


def test_send_stops_at_a_call_that_asks_and_approve_then_worker_finish_the_turn(tmp_path, agent_server):
    sent = run(tmp_path, agent_server, "send", "--session", "agent", "what time is it?")
    assert sent.returncode == 3, sent.stderr
    assert '⚙ get_current_time({"timezone": "UTC"})' in sent.stderr and "waits for approval" in sent.stderr
    [waiting] = json.loads(run(tmp_path, agent_server, "approvals", "--json").stdout)
    assert (waiting["tool"], waiting["title"]) == ("get_current_time", "agent")
    assert json.loads(waiting["arguments"]) == {"timezone": "UTC"}
    human = run(tmp_path, agent_server, "approvals").stdout
    assert str(waiting["job"]) in human and "get_current_time" in human
    ok = run(tmp_path, agent_server, "approve", str(waiting["job"]))
    assert ok.returncode == 0 and f"approved job {waiting['job']}" in ok.stdout
    again = run(tmp_path, agent_server, "approve", str(waiting["job"]))
    assert again.returncode == 2 and "not a tool call waiting" in again.stderr  # answered once only
    assert run(tmp_path, agent_server, "worker", "--until-idle").returncode == 0
    shown = run(tmp_path, agent_server, "show", "agent").stdout
    assert ANSWER in shown and '"timezone": "UTC"' in shown
    assert json.loads(run(tmp_path, agent_server, "approvals", "--json").stdout) == []


def test_deny_with_a_reason_tells_the_model(tmp_path, agent_server):
    assert run(tmp_path, agent_server, "send", "--session", "d", "what time is it?").returncode == 3
    [waiting] = json.loads(run(tmp_path, agent_server, "approvals", "--json").stdout)
    no = run(tmp_path, agent_server, "deny", str(waiting["job"]), "--reason", "not today")
    assert no.returncode == 0 and "denied" in no.stdout
    assert run(tmp_path, agent_server, "worker", "--until-idle").returncode == 0
    shown = run(tmp_path, agent_server, "show", "d").stdout
    assert "the user denied this call: not today" in shown and ANSWER in shown


def test_send_approve_all_runs_the_whole_turn_and_prints_the_answer(tmp_path, agent_server):
    sent = run(tmp_path, agent_server, "send", "--approve-all", "what time is it?")
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip() == ANSWER and "⚙ get_current_time" in sent.stderr


def test_approve_always_is_listed_and_ask_again_takes_it_back(tmp_path, agent_server):
    assert run(tmp_path, agent_server, "send", "--session", "a", "what time is it?").returncode == 3
    [waiting] = json.loads(run(tmp_path, agent_server, "approvals", "--json").stdout)
    ok = run(tmp_path, agent_server, "approve", str(waiting["job"]), "--always")
    assert ok.returncode == 0 and "runs without asking in session" in ok.stdout
    listed = run(tmp_path, agent_server, "approvals").stdout
    assert "no tool call waits" in listed and "run without asking" in listed and "get_current_time" in listed
    back = run(tmp_path, agent_server, "ask-again", "get_current_time", "a")
    assert back.returncode == 0 and "get_current_time asks again" in back.stdout, back.stderr
    assert "run without asking" not in run(tmp_path, agent_server, "approvals").stdout
    twice = run(tmp_path, agent_server, "ask-again", "get_current_time")
    assert twice.returncode == 2 and "was not approved always in every session" in twice.stderr
