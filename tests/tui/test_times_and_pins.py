"""Message times (config show_times, or the palette's "Show message times"): on each box's
bottom edge, in local time; "14:02" today, the date before that week. And sessions pinned to
the top of the sidebar (the palette's "Pin this session")."""

from __future__ import annotations

import dataclasses
import sqlite3
import time

import pytest

from chatplex.core.db import Store
from chatplex.core.models import Priority
from chatplex.core.text import time_of
from chatplex.tui.app import ChatplexApp
from chatplex.tui.widgets.chat import ReplyMessage, UserMessage
from tests.helpers import make_config, provider_for
from tests.tui.helpers import still, until

WHEN = 1795000000.0  # 2026-11-18 11:06:40 UTC


@pytest.fixture(autouse=True)
def _utc(monkeypatch):
    still(monkeypatch)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_time_is_short_today_a_weekday_this_week_and_a_date_before():
    assert time_of(WHEN, now=WHEN + 60) == "11:06"
    assert time_of(WHEN, now=WHEN + 2 * 86400) == "Wed 11:06"
    assert time_of(WHEN, now=WHEN + 30 * 86400) == "2026-11-18 11:06"


async def a_conversation(config) -> None:
    async with await Store.open(config.db_path) as store:
        session = await store.create_session("Timed", "fake", "fake-small")
        await store.create_turn(session.id, "when was this?", Priority.LOW, 1)
        claimed = await store.claim("filler", 30)
        await store.finish(claimed[0].id, "filler", "succeeded", "a while ago")
    db = sqlite3.connect(config.db_path)
    with db:
        db.execute("UPDATE messages SET created_at=?", (WHEN,))
    db.close()


def timed_app(fake, tmp_path, shown: bool) -> ChatplexApp:
    config = make_config(tmp_path, provider_for(fake.scenario(reply="ok")))
    return ChatplexApp(dataclasses.replace(config, show_times=shown))


def subtitles(app) -> list[str]:
    return [str(w.border_subtitle) for w in app.chat.children if isinstance(w, UserMessage | ReplyMessage)]


async def test_show_times_puts_each_messages_time_on_its_box_and_the_palette_command_hides_them(fake, tmp_path):
    app = timed_app(fake, tmp_path, shown=True)
    await a_conversation(app.config)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await until(pilot, lambda: len(subtitles(app)) == 2)
        assert subtitles(app) == ["2026-11-18 11:06", "2026-11-18 11:06"]
        await app.run_action("show_times(False)")
        assert subtitles(app) == ["", ""]
        await app.run_action("show_times(True)")
        assert subtitles(app) == ["2026-11-18 11:06", "2026-11-18 11:06"]


def test_snapshot_message_times(snap_compare, fake, tmp_path):
    import asyncio

    app = timed_app(fake, tmp_path, shown=True)
    asyncio.run(a_conversation(app.config))

    async def run_before(pilot):
        await pilot.app.ready.wait()
        await until(pilot, lambda: len(subtitles(app)) == 2)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


async def test_a_pinned_session_stays_at_the_top_of_the_sidebar_until_unpinned(fake, tmp_path):
    from chatplex.tui.widgets.sidebar import row

    app = timed_app(fake, tmp_path, shown=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        c = app.coord
        old, middle, new = [(await c.create_session(name)).id for name in ("old", "middle", "new")]
        await until(pilot, lambda: app.sidebar.order == [new, middle, old])
        await app.focus_session(old)
        await app.run_action("pin(True)")
        await until(pilot, lambda: app.sidebar.order == [old, new, middle])
        assert "↑ old" in row(app.sidebar.sessions[old], 30).plain  # the row says it is pinned
        await c.send(middle, "news")  # more recent activity does not pass a pinned session
        await until(pilot, lambda: app.sidebar.order == [old, middle, new])
        assert [s.id for s in await c.store.list_sessions()][0] == old  # the CLI's order too
        await app.run_action("pin(False)")
        await until(pilot, lambda: app.sidebar.order[0] != old)
        assert not (await c.session(old)).pinned
