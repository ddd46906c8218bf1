"""Archived sessions (issue 17, item 7): put away from the palette or the CLI, they leave the
sidebar (the row below takes the place of the one on screen), stay searchable, and come back
from "Archived sessions…", from a search result, or with a new message; a restart keeps
them away."""

from __future__ import annotations

from textual.widgets import Input, OptionList

from chatplex.core.models import SessionStatus
from chatplex.tui.app import ChatplexApp
from chatplex.tui.screens.modals import PickerScreen, SearchScreen
from tests.helpers import make_config, provider_for
from tests.tui.helpers import Toasts, finished_turns, until
from tests.tui.test_app import status


def titles(app) -> list[str]:
    return [app.sidebar.sessions[sid].title for sid in app.sidebar.order]


async def test_archiving_the_session_on_screen_hides_it_and_shows_the_next_one(fake, tmp_path):
    s = fake.scenario(reply="back again")
    config = make_config(tmp_path, provider_for(s))
    for title in ("Oldest", "Middle", "Newest"):
        await finished_turns(config.db_path, title, [("about " + title.lower(), "noted")])
    app = ChatplexApp(config)
    async with app.run_test(size=(110, 30)) as pilot:
        await app.ready.wait()
        assert titles(app) == ["Newest", "Middle", "Oldest"]
        middle = app.sidebar.order[1]
        await app.focus_session(middle)
        await app.run_action("archive")
        await until(pilot, lambda: titles(app) == ["Newest", "Oldest"])
        assert app.sidebar.sessions[app.current].title == "Oldest"  # the row that took its place
        assert (await app.coord.session(middle)).archived
        # a new message (here from a script) brings it back among the others
        await app.coord.send(middle, "one more thing")
        await until(pilot, lambda: "Middle" in titles(app) and status(app, middle) is SessionStatus.WAITING)
        assert not (await app.coord.session(middle)).archived


async def test_archived_sessions_come_back_from_the_palette_picker_and_stay_away_after_a_restart(fake, tmp_path):
    s = fake.scenario(reply="hello")
    config = make_config(tmp_path, provider_for(s))
    for title in ("Keep", "Put away"):
        await finished_turns(config.db_path, title, [("q", "a")])
    app = ChatplexApp(config)
    async with app.run_test(size=(110, 30)) as pilot:
        await app.ready.wait()
        await app.focus_session(app.sidebar.order[0])  # "Put away", the newest
        await app.run_action("archive")
        await until(pilot, lambda: titles(app) == ["Keep"])
    again = ChatplexApp(config)
    toasts = Toasts()
    async with again.run_test(size=(110, 30), message_hook=toasts) as pilot:
        await again.ready.wait()
        assert titles(again) == ["Keep"]  # still away after a restart
        await again.run_action("archived")
        await until(pilot, lambda: isinstance(again.screen, PickerScreen) and again.screen.focused is not None)
        await until(pilot, lambda: again.screen.query_one("OptionList").option_count == 1)
        await pilot.press("enter")
        await until(pilot, lambda: "Put away" in titles(again))
        assert again.sidebar.sessions[again.current].title == "Put away"  # and shown
        await again.run_action("archived")
        await until(pilot, lambda: any("No session is archived" in n.message for n in toasts.shown()))


async def test_a_search_finds_an_archived_session_and_opening_it_restores_it(fake, tmp_path):
    s = fake.scenario(reply="hello")
    config = make_config(tmp_path, provider_for(s))
    await finished_turns(config.db_path, "Recipes", [("how long to boil an egg", "nine minutes")])
    await finished_turns(config.db_path, "Other", [("q", "a")])
    app = ChatplexApp(config)
    async with app.run_test(size=(110, 30)) as pilot:
        await app.ready.wait()
        recipes = next(sid for sid in app.sidebar.order if app.sidebar.sessions[sid].title == "Recipes")
        await app.coord.update_session(recipes, archived=True)  # as `chatplex archive` does
        await until(pilot, lambda: titles(app) == ["Other"])
        await app.run_action("search")
        await until(pilot, lambda: isinstance(app.screen, SearchScreen) and app.screen.focused is not None)
        app.screen.query_one("#query", Input).value = "boil an egg"
        results = app.screen.query_one("#results", OptionList)
        await until(
            pilot, lambda: results.option_count == 1 and "archived" in str(results.get_option_at_index(0).prompt)
        )
        await pilot.press("enter")
        await until(pilot, lambda: app.current == recipes and "Recipes" in titles(app))
        assert not (await app.coord.session(recipes)).archived


def test_snapshot_the_archived_sessions_picker(snap_compare, fake, tmp_path):
    import asyncio

    s = fake.scenario(reply="hello")
    config = make_config(tmp_path, provider_for(s))
    for title in ("Kept", "Trip plans", "Old draft"):
        asyncio.run(finished_turns(config.db_path, title, [("q", "a")]))
    app = ChatplexApp(config)

    async def run_before(pilot):
        await app.ready.wait()
        for sid in [sid for sid in app.sidebar.order if app.sidebar.sessions[sid].title != "Kept"]:
            await app.coord.update_session(sid, archived=True)
        await until(pilot, lambda: titles(app) == ["Kept"])
        await app.run_action("archived")
        await until(pilot, lambda: isinstance(app.screen, PickerScreen) and app.screen.focused is not None)
        await until(pilot, lambda: app.screen.query_one("OptionList").option_count == 2)

    assert snap_compare(app, terminal_size=(110, 30), run_before=run_before)
