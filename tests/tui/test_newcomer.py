"""Defects a newcomer meets in the first minutes: clicks, keys, dialogs, small terminals."""

from __future__ import annotations

from chatplex.tui.app import ChatplexApp
from chatplex.tui.widgets.sidebar import SessionList
from tests.conftest import make_config, provider_for
from tests.tui.conftest import dialog, until


async def test_clicking_the_sidebar_scrollbar_scrolls_it(fake, tmp_path):
    """`SessionList.animate = True` hid Widget.animate(): the scrollbar's page-down called
    it and the app died with "'bool' object is not callable"."""
    app = ChatplexApp(make_config(tmp_path, provider_for(fake.scenario())))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.ready.wait()
        for i in range(40):
            await app.coord.create_session(f"session {i}")
        await until(pilot, lambda: len(app.sidebar.order) == 40)
        await pilot.pause()
        sidebar = app.sidebar
        assert sidebar.max_scroll_y > 0 and sidebar.scroll_y == 0
        x = sidebar.size.width - 1  # the vertical scrollbar, below its thumb
        await pilot.click(SessionList, offset=(x, sidebar.size.height - 2))
        await until(pilot, lambda: sidebar.scroll_y > 0)
        assert app.is_running and app.failures.count == 0


def test_tui_type_checks_so_no_textual_method_is_shadowed(tmp_path):
    """mypy sees a class attribute or method that hides one of Textual's (`animate = True`,
    `remove(session_id)`): DESIGN.md relies on it to catch them."""
    import subprocess
    import sys
    from pathlib import Path

    tui = Path(__file__).resolve().parents[2] / "src" / "chatplex" / "tui"
    result = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path), str(tui)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout


async def test_ctrl_s_saves_the_system_prompt_and_typing_appends(fake, tmp_path):
    """The F4 dialog says "Ctrl+S saves", but the app's priority Ctrl+S (export) won and
    opened the export dialog; and the cursor started at the beginning of the old prompt."""
    from textual.widgets import TextArea

    from chatplex.tui.screens.modals import TextScreen

    app = ChatplexApp(make_config(tmp_path, provider_for(fake.scenario())))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        session = await app.coord.create_session("Prompted")
        await app.coord.update_session(session.id, system_prompt="Be brief.")
        await app.focus_session(session.id)
        await dialog(pilot, "f4")
        assert isinstance(app.screen.focused, TextArea)
        await pilot.press(*" Use French.", "ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, TextScreen))
        await until(pilot, lambda: app.sidebar.sessions[session.id].system_prompt == "Be brief. Use French.")
        assert app.screen is app.screen_stack[0]  # no export dialog took its place


async def test_keys_of_an_open_dialog_win_over_app_keys(fake, tmp_path):
    """In any modal, the app's own keys step aside: F1 closes help instead of stacking a
    second one; Ctrl+N does not start a session behind a confirm dialog."""
    from textual.screen import ModalScreen

    from chatplex.tui.screens.modals import HelpScreen

    app = ChatplexApp(make_config(tmp_path, provider_for(fake.scenario())))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await pilot.press("ctrl+n")
        first = app.current
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        assert not isinstance(app.screen, ModalScreen) and len(app.screen_stack) == 1
        await dialog(pilot, "f8")
        await pilot.press("ctrl+n", "ctrl+o", "f3")
        assert isinstance(app.screen, ModalScreen) and len(app.screen_stack) == 2
        assert app.sidebar.order == [first]
        await pilot.press("n")
        assert len(app.screen_stack) == 1
        # and from the command palette, the app's commands still run
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, ModalScreen))
        await pilot.press(*"New session")
        await pilot.pause()
        await pilot.press("enter")
        await until(pilot, lambda: len(app.sidebar.order) == 2)
