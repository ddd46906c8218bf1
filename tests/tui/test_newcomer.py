"""Defects a newcomer meets in the first minutes: clicks, keys, dialogs, small terminals."""

from __future__ import annotations

from chatplex.tui.app import ChatplexApp
from chatplex.tui.widgets.sidebar import SessionList
from tests.helpers import make_config, provider_for
from tests.tui.helpers import dialog, until


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
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path), str(tui)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
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
        prompt = "Be brief. Use French."
        await until(pilot, lambda: app.sidebar.sessions[session.id].system_prompt == prompt)
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


# What ordinary terminals send without the kitty keyboard protocol: xterm's and VTE's (GNOME
# Terminal) defaults, which tmux (xterm-keys), iTerm2 and Windows Terminal follow.
LEGACY = (
    {f"ctrl+{c}": chr(ord(c) - 96) for c in "abdefgklnopqrstuvwxyz"}
    | {
        "ctrl+j": "\n",
        "enter": "\r",
        "escape": "\x1b",
        "tab": "\t",
        "up": "\x1b[A",
        "down": "\x1b[B",
        "right": "\x1b[C",
        "left": "\x1b[D",
        "ctrl+up": "\x1b[1;5A",
        "ctrl+down": "\x1b[1;5B",
        "ctrl+home": "\x1b[1;5H",
        "ctrl+end": "\x1b[1;5F",
        "pageup": "\x1b[5~",
        "pagedown": "\x1b[6~",
        "f1": "\x1bOP",
        "f2": "\x1bOQ",
        "f3": "\x1bOR",
        "f4": "\x1bOS",
        "f5": "\x1b[15~",
        "f6": "\x1b[17~",
        "f7": "\x1b[18~",
        "f8": "\x1b[19~",
        "f9": "\x1b[20~",
        "f12": "\x1b[24~",
        "plus": "+",
        "minus": "-",
        "equals_sign": "=",
    }
    | {c: c for c in "123456789abcdefghijklmnopqrstuvwxyz"}
    | {c: c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}  # shift+letter: the capital, everywhere
)
TMUX_PREFIX = "ctrl+b"  # arrives everywhere but in tmux, which keeps it


def parse(sequence: str) -> list[str]:
    """The keys Textual's own input parser makes of what the terminal sent."""
    from textual._xterm_parser import XTermParser

    parser = XTermParser()
    return [e.key for e in [*parser.feed(sequence), *parser.feed("")] if hasattr(e, "key")]


def test_every_key_chatplex_binds_or_shows_arrives_in_ordinary_terminals():
    """Alt+1 arrives as "¡" and Alt+Enter as Enter (Textual 8), so neither may be a key we
    offer; every bound or advertised key must be one the parser produces from real bytes."""
    from chatplex.tui import app as app_module
    from chatplex.tui.screens import dashboard, modals, queue
    from chatplex.tui.widgets.composer import Composer

    for name, sequence in LEGACY.items():
        assert parse(sequence) == [name]
    assert parse("\x1b1") == ["inverted_exclamation_mark"]  # Alt+1
    assert parse("\x1b\r") == ["enter"]  # Alt+Enter
    screens = [
        app_module.ChatplexApp,
        dashboard.DashboardScreen,
        queue.QueueScreen,
        Composer,
        modals.ConfirmScreen,
        modals.TextScreen,
        modals.PickerScreen,
        modals.SearchScreen,
        modals.HelpScreen,
        modals.ErrorScreen,
    ]
    for cls in screens:
        for binding in cls.BINDINGS:
            keys = binding.key.split(",")  # type: ignore[union-attr]
            assert all(k in LEGACY for k in keys), (cls.__name__, binding.key)
            assert set(keys) - {TMUX_PREFIX}, (cls.__name__, binding.key)
    app = app_module.ChatplexApp(make_config_none())
    for keys, _, _ in app.help_rows():
        for key in keys.replace("…", "/").split("/"):
            assert key.strip() in LEGACY, keys


def make_config_none():
    from pathlib import Path

    from chatplex.config import Config, ProviderConfig

    provider = ProviderConfig(name="p", kind="openai", base_url="http://127.0.0.1:9/v1", model="m")
    return Config(
        path=None, db_path=Path("unused.db"), log_dir=Path("unused"), providers={"p": provider}, default_provider="p"
    )


def test_readme_and_help_offer_no_key_that_does_not_arrive(fake, tmp_path):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    offered = readme.split("## Keys", 1)[1].strip().split("\n\n", 1)[0]  # its first paragraph
    assert "Alt+" not in offered and "Shift+Enter" not in offered
    for key in re.findall(r"\b(?:Ctrl\+[A-Za-z]+|F\d+|PgUp|PgDn)\b", offered):
        name = {"PgUp": "pageup", "PgDn": "pagedown"}.get(key, key.lower())
        assert name in LEGACY, key


async def test_help_shows_only_keys_that_arrive(fake, tmp_path):
    app = ChatplexApp(make_config(tmp_path, provider_for(fake.scenario())))
    async with app.run_test(size=(110, 90)) as pilot:
        await app.ready.wait()
        await pilot.press("f1")
        await pilot.pause()
        text = "\n".join(s.text for s in app.screen._compositor.render_strips()).lower()
        assert "ctrl+j" in text and "alt+" not in text and "shift+enter" not in text
        assert "ctrl+b / f9" in text and "pageup / pagedown" in text


async def test_a_tiles_number_opens_it_on_the_dashboard(fake, tmp_path):
    """Jump to session N: plain digits on the dashboard (Alt+digit never arrives)."""
    from chatplex.tui.screens.dashboard import DashboardScreen

    app = ChatplexApp(make_config(tmp_path, provider_for(fake.scenario())))
    async with app.run_test(size=(130, 36)) as pilot:
        await app.ready.wait()
        for title in ("one", "two", "three"):
            await app.coord.create_session(title)
        await until(pilot, lambda: len(app.sidebar.order) == 3)
        await app.focus_session(app.sidebar.order[0])
        await pilot.press("ctrl+o")
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        assert [t.border_title for t in screen.tiles.values()] == ["1", "2", "3"]
        await pilot.press("3")
        third = app.sidebar.order[2]
        await until(pilot, lambda: app.current == third and app.screen is app.screen_stack[0])


async def test_page_keys_in_the_composer_scroll_the_chat(fake, tmp_path):
    """PgUp/PgDn and Ctrl+Home/Ctrl+End scroll the transcript; the composer keeps focus."""
    from chatplex.core.db import Store
    from chatplex.core.models import Priority

    config = make_config(tmp_path, provider_for(fake.scenario()))
    store = await Store.open(config.db_path)
    session = await store.create_session("long", "fake", "fake-small")
    for i in range(6):
        await store.create_turn(session.id, f"question {i}", Priority.LOW, 1)
        claimed = await store.claim("filler", 30)
        answer = "\n\n".join(f"answer {i} line {n}" for n in range(8))
        await store.finish(claimed[0].id, "filler", "succeeded", answer)
    await store.close()
    app = ChatplexApp(config)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        chat, composer = app.chat, app.composer
        await until(pilot, lambda: chat.max_scroll_y > 0 and chat.scroll_y == chat.max_scroll_y)
        assert app.focused is composer
        await pilot.press("pageup")
        # against the end as it is now: the replies' Markdown fills in after the first frame,
        # and the view may have followed it down before the key (a busy machine)
        await until(pilot, lambda: chat.scroll_y < chat.max_scroll_y)
        await pilot.press("ctrl+home")
        await until(pilot, lambda: chat.scroll_y == 0)
        await pilot.press("pagedown")
        await until(pilot, lambda: chat.scroll_y > 0)
        await pilot.press("ctrl+end")
        await until(pilot, lambda: chat.scroll_y == chat.max_scroll_y)
        assert app.focused is composer and composer.text == ""


async def test_dashboard_keys_act_on_the_highlighted_tile_and_enter_still_opens(fake, tmp_path):
    """F2/F8 on the dashboard renamed/deleted the session open in the chat pane, and after
    a dialog from there Enter no longer opened a tile (the dialog's worker had cancelled the
    dashboard's: they shared an exclusive group)."""
    from chatplex.tui.screens.dashboard import DashboardScreen
    from chatplex.tui.screens.modals import TextScreen

    app = ChatplexApp(make_config(tmp_path, provider_for(fake.scenario())))
    async with app.run_test(size=(130, 36)) as pilot:
        await app.ready.wait()
        titles = ("open", "other", "doomed")
        ids = {title: (await app.coord.create_session(title)).id for title in titles}
        await until(pilot, lambda: len(app.sidebar.order) == 3)
        await app.focus_session(ids["open"])
        await pilot.press("ctrl+o")
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        screen.selected = ids["other"]
        await dialog(pilot, "f2")
        assert app.screen.query_one("#value").value == "other"
        await pilot.press(*"renamed", "enter")
        await until(pilot, lambda: app.sidebar.sessions[ids["other"]].title == "renamed")
        assert app.sidebar.sessions[ids["open"]].title == "open"
        assert app.screen is screen
        screen.selected = ids["doomed"]
        await dialog(pilot, "f8")
        await pilot.press("y")
        await until(pilot, lambda: ids["doomed"] not in app.sidebar.sessions)
        assert app.current == ids["open"] and ids["open"] in app.sidebar.sessions
        await until(pilot, lambda: app.screen is screen and ids["doomed"] not in screen.tiles)
        screen.selected = ids["other"]
        await pilot.press("enter")
        await until(pilot, lambda: app.current == ids["other"] and app.screen is app.screen_stack[0])
        assert not isinstance(app.screen, TextScreen)


async def test_queue_inspector_session_keys_act_on_the_highlighted_jobs_session(fake, tmp_path):
    from textual.widgets import DataTable

    from chatplex.core.models import SessionStatus
    from chatplex.tui.screens.queue import QueueScreen

    app = ChatplexApp(make_config(tmp_path, provider_for(fake.scenario(reply="done"))))
    async with app.run_test(size=(150, 36)) as pilot:
        await app.ready.wait()
        ids = {title: (await app.coord.create_session(title)).id for title in ("open", "worked")}
        await app.coord.send(ids["worked"], "hello")
        worked = ids["worked"]
        await until(pilot, lambda: app.sidebar.sessions[worked].status is SessionStatus.WAITING)
        await app.focus_session(ids["open"])
        await pilot.press("f3")
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        await until(pilot, lambda: bool(screen.jobs))
        [job] = screen.jobs.values()
        table = screen.query_one(DataTable)
        table.move_cursor(row=table.get_row_index(str(job.id)), animate=False)
        await dialog(pilot, "f2")
        assert app.screen.query_one("#value").value == "worked"
        await pilot.press(*"from the queue", "enter")
        await until(pilot, lambda: app.sidebar.sessions[ids["worked"]].title == "from the queue")
        assert app.sidebar.sessions[ids["open"]].title == "open" and app.screen is screen


async def test_a_small_terminal_keeps_room_for_the_chat_and_code_lines_wrap(fake, tmp_path):
    """At 60x20 the sidebar took 34 columns, and a code line longer than the pane was cut at
    its edge with nothing to say so."""
    from chatplex.core.models import SessionStatus
    from tests.tui.test_snapshots_sizes import LONG_CODE_REPLY

    app = ChatplexApp(make_config(tmp_path, provider_for(fake.scenario(reply=LONG_CODE_REPLY))))
    async with app.run_test(size=(60, 20)) as pilot:
        await app.ready.wait()
        session = await app.coord.create_session("Long code line")
        await app.focus_session(session.id)
        await app.coord.send(session.id, "Call it")
        await until(pilot, lambda: app.sidebar.sessions[session.id].status is SessionStatus.WAITING)
        await pilot.pause()
        assert app.query_one("#sidebar").outer_size.width <= 24
        app.chat.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        text = "\n".join(s.text for s in app.screen._compositor.render_strips())
        assert "THE_END)" in text and "print(result)" in text
        await pilot.press("f1")  # a 90-column dialog fits too
        assert app.screen.query_one(".dialog").outer_size.width <= 60
        await pilot.press("escape")
        await pilot.resize_terminal(120, 40)
        await until(pilot, lambda: app.query_one("#sidebar").outer_size.width == 34)


async def test_page_up_while_the_reply_streams_stays_where_the_reader_went(fake, tmp_path):
    """The chat pane follows a streaming reply to its end, until the user scrolls back: then
    new text must not pull the view down again (it did, at every delta, after PgUp)."""
    words = " ".join(f"word{i:04d}" for i in range(3000))
    s = fake.scenario(reply=words, token_delay=0.002, forever=True)
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        chat = app.chat
        session = await app.coord.create_session("long reply")
        await app.focus_session(session.id)
        await app.coord.send(session.id, "write a lot")
        await until(pilot, lambda: chat.max_scroll_y > 30 and chat.scroll_y == chat.max_scroll_y)
        await pilot.press("pageup")
        await until(pilot, lambda: chat.scroll_y < chat.max_scroll_y - 10)
        read_at, grown_to = chat.scroll_y, chat.max_scroll_y
        await until(pilot, lambda: chat.max_scroll_y > grown_to + 20)  # the reply went on meanwhile
        assert chat.scroll_y == read_at
        await pilot.press("ctrl+end")  # back at the end, the view follows the reply again
        await until(pilot, lambda: chat.scroll_y == chat.max_scroll_y)
        end = chat.max_scroll_y
        await until(pilot, lambda: chat.max_scroll_y > end + 5 and chat.scroll_y == chat.max_scroll_y)
