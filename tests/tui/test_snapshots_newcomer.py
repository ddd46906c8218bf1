"""Snapshots of what a newcomer meets (see test_snapshots.py for how they stay deterministic):
the first run with no server, a reply cut at the token limit under a system prompt, and a
full context."""

from __future__ import annotations

import pytest
from textual.app import App

from chatplex.config import ProviderConfig
from chatplex.core.models import SessionStatus
from chatplex.tui.app import ChatplexApp
from tests.fakeserver import Fault
from tests.helpers import make_config, provider_for
from tests.tui.helpers import still, until

SIZE = (110, 32)
# llama.cpp's own answer to a prompt past its context
CONTEXT_FULL = {
    "error": {
        "code": 400,
        "type": "exceed_context_size_error",
        "n_prompt_tokens": 30023,
        "n_ctx": 2048,
        "message": "request (30023 tokens) exceeds the available context size (2048 tokens), try increasing it",
    }
}


@pytest.fixture(autouse=True)
def _still(monkeypatch):
    still(monkeypatch)
    monkeypatch.setattr(App, "NOTIFICATION_TIMEOUT", 120)
    monkeypatch.setenv("CHATPLEX_CONFIG", "/home/you/.config/chatplex/config.toml")  # shown, never read


def test_first_run_with_no_server(snap_compare, tmp_path):
    # port 9 (discard) on loopback: nothing listens, and the URL in the text stays the same
    down = ProviderConfig(name="ollama", kind="ollama", base_url="http://127.0.0.1:9/v1", model="llama3.2")
    app = ChatplexApp(make_config(tmp_path, down))

    async def run_before(pilot):
        await pilot.app.ready.wait()
        session = await app.coord.create_session("First question")
        await app.focus_session(session.id)
        await app.coord.send(session.id, "hello, anyone?")
        await until(pilot, lambda: app.sidebar.sessions[session.id].status is SessionStatus.ERROR)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_first_start_with_no_config(snap_compare, tmp_path):
    down = ProviderConfig(name="ollama", kind="ollama", base_url="http://localhost:11434/v1", model="llama3.2")
    app = ChatplexApp(make_config(tmp_path, down))
    assert snap_compare(app, terminal_size=SIZE, run_before=lambda pilot: app.ready.wait())


def test_reply_cut_at_the_token_limit_under_a_system_prompt(snap_compare, fake, tmp_path):
    s = fake.scenario(reply="Once upon a time a ship set sail, and its crew", finish="length")
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    prompt = (
        "You are a storyteller for children.\nKeep every story gentle.\n"
        "End with a question.\nNever mention [b]markup[/b].\nUse short words."
    )

    async def run_before(pilot):
        await pilot.app.ready.wait()
        session = await app.coord.create_session("Bedtime story", system_prompt=prompt)
        await app.focus_session(session.id)
        await app.coord.send(session.id, "Tell me a story about a ship")
        await until(pilot, lambda: app.sidebar.sessions[session.id].status is SessionStatus.WAITING)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_context_full(snap_compare, fake, tmp_path):
    s = fake.scenario(faults=[Fault(status=400, body=CONTEXT_FULL)])
    app = ChatplexApp(make_config(tmp_path, provider_for(s, "local")))

    async def run_before(pilot):
        await pilot.app.ready.wait()
        session = await app.coord.create_session("Long chat")
        await app.focus_session(session.id)
        await app.coord.send(session.id, "and one more thing…")
        await until(pilot, lambda: app.sidebar.sessions[session.id].status is SessionStatus.ERROR)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
