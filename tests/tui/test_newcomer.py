"""Defects a newcomer meets in the first minutes: clicks, keys, dialogs, small terminals."""

from __future__ import annotations

from chatplex.tui.app import ChatplexApp
from chatplex.tui.widgets.sidebar import SessionList
from tests.conftest import make_config, provider_for
from tests.tui.conftest import until


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
