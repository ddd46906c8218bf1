"""Every subcommand as a subprocess against a temp database and the local test server."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys

import pytest

from chatplex.core.models import SessionStatus
from chatplex.tui.app import ChatplexApp
from tests.fakeserver import Fault
from tests.helpers import env_with_src, make_config, provider_for
from tests.tui.helpers import until


@pytest.fixture
def cx(tmp_path, fake):
    """Run chatplex with a config pointing at a fresh fake-server scenario."""
    s = fake.scenario(reply="Hello from the test server.")
    (tmp_path / "config.toml").write_text(
        f'[providers.fake]\nkind = "openai"\nbase_url = "{s.url}"\nmodel = "fake-small"\napi_key_env = ""\n'
    )

    def run(*args: str, stdin: str | None = None, code: int = 0) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "chatplex", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env_with_src(),
            timeout=60,
            cwd=tmp_path,
        )
        assert result.returncode == code, (args, result.returncode, result.stdout, result.stderr)
        if code == 2:
            assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
        return result

    run.scenario = s  # type: ignore[attr-defined]
    return run


def js(result: subprocess.CompletedProcess):
    return json.loads(result.stdout)


def test_send_streams_the_reply_and_reads_stdin(cx):
    out = cx("send", "hi there")
    assert out.stdout == "Hello from the test server.\n"
    out = cx("send", "--json", "-", stdin="from stdin")
    data = js(out)
    assert data["state"] == "complete" and data["content"] == "Hello from the test server."
    assert cx.scenario.requests[-1]["messages"][-1]["content"] == "from stdin"
    # an existing session by title keeps its history on the wire
    cx("send", "--session", "hi there", "and again")
    assert [m["content"] for m in cx.scenario.requests[-1]["messages"]] == [
        "hi there",
        "Hello from the test server.",
        "and again",
    ]


def test_send_failure_exits_non_zero_with_one_line(cx, fake, tmp_path):
    bad = fake.scenario(faults=[Fault(status=401)] * 3)
    (tmp_path / "config.toml").write_text(
        f'[providers.bad]\nkind = "openai"\nbase_url = "{bad.url}"\nmodel = "m"\napi_key_env = ""\n'
    )
    out = cx("send", "hello", code=1)
    assert out.stderr.strip().splitlines() == [
        (
            "chatplex: bad: HTTP 401: injected error 401 (the server wants an API key: "
            "set api_key_env in [providers.bad] of config.toml)"
        )
    ]


def test_sessions_show_rename_rm(cx):
    cx("send", "first question")
    cx("send", "--system", "be brief", "second question")
    sessions = js(cx("sessions", "--json"))
    assert [s["title"] for s in sessions] == ["second question", "first question"]
    assert sessions[0]["status"] == "waiting" and sessions[0]["system_prompt"] == "be brief"
    table = cx("sessions").stdout
    assert "first question" in table and "status" in table
    shown = js(cx("show", "first question", "--json"))
    assert [(m["role"], m["content"]) for m in shown["messages"]] == [
        ("user", "first question"),
        ("assistant", "Hello from the test server."),
    ]
    assert "[you]\nfirst question" in cx("show", str(sessions[1]["id"])).stdout
    cx("rename", "first question", "Renamed")
    assert js(cx("show", "Renamed", "--json"))["session"]["title"] == "Renamed"
    cx("rm", "Renamed")
    assert [s["title"] for s in js(cx("sessions", "--json"))] == ["second question"]


def test_show_prints_model_text_without_terminal_escapes(cx, fake, tmp_path):
    evil = fake.scenario(reply="\x1b[2J\x1b]0;pwned\x07 [bold]x[/]")
    (tmp_path / "config.toml").write_text(
        f'[providers.e]\nkind = "openai"\nbase_url = "{evil.url}"\nmodel = "m"\napi_key_env = ""\n'
    )
    cx("send", "--json", "hi")
    out = cx("show", "hi").stdout
    assert "\x1b" not in out and "\x07" not in out and "␛[2J" in out and "[bold]x[/]" in out
    assert js(cx("show", "hi", "--json"))["messages"][1]["content"] == evil.reply  # JSON is exact


def test_jobs_list_stats_cancel_retry(cx):
    cx("send", "--no-wait", "queued one")
    jobs = js(cx("jobs", "--json"))
    assert len(jobs) == 1 and jobs[0]["state"] == "queued" and jobs[0]["priority"] == "LOW"
    assert js(cx("jobs", "stats", "--json"))["counts"] == {"queued/LOW": 1}
    cx("jobs", "cancel", str(jobs[0]["id"]))
    assert js(cx("jobs", "--state", "cancelled", "--json"))[0]["id"] == jobs[0]["id"]
    retried = js(cx("jobs", "retry", str(jobs[0]["id"]), "--json"))
    assert js(cx("jobs", "--state", "queued", "--json"))[0]["id"] == retried["job"]
    assert js(cx("worker", "--until-idle", "--json")) == {"complete": 1, "error": 0, "interrupted": 0}
    assert js(cx("show", "queued one", "--json"))["messages"][1]["content"] == "Hello from the test server."
    assert "succeeded/LOW" in cx("jobs", "stats").stdout


def test_bad_input_is_one_line_and_exit_2(cx, tmp_path):
    cx("send", "x")
    assert "no session 'nope'" in cx("show", "nope", code=2).stderr
    assert "no session '99'" in cx("rm", "99", code=2).stderr
    assert "no job 42" in cx("jobs", "cancel", "42", code=2).stderr
    assert "bad duration '30 days'" in cx("prune", "--older-than", "30 days", code=2).stderr
    assert "cannot write" in cx("export", "x", "-o", str(tmp_path / "missing" / "x.md"), code=2).stderr
    assert not (tmp_path / "missing").exists()
    (tmp_path / "broken.json").write_text('{"format": "chatplex-session/1", "session": {"title": 3}')
    assert "not valid JSON" in cx("import", str(tmp_path / "broken.json"), code=2).stderr
    (tmp_path / "wrong.json").write_text('{"format": "chatplex-session/1", "session": {"title": 3}, "messages": []}')
    assert "session.title must be a string" in cx("import", str(tmp_path / "wrong.json"), code=2).stderr
    assert len(js(cx("sessions", "--json"))) == 1  # nothing half-imported


def test_export_import_round_trip_and_markdown(cx, tmp_path):
    cx("send", "--system", "you are a pirate", "a ```fenced``` question")
    cx("send", "--session", "a ```fenced``` question", "follow-up")
    cx("export", "1", "--format", "json", "-o", str(tmp_path / "a.json"))
    imported = js(cx("import", str(tmp_path / "a.json"), "--json"))
    again = cx("export", str(imported["session"]), "--format", "json").stdout
    assert again == (tmp_path / "a.json").read_text()
    md = cx("export", "1").stdout
    assert md.startswith("# a ```fenced``` question\n") and "## You" in md and "you are a pirate" in md
    assert "````text\na ```fenced``` question\n````" in md  # the user's fence cannot break out


def test_prune_vacuum_backup(cx, tmp_path):
    cx("send", "old")
    db = tmp_path / "chatplex.db"
    with sqlite3.connect(db) as con:
        con.execute("UPDATE jobs SET finished_at = finished_at - 40*86400")
        con.execute("UPDATE sessions SET updated_at = updated_at - 40*86400")
    assert js(cx("prune", "--older-than", "30d", "--json")) == {"jobs": 1, "sessions": 0}
    assert len(js(cx("sessions", "--json"))) == 1  # messages stay unless asked
    assert js(cx("prune", "--older-than", "30d", "--messages", "--json")) == {"jobs": 0, "sessions": 1}
    assert js(cx("sessions", "--json")) == []
    assert "vacuumed" in cx("vacuum").stdout
    cx("send", "kept")
    backup = tmp_path / "copy.db"
    cx("backup", str(backup))
    with sqlite3.connect(backup) as con:
        assert con.execute("SELECT content FROM messages WHERE role='user'").fetchall() == [("kept",)]
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert "exists; pass --force" in cx("backup", str(backup), code=2).stderr


def test_doctor_reports_each_check(cx, fake, tmp_path, monkeypatch):
    good = cx.scenario
    (tmp_path / "config.toml").write_text(
        f'[providers.good]\nkind = "openai"\nbase_url = "{good.url}"\nmodel = "fake-small"\napi_key_env = ""\n'
        f'[providers.down]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\napi_key_env = ""\n'
        f'[providers.keyless]\nkind = "anthropic"\nmodel = "m"\napi_key_env = "CHATPLEX_TEST_NO_KEY"\n'
    )
    out = cx("doctor", code=1).stdout.splitlines()
    assert out[0].startswith("✓ config: ") and out[1].startswith("✓ database: ") and out[2] == "✓ integrity: ok"
    assert out[3].startswith("✓ provider good: ") and "reachable and authorised" in out[3]
    assert out[4].startswith("✗ provider down: ") and "is the server running?" in out[4]
    assert out[5].startswith("✗ provider keyless: CHATPLEX_TEST_NO_KEY is not set")


def test_config_path_init_show(cx, tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    path.unlink()
    assert cx("config", "path").stdout.strip() == str(path)
    cx("config", "init")
    text = path.read_text()
    for provider in ("ollama", "openai", "anthropic", "openrouter", "vllm"):
        assert provider in text
    assert "exists; pass --force" in cx("config", "init", code=2).stderr
    path.write_text(
        text.replace("# [providers.openai]\n# kind", "[providers.openai]\nkind").replace(
            '# model = "gpt-4o-mini"\n# api_key_env', 'model = "gpt-4o-mini"\napi_key_env'
        )
    )
    env_key = "sk-very-secret-value"
    result = subprocess.run(
        [sys.executable, "-m", "chatplex", "config", "show", "--json"],
        capture_output=True,
        text=True,
        env={**env_with_src(), "OPENAI_API_KEY": env_key},
        cwd=tmp_path,
    )
    shown = json.loads(result.stdout)
    assert shown["providers"]["openai"]["api_key"] == "****** (set)" and env_key not in result.stdout


async def test_cli_and_the_tui_at_once(cx, tmp_path):
    """`chatplex send` and `sessions` from another process while the TUI's coordinator runs."""
    s = cx.scenario
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()

        async def run(*args: str) -> tuple[int, str]:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "chatplex",
                *args,
                cwd=tmp_path,
                env=env_with_src(),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, _ = await proc.communicate()
            return proc.returncode or 0, out.decode()

        (a, out_a), (b, out_b) = await asyncio.gather(
            run("send", "one from the shell"), run("send", "--no-wait", "two from the shell")
        )
        assert a == 0 and out_a == "Hello from the test server.\n" and b == 0
        await until(pilot, lambda: len(app.sidebar.sessions) == 2, timeout=60)
        await until(
            pilot, lambda: all(r.status is SessionStatus.WAITING for r in app.sidebar.sessions.values()), timeout=60
        )
        code, listed = await run("sessions", "--json")
        assert code == 0 and {x["title"] for x in json.loads(listed)} == {"one from the shell", "two from the shell"}
    assert len(s.requests) == 2


def test_send_works_on_its_own_session_only(cx):
    """A waiting `send` must not pick up other sessions' queued work: it would abandon it
    half-streamed when it exits (found as a reply generated twice with the TUI running)."""
    cx("send", "--no-wait", "background job")
    out = cx("send", "my question")
    assert out.stdout == "Hello from the test server.\n"
    jobs = {j["session"]: j for j in js(cx("jobs", "--json"))}
    background = next(j for j in jobs.values() if j["state"] != "succeeded")
    assert background["state"] == "queued" and background["attempts"] == 0
    assert len(cx.scenario.requests) == 1


async def test_send_from_a_script_does_not_demote_the_session_the_app_looks_at(cx, tmp_path):
    """`chatplex send` used to call focus(), which re-ranks every job in the database: the
    app's focused session's waiting reply became LOW behind the script's work."""
    from chatplex.config import load
    from chatplex.core.coordinator import Coordinator
    from chatplex.core.models import Priority

    config = load(tmp_path / "config.toml", tmp_path / "chatplex.db")
    app_side = await Coordinator.open(config)  # the app, not running workers: its job waits
    try:
        looked_at = await app_side.create_session("looked at")
        await app_side.focus(looked_at.id)
        _, _, job = await app_side.send(looked_at.id, "mine first")
        assert job.priority is Priority.HIGH
        await asyncio.to_thread(cx, "--db", str(tmp_path / "chatplex.db"), "send", "--no-wait", "script work")
        await asyncio.to_thread(cx, "--db", str(tmp_path / "chatplex.db"), "send", "--title", "other", "wait")
        assert (await app_side.store.get_job(job.id)).priority is Priority.HIGH
    finally:
        await app_side.stop()
