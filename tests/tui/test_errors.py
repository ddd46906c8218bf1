"""A failure in an action, handler, timer or worker is an error toast, never the end of the app
(which would interrupt every running session)."""

from __future__ import annotations

import inspect
import logging
import sqlite3

from chatplex.core.db import Store
from chatplex.core.models import SessionStatus
from chatplex.tui.app import ChatplexApp
from tests.helpers import make_config, provider_for
from tests.tui.helpers import Toasts, dialog, until


def error_toasts(toasts: Toasts) -> list[str]:
    return [str(n.message) for n in toasts.shown() if n.severity == "error"]


async def test_a_failing_export_is_an_error_toast_and_the_app_keeps_serving_keys(fake, tmp_path, caplog):
    config = make_config(tmp_path, provider_for(fake.scenario(reply="kept")))
    store = await Store.open(config.db_path)
    session = await store.create_session("from the far future", "fake", "fake-small")
    await store.close()
    with sqlite3.connect(config.db_path) as db:  # what a bad import or another tool could leave
        db.execute("UPDATE sessions SET created_at = 1e300 WHERE id = ?", (session.id,))
    target = tmp_path / "out.md"
    app = ChatplexApp(config)
    caplog.set_level(logging.ERROR, logger="chatplex.tui")
    toasts = Toasts()
    async with app.run_test(size=(100, 30), message_hook=toasts) as pilot:
        await app.ready.wait()
        assert app.current == session.id
        await dialog(pilot, "ctrl+s")
        app.screen.query_one("#value").value = str(target)
        await pilot.press("enter")
        await until(pilot, lambda: bool(error_toasts(toasts)))
        [toast] = error_toasts(toasts)
        assert toast.startswith("export failed — OverflowError") and "\n" not in toast
        assert any(r.name == "chatplex.tui" and r.exc_info and r.exc_info[0] is OverflowError for r in caplog.records)
        assert app.is_running and not target.exists()
        # still serving keys: typing reaches the composer, and a message still gets its reply
        app.composer.focus()
        await pilot.press(*"still here", "enter")
        await until(pilot, lambda: app.sidebar.sessions[session.id].status is SessionStatus.WAITING)
        assert app.chat.replies and next(iter(app.chat.replies.values())).text == "kept"
        await pilot.press("ctrl+n")
        assert app.current != session.id and app.is_running
    assert app.return_code in (0, None)


def test_every_entry_point_textual_calls_in_tui_is_guarded():
    """Actions, message handlers (on_*, @on), watchers, and whatever is handed to a timer or
    call_later: an exception escaping any of them would end the app. New ones must be wrapped
    in `chatplex.tui.errors.guarded` too."""
    import importlib
    import pkgutil
    import re

    from textual.dom import DOMNode

    import chatplex.tui

    unguarded = []
    for info in pkgutil.walk_packages(chatplex.tui.__path__, "chatplex.tui."):
        module = importlib.import_module(info.name)
        if info.ispkg:
            continue
        source = inspect.getsource(module)
        scheduled = set(
            re.findall(
                r"(?:set_interval|set_timer|call_later|call_after_refresh|call_next)"
                r"\([^)]*?self\.(\w+)",
                source,
            )
        )
        for cls in vars(module).values():
            if not (inspect.isclass(cls) and issubclass(cls, DOMNode) and cls.__module__ == module.__name__):
                continue
            for name, fn in vars(cls).items():
                if not inspect.isfunction(fn):
                    continue
                entry = (
                    name.startswith(("action_", "on_", "_on_", "watch_"))
                    or name in scheduled
                    or hasattr(fn, "_textual_on")
                )
                if entry and not getattr(fn, "guarded", False):
                    unguarded.append(f"{cls.__name__}.{name}")
    assert not unguarded
    from chatplex.tui.app import ChatplexApp

    assert ChatplexApp.action_export.guarded and ChatplexApp._tick.guarded  # the scan sees workers and timers
