"""The app and the CLI show the same session and the same job the same way: one exporter
(core.export), one duration formatter and one preview function (core.text)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from chatplex.core.db import Store
from chatplex.core.models import Session, SessionStatus
from chatplex.tui.app import ChatplexApp
from chatplex.tui.screens.dashboard import tile_text
from chatplex.tui.screens.queue import job_row
from tests.helpers import env_with_src, make_config, provider_for
from tests.tui.helpers import dialog, until


def chatplex(tmp_path: Path, *args: str) -> str:
    """The real CLI on the test's database, in a child process; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "chatplex", "--db", str(tmp_path / "chatplex.db"), *args],
        capture_output=True,
        text=True,
        env=env_with_src(),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_ctrl_s_in_the_app_and_chatplex_export_write_the_same_markdown(fake, tmp_path):
    config = make_config(tmp_path, provider_for(fake.scenario(reply="unused")))
    store = await Store.open(config.db_path)
    session = await store.import_session(
        {"title": "both ways", "provider": "fake", "model": "fake-small", "system_prompt": "be `so`"},
        [
            {"role": "system", "content": "an imported system turn"},
            {"role": "user", "content": "a ```fenced``` question"},
            {"role": "assistant", "content": "**bold** answer", "model": "fake-large"},
            {"role": "user", "content": "again"},
            {"role": "assistant", "content": "", "state": "error"},
            {"role": "assistant", "content": "half", "state": "interrupted", "error": "cancelled"},
        ],
    )
    await store.close()
    from_cli = tmp_path / "cli.md"
    chatplex(tmp_path, "export", str(session.id), "-o", str(from_cli))
    from_app = tmp_path / "app.md"
    app = ChatplexApp(config)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        assert app.current == session.id
        await dialog(pilot, "ctrl+s")
        app.screen.query_one("#value").value = str(from_app)
        await pilot.press("enter")
        await until(pilot, from_app.exists)  # written whole: a temporary file, then a rename
    md = from_app.read_text(encoding="utf-8")
    assert md == from_cli.read_text(encoding="utf-8")
    assert "## System" in md and "> ⚠ failed\n" in md and "> ⏸ interrupted: cancelled" in md
    assert [p.name for p in tmp_path.glob(".*.tmp")] == []  # no temporary file left behind


async def test_chatplex_jobs_and_the_queue_inspector_count_a_wait_alike(fake, tmp_path):
    """`jobs` printed "" for a queued job's wait and "3725.0s" for a finished one, where F3
    said "62m 05s": both now count it as F3 does, in one format."""
    s = fake.scenario(reply="unused")
    (tmp_path / "config.toml").write_text(
        f'[providers.fake]\nkind = "openai"\nbase_url = "{s.url}"\nmodel = "fake-small"\napi_key_env = ""\n'
    )
    chatplex(tmp_path, "send", "--no-wait", "wait for it")
    with sqlite3.connect(tmp_path / "chatplex.db") as db:  # queued an hour and two minutes ago
        db.execute("UPDATE jobs SET created_at = created_at - 3725")
    table = chatplex(tmp_path, "jobs")
    store = await Store.open(tmp_path / "chatplex.db")
    [job] = await store.jobs()
    await store.close()
    row = job_row(job, {}, time.time())
    assert str(row[5]) == "1h 02m" and str(row[6]) == ""  # waited; not run yet
    [line] = [line for line in table.splitlines() if line.split()[0] == str(job.id)]
    assert " 1h 02m " in line and "queued" in line, table


def test_a_dashboard_tile_marks_a_cut_preview_as_the_sidebar_does():
    session = Session(1, "t", "fake", "m", status=SessionStatus.WAITING, preview="word " * 40)
    last = tile_text(session, None, 38).plain.splitlines()[-1]
    assert last.endswith("…") and len(last) == 76
