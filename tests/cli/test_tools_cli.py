"""`chatplex tools` and the MCP lines of `chatplex doctor`, against the real mcp-server-time."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import env_with_src
from tests.tools.helpers import time_server


def run(tmp_path, *args: str) -> subprocess.CompletedProcess:
    time = time_server()
    (tmp_path / "config.toml").write_text(
        '[providers.a]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\napi_key_env = ""\n'
        f"[mcp.time]\ncommand = {json.dumps(time.command)}\nargs = {json.dumps(time.args)}\n"
        '[mcp.time.tools]\n"convert_*" = "allow"\n'
        f"[mcp.ghost]\ncommand = {json.dumps(str(tmp_path / 'no-such-server'))}\nenabled = false\n"
    )
    argv = [sys.executable, "-m", "chatplex", "--config", str(tmp_path / "config.toml"), "--db", str(tmp_path / "x.db")]
    return subprocess.run([*argv, *args], capture_output=True, text=True, env=env_with_src(), timeout=120)


def test_tools_lists_each_server_its_state_and_what_each_tool_needs(tmp_path):
    result = run(tmp_path, "tools", "--json")
    assert result.returncode == 1, result.stderr  # one server failed to start
    time, ghost = json.loads(result.stdout)
    assert (time["server"], time["state"], time["enabled"]) == ("time", "ready", True)
    assert {t["name"]: t["approval"] for t in time["tools"]} == {"get_current_time": "ask", "convert_time": "allow"}
    assert (ghost["state"], ghost["enabled"]) == ("failed", False) and "no-such-server was not found" in ghost["error"]
    human = run(tmp_path, "tools")
    assert "get_current_time" in human.stdout and "was not found" in human.stdout


def test_doctor_checks_every_mcp_server(tmp_path):
    result = run(tmp_path, "doctor", "--json")
    checks = {c["check"]: c for c in json.loads(result.stdout)}
    assert checks["mcp time"]["ok"] and "get_current_time" in checks["mcp time"]["detail"]
    assert not checks["mcp ghost"]["ok"] and "was not found" in checks["mcp ghost"]["detail"]


def test_send_completes_without_a_server_that_cannot_start_and_says_why(tmp_path, fake):
    s = fake.scenario(reply="fine without it")
    (tmp_path / "config.toml").write_text(
        f'[providers.a]\nkind = "openai"\nbase_url = "{s.url}"\nmodel = "m"\napi_key_env = ""\n'
        f"[mcp.broken]\ncommand = {json.dumps(sys.executable)}\n"
        'args = ["-c", "import sys; sys.stderr.write(\'boom: no token configured\'); sys.exit(3)"]\n'
    )
    argv = [sys.executable, "-m", "chatplex", "--config", str(tmp_path / "config.toml"), "--db", str(tmp_path / "x.db")]
    result = subprocess.run([*argv, "send", "hi"], capture_output=True, text=True, env=env_with_src(), timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "fine without it\n"
    assert "without the tools of broken" in result.stderr and "boom: no token configured" in result.stderr


def test_tools_use_sets_a_sessions_servers_and_tools_session_shows_them(tmp_path):
    import asyncio

    from chatplex.core.db import Store

    async def create() -> int:
        async with await Store.open(tmp_path / "x.db") as store:
            return (await store.create_session("picky", "a", "m")).id

    sid = str(asyncio.run(create()))
    shown = json.loads(run(tmp_path, "tools", "--session", sid, "--json").stdout)
    assert {e["server"]: e["session"]["uses"] for e in shown} == {"time": True, "ghost": False}  # config's default
    chose = run(tmp_path, "tools", "--session", sid, "--use", "ghost", "--json")
    assert chose.returncode == 0, chose.stderr
    assert json.loads(chose.stdout) == {"session": int(sid), "servers": ["ghost"], "chosen": True}
    shown = json.loads(run(tmp_path, "tools", "--session", sid, "--json").stdout)
    assert {e["server"]: (e["session"]["uses"], e["session"]["chosen"]) for e in shown} == {
        "time": (False, True),
        "ghost": (True, True),
    }
    wrong = run(tmp_path, "tools", "--session", sid, "--use", "tyme")
    assert wrong.returncode == 2 and "no MCP server named 'tyme'" in wrong.stderr and "time" in wrong.stderr
    assert run(tmp_path, "tools", "--use", "time").returncode == 2  # which session?
    back = run(tmp_path, "tools", "--session", sid, "--use", "default")
    assert back.returncode == 0 and "time (config.toml's default)" in back.stdout
