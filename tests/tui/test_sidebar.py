"""The session list as a virtual list: with thousands of sessions only the rows on screen
are formatted, and keys, clicks and scrolling still reach the right session."""

from __future__ import annotations

import pytest

from chatplex.core.models import SessionStatus
from chatplex.tui.app import ChatplexApp
from chatplex.tui.widgets import sidebar as sidebar_module
from chatplex.tui.widgets.sidebar import ROW_HEIGHT, SessionList
from tests.helpers import make_config, provider_for
from tests.tui.helpers import until

MANY = 2000


async def _many_sessions(config) -> None:
    from chatplex.core.db import Store

    store = await Store.open(config.db_path)
    try:
        for i in range(MANY):
            await store.create_session(f"session {i}", "fake", "fake-small")
    finally:
        await store.close()


@pytest.fixture
def formatted(monkeypatch) -> list[int]:
    """The id of every session whose row is formatted (sidebar.row), in order."""
    seen: list[int] = []
    real = sidebar_module.row

    def counting(session, *args, **kwargs):
        seen.append(session.id)
        return real(session, *args, **kwargs)

    monkeypatch.setattr(sidebar_module, "row", counting)
    return seen


def _title_on_line(sidebar: SessionList, y: int) -> str:
    """What the first line of a row reads on screen, minus its mark."""
    return sidebar.render_line(y).text.strip()[2:]


async def test_only_the_rows_on_screen_are_formatted_and_keys_reach_the_right_session(fake, tmp_path, formatted):
    config = make_config(tmp_path, provider_for(fake.scenario()))
    await _many_sessions(config)
    app = ChatplexApp(config)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await pilot.pause()
        sidebar = app.sidebar
        order = sidebar.order
        titles = {sid: s.title for sid, s in sidebar.sessions.items()}
        assert len(order) == MANY and titles[order[0]] == f"session {MANY - 1}"
        page = sidebar.scrollable_content_region.height // ROW_HEIGHT
        on_screen = -(-sidebar.scrollable_content_region.height // ROW_HEIGHT)
        # 2,000 sessions listed, one screenful formatted (the OptionList formatted all 2,000)
        assert set(formatted) <= set(order[:on_screen]), len(set(formatted))

        sidebar.focus()
        await pilot.press("down", "down", "enter")
        await until(pilot, lambda: app.current == order[2])
        sidebar.focus()
        await pilot.press("end")
        await pilot.pause()
        assert sidebar.highlighted == MANY - 1 and sidebar.scroll_y == sidebar.max_scroll_y
        last_line = sidebar.scrollable_content_region.height - ROW_HEIGHT
        assert _title_on_line(sidebar, last_line) == titles[order[-1]]
        await pilot.press("enter")
        await until(pilot, lambda: app.current == order[-1])
        sidebar.focus()
        await pilot.press("pageup")
        assert sidebar.highlighted == MANY - 1 - page
        await pilot.press("home", "pagedown", "enter")
        await until(pilot, lambda: app.current == order[page])
        # after a visit to the top, the bottom and a page: still only rows that were on screen
        assert len(set(formatted)) <= 3 * on_screen, len(set(formatted))

        # scrolled to an odd line, the top line on screen is the second line of row 500
        sidebar.scroll_to(y=ROW_HEIGHT * 500 + 1, animate=False)
        await pilot.pause()
        assert _title_on_line(sidebar, 1) == titles[order[501]]
        await pilot.click(SessionList, offset=(4, 0))
        await until(pilot, lambda: app.current == order[500])
        assert sidebar.scroll_y == ROW_HEIGHT * 500  # the row clicked came wholly into view
        await pilot.click(SessionList, offset=(4, 3))  # the second line of the next row
        await until(pilot, lambda: app.current == order[501])
        assert sidebar.highlighted == 501

        # the scrollbar, and the very corner: they scroll or do nothing, never raise
        region = sidebar.scrollable_content_region
        before = sidebar.scroll_y
        await pilot.click(SessionList, offset=(sidebar.size.width - 1, sidebar.size.height - 1))
        await until(pilot, lambda: sidebar.scroll_y > before)
        await pilot.click(SessionList, offset=(region.width - 1, region.height - 1))
        await pilot.pause()
        assert app.is_running and app.failures.count == 0


async def test_a_change_moves_its_row_and_redraws_only_that_row(fake, tmp_path, formatted):
    config = make_config(tmp_path, provider_for(fake.scenario()))
    await _many_sessions(config)
    app = ChatplexApp(config)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await pilot.pause()
        sidebar = app.sidebar
        bottom = sidebar.order[-1]
        await app.coord.send(bottom, "hello again")  # the oldest session is active again
        await until(pilot, lambda: sidebar.sessions[bottom].status is SessionStatus.WAITING)
        await pilot.pause()
        assert sidebar.order[0] == bottom and _title_on_line(sidebar, 0).startswith("session 0")
        assert len(sidebar.order) == MANY and sorted(sidebar.order) == sorted(sidebar.sessions)
        formatted.clear()
        top = sidebar.order[1]
        await app.coord.rename(top, "renamed in place")
        await until(pilot, lambda: sidebar.sessions[top].title == "renamed in place")
        await pilot.pause()
        assert _title_on_line(sidebar, ROW_HEIGHT) == "renamed in place"
        assert set(formatted) == {top}  # that row alone was formatted again
        await app.coord.delete_session(top)
        await until(pilot, lambda: top not in sidebar.sessions)
        assert len(sidebar.order) == MANY - 1 and top not in sidebar.order
        assert app.failures.count == 0


async def test_a_click_below_the_last_row_does_nothing_and_hover_marks_the_row(fake, tmp_path):
    app = ChatplexApp(make_config(tmp_path, provider_for(fake.scenario())))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        for title in ("a", "b", "c"):
            await app.coord.create_session(title)
        await until(pilot, lambda: len(app.sidebar.order) == 3)
        await pilot.pause()
        sidebar = app.sidebar
        shown = app.current
        await pilot.click(SessionList, offset=(4, 3 * ROW_HEIGHT + 2))  # blank: no row there
        await pilot.click(SessionList, offset=(0, sidebar.size.height - 1))
        await pilot.pause()
        assert app.current == shown and app.failures.count == 0

        def background(y: int) -> object:
            return next(iter(sidebar.render_line(y))).style.bgcolor

        plain = background(ROW_HEIGHT)  # neither highlighted nor under the mouse
        await pilot.hover(SessionList, offset=(4, ROW_HEIGHT + 1))
        await until(pilot, lambda: background(ROW_HEIGHT) != plain)
        assert background(ROW_HEIGHT + 1) == background(ROW_HEIGHT) and background(2 * ROW_HEIGHT) == plain
        await pilot.click(SessionList, offset=(4, ROW_HEIGHT + 1))
        await until(pilot, lambda: app.current == sidebar.order[1])
