"""The chat at a small (60x20) and a large (120x40) terminal, with a code block whose lines
are longer than the pane (snapshots under snapshots/test_snapshots_sizes/)."""

from __future__ import annotations

import pytest
from textual.app import App

from chatplex.core.models import SessionStatus
from chatplex.tui.app import ChatplexApp
from tests.helpers import make_config, provider_for
from tests.tui.helpers import still, until

LONG_CODE_REPLY = (
    "Use this:\n\n```python\nresult = some_function(first_argument, second_argument, "
    "third_argument, fourth_argument, THE_END)\nprint(result)\n```\n\nDone."
)


@pytest.fixture(autouse=True)
def _still(monkeypatch):
    still(monkeypatch)
    monkeypatch.setattr(App, "NOTIFICATION_TIMEOUT", 120)


@pytest.mark.parametrize("size", [(60, 20), (120, 40)], ids=["60x20", "120x40"])
def test_long_code_lines_and_sidebar_at_small_and_large_sizes(snap_compare, fake, tmp_path, size):
    app = ChatplexApp(make_config(tmp_path, provider_for(fake.scenario(reply=LONG_CODE_REPLY))))

    async def run_before(pilot):
        await pilot.app.ready.wait()
        app.composer.cursor_blink = False
        for title in ("Older chat about trains", "Another one"):
            await app.coord.create_session(title)
        session = await app.coord.create_session("Long code line")
        await app.focus_session(session.id)
        await app.coord.send(session.id, "Call it")
        await until(pilot, lambda: app.sidebar.sessions[session.id].status is SessionStatus.WAITING)
        await pilot.pause()
        app.chat.scroll_end(animate=False, immediate=True)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)
