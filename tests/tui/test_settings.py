"""A session's settings dialog (issue 17, item 8): Ctrl+G shows its provider, model and
tools and edits its temperature, max tokens, reasoning effort and system prompt; what it saves
goes into the session's next request (seen at the fake server), an empty field gives the
provider's back, and a bad value is refused in the dialog with everything kept."""

from __future__ import annotations

import dataclasses

import pytest
from textual.widgets import Input, Select, Static, TextArea

from chatplex.config import ProviderConfig
from chatplex.core.coordinator import checked_settings
from chatplex.core.models import SessionStatus
from chatplex.tui.app import ChatplexApp
from chatplex.tui.screens.settings import SettingsScreen
from tests.helpers import make_config, provider_for
from tests.tui.helpers import dialog, until
from tests.tui.test_app import status


def settings_app(fake, tmp_path, **provider) -> tuple[ChatplexApp, object]:
    s = fake.scenario(reply="as you wish")
    pc: ProviderConfig = provider_for(s, **provider)
    return ChatplexApp(make_config(tmp_path, pc)), s


async def ask(app, pilot, s, text: str) -> dict:
    """Send `text` in the session on screen; the request the server got."""
    before = len(s.requests)
    await app.coord.send(app.current, text)
    await until(pilot, lambda: len(s.requests) > before and status(app, app.current) is SessionStatus.WAITING)
    return s.requests[-1]


def test_the_coordinator_checks_the_settings():
    assert checked_settings({"temperature": 1, "max_tokens": 10, "reasoning_effort": ""}) == {
        "temperature": 1.0,
        "max_tokens": 10,
    }
    for bad, said in (
        ({"temperature": 2.5}, "from 0 to 2"),
        ({"temperature": True}, "from 0 to 2"),
        ({"max_tokens": 0}, "whole number"),
        ({"max_tokens": 1.5}, "whole number"),
        ({"reasoning_effort": "max"}, "off, low, medium, high"),
        ({"top_k": 3}, "no session setting top_k"),
    ):
        with pytest.raises(ValueError, match=said):
            checked_settings(bad)


async def test_what_the_dialog_saves_goes_into_the_next_request_and_empty_is_the_providers(fake, tmp_path):
    app, s = settings_app(fake, tmp_path, max_tokens=999)
    async with app.run_test(size=(110, 36)) as pilot:
        await app.ready.wait()
        await app.focus_session((await app.coord.create_session("Tuned")).id)
        plain = await ask(app, pilot, s, "before")
        assert "temperature" not in plain and plain["max_tokens"] == 999 and "reasoning_effort" not in plain
        await dialog(pilot, "ctrl+g")
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        about = " ".join(str(w.render()) for w in screen.query(".about"))
        assert "fake · fake-small" in about and "tools from: none" in about and "max_tokens 999" in about
        screen.query_one("#temperature", Input).value = "0.3"
        screen.query_one("#max_tokens", Input).value = "256"
        screen.query_one("#effort", Select).value = "low"
        screen.query_one("#prompt", TextArea).text = "Answer in French."
        await pilot.press("ctrl+s")  # the dialog's Ctrl+S, not the app's export
        await until(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        tuned = await ask(app, pilot, s, "after")
        assert (tuned["temperature"], tuned["max_tokens"], tuned["reasoning_effort"]) == (0.3, 256, "low")
        assert tuned["messages"][0] == {"role": "system", "content": "Answer in French."}
        await dialog(pilot, "ctrl+g")  # it shows what was saved; emptied, the provider's again
        screen = app.screen
        assert screen.query_one("#temperature", Input).value == "0.3"
        screen.query_one("#temperature", Input).value = ""
        screen.query_one("#effort", Select).clear()
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        back = await ask(app, pilot, s, "again")
        assert "temperature" not in back and "reasoning_effort" not in back and back["max_tokens"] == 256
        assert (await app.coord.session(app.current)).settings == {"max_tokens": 256}


async def test_a_bad_value_is_refused_in_the_dialog_with_what_was_typed_kept(fake, tmp_path):
    app, s = settings_app(fake, tmp_path)
    async with app.run_test(size=(110, 36)) as pilot:
        await app.ready.wait()
        await app.focus_session((await app.coord.create_session("Careful")).id)
        await dialog(pilot, "ctrl+g")
        screen = app.screen
        screen.query_one("#temperature", Input).value = "hot"
        screen.query_one("#prompt", TextArea).text = "kept"
        await pilot.press("ctrl+s")
        problem = screen.query_one("#problem", Static)
        await until(pilot, lambda: "temperature must be a number" in str(problem.render()))
        screen.query_one("#temperature", Input).value = "3"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "from 0 to 2, not 3" in str(problem.render()))
        assert app.screen is screen and screen.query_one("#prompt", TextArea).text == "kept"
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        assert (await app.coord.session(app.current)).settings == {}


def test_snapshot_the_settings_dialog(snap_compare, fake, tmp_path):
    from tests.tools.helpers import faulty_server

    s = fake.scenario(reply="ok")
    config = make_config(tmp_path, provider_for(s, max_tokens=4096))
    app = ChatplexApp(dataclasses.replace(config, mcp={"faulty": faulty_server()}))

    async def run_before(pilot):
        await app.ready.wait()
        session = await app.coord.create_session("Translator")
        await app.coord.set_settings(session.id, temperature=0.2, reasoning_effort="high")
        await app.coord.update_session(session.id, system_prompt="Translate into French.")
        await app.focus_session(session.id)
        await dialog(pilot, "ctrl+g")

    assert snap_compare(app, terminal_size=(110, 36), run_before=run_before)


async def test_the_sessions_temperature_wins_over_the_providers_params(fake, tmp_path):
    """[providers.X.params] temperature is the provider's; a session's own setting wins."""
    app, s = settings_app(fake, tmp_path, params={"temperature": 0.7})
    async with app.run_test(size=(110, 36)) as pilot:
        await app.ready.wait()
        sid = (await app.coord.create_session("Cold")).id
        await app.focus_session(sid)
        assert (await ask(app, pilot, s, "first"))["temperature"] == 0.7
        await app.coord.set_settings(sid, temperature=0.2, max_tokens=64)
        tuned = await ask(app, pilot, s, "second")
        assert (tuned["temperature"], tuned["max_tokens"]) == (0.2, 64)
