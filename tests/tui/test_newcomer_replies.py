"""What a newcomer meets: a first run with no server, replies cut by the token limit or by
a full context, toasts, the sidebar after a cancel, search, the model picker, help."""

from __future__ import annotations

import asyncio

import pytest

from chatplex.config import ProviderConfig, config_path
from chatplex.core.models import JobState, MessageState, SessionStatus
from chatplex.providers.llamacpp import free_port
from chatplex.tui.app import ChatplexApp
from chatplex.tui.screens.modals import ConfirmScreen
from tests.helpers import make_config, provider_for
from tests.tui.helpers import Toasts, dialog, until
from tests.tui.test_app import key, shown, status, type_and_send


def state_line(reply) -> str:
    return reply.query_one(".state").content.plain


def last_reply(app):
    return max(app.chat.replies.values(), key=lambda r: r.message.id, default=None)


def streamed(app, text: str) -> bool:
    reply = last_reply(app)
    return reply is not None and reply.length == len(text)


# ---------------------------------------------------------------- first run, nothing listening
async def test_first_run_with_no_server_says_what_to_do_at_once_in_the_reply(tmp_path):
    """No config file and no Ollama: the chat pane says so before anything is sent, and the
    first refused connection fails at once (not after ~15 s of retries) with the way out in
    the reply box itself, not in a toast over it."""
    down = ProviderConfig(
        name="ollama", kind="ollama", base_url=f"http://127.0.0.1:{free_port()}/v1", model="llama3.2", max_concurrency=1
    )
    app = ChatplexApp(make_config(tmp_path, down))  # path None: no config file; 5 attempts
    toasts = Toasts()
    async with app.run_test(size=(120, 40), message_hook=toasts) as pilot:
        await app.ready.wait()
        first = await shown(pilot)
        assert "No session yet" in first and "chatplex config init" in first
        await type_and_send(pilot, "hello?")
        await until(pilot, lambda: status(app, app.current) is SessionStatus.ERROR)
        [job] = await app.coord.jobs()
        assert job.state is JobState.FAILED and job.attempts == 1
        box = state_line(last_reply(app))
        assert "cannot connect to" in box and "is the server running?" in box
        for words in (
            "ollama serve",
            "chatplex config init",
            str(config_path()),
            "openai",
            "anthropic",
            "ctrl+r to retry",
        ):
            assert words in box, words
        assert "chatplex config init" in await shown(pilot)
        assert not toasts.shown()  # nothing covers it


async def test_with_a_config_file_a_refused_connection_has_no_first_run_text(tmp_path, fake):
    down = ProviderConfig(name="mine", kind="ollama", base_url=f"http://127.0.0.1:{free_port()}/v1", model="llama3.2")
    config = make_config(tmp_path, down, max_attempts=1)
    config.path = tmp_path / "config.toml"
    app = ChatplexApp(config)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.ready.wait()
        await type_and_send(pilot, "hello?")
        await until(pilot, lambda: status(app, app.current) is SessionStatus.ERROR)
        box = state_line(last_reply(app))
        assert "cannot connect to" in box and "config init" not in box and box.endswith("ctrl+r to retry")


# ---------------------------------------------------------------- token limit and full context
def tiny(server, kind: str, **kw) -> ProviderConfig:
    return ProviderConfig(
        name="tiny", kind="llamacpp-server" if kind == "openai" else kind, base_url=server.url, model="tiny", **kw
    )


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_reply_cut_at_the_token_limit_says_so_and_what_helps(tiny_server, tmp_path, kind):
    """llama.cpp's server (both of its APIs) with max_tokens = 2: finish "length" / "max_tokens"."""
    app = ChatplexApp(make_config(tmp_path, tiny(tiny_server, kind, max_tokens=2)))
    async with app.run_test(size=(120, 30)) as pilot:
        await app.ready.wait()
        await type_and_send(pilot, "tell me a long story")
        await until(pilot, lambda: status(app, app.current) is SessionStatus.WAITING)
        reply = last_reply(app)
        assert reply.message.state is MessageState.COMPLETE
        assert reply.message.finish_reason == ("length" if kind == "openai" else "max_tokens")
        line = state_line(reply)
        assert line.startswith("✂ cut at the token limit")
        assert "raise max_tokens in [providers.tiny] of config.toml" in line and "ctrl+r" in line
        assert "cut at the token limit" in await shown(pilot)


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_full_context_does_not_advertise_retry(tiny_server, tmp_path, kind):
    """A prompt past llama.cpp's context (2,048 tokens a slot) is refused with
    exceed_context_size_error; retrying sends the same prompt, so the box says what helps."""
    app = ChatplexApp(make_config(tmp_path, tiny(tiny_server, kind)))
    async with app.run_test(size=(120, 30)) as pilot:
        await app.ready.wait()
        # the first message: the window is not known yet (a send never waits to ask for it)
        await type_and_send(pilot, "word " * 6000)
        await until(pilot, lambda: status(app, app.current) is SessionStatus.ERROR)
        line = state_line(last_reply(app))
        assert "context" in line and "HTTP 400" in line
        assert "ctrl+r" not in line and "retry" in line  # "retrying fails the same way"
        assert "a new session (ctrl+n)" in line and "a shorter message" in line and "bigger context" in line


async def test_retry_on_a_finished_reply_asks_first(fake, tmp_path):
    s = fake.scenario(reply="a finished answer")
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await type_and_send(pilot, "question")
        await until(pilot, lambda: status(app, app.current) is SessionStatus.WAITING)
        await dialog(pilot, "ctrl+r")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # no: the reply stays
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert len(s.requests) == 1 and len(await app.coord.jobs()) == 1
        assert last_reply(app).message.state is MessageState.COMPLETE
        await dialog(pilot, "ctrl+r")
        await pilot.press("y")
        await until(pilot, lambda: len(s.requests) == 2 and status(app, app.current) is SessionStatus.WAITING)
        assert last_reply(app).text == "a finished answer"


async def test_retry_on_a_failed_reply_does_not_ask(fake, tmp_path):
    from tests.fakeserver import Fault

    s = fake.scenario(reply="second time", faults=[Fault(status=500)])
    app = ChatplexApp(make_config(tmp_path, provider_for(s), max_attempts=1))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await type_and_send(pilot, "question")
        await until(pilot, lambda: status(app, app.current) is SessionStatus.ERROR)
        await key(pilot, "ctrl+r")
        await until(pilot, lambda: status(app, app.current) is SessionStatus.WAITING)
        assert not isinstance(app.screen, ConfirmScreen) and last_reply(app).text == "second time"


# ---------------------------------------------------------------- toasts and the status bar
async def test_background_replies_arriving_together_are_one_toast_at_a_time(fake, tmp_path):
    """Four background replies finish at once: never more than one toast over the chat; the
    first says which, the next (once it has gone) "3 replies arrived" and names them."""
    import threading

    from tests.fakeserver import Fault

    release = threading.Event()
    s = fake.scenario(reply="done and dusted", faults=[Fault(hold_after=1, hold=release) for _ in range(4)])
    app = ChatplexApp(make_config(tmp_path, provider_for(s), workers=4))
    app.NOTIFICATION_TIMEOUT = 3
    recorded = Toasts()
    async with app.run_test(size=(120, 30), message_hook=recorded) as pilot:
        await app.ready.wait()
        ids = [(await app.coord.create_session(f"Essay {n}")).id for n in range(4)]
        for sid in ids:
            await app.coord.send(sid, "write it")
        await app.focus_session((await app.coord.create_session("Here")).id)
        await until(pilot, lambda: len(s.requests) == 4 and s.active == 4)
        release.set()
        seen, most = [], 0

        def toasts() -> bool:
            nonlocal most
            now = [(n.title, n.message) for n in recorded.shown()]
            most = max(most, len(now))
            seen.extend(t for t in now if t not in seen)
            return any("3 replies arrived" in title for title, _ in seen)

        await until(pilot, toasts, timeout=90)
        assert most == 1, seen
        assert seen[0][1] == "done and dusted" and seen[0][0].startswith("Essay ")
        [(_, names)] = [t for t in seen if "replies arrived" in t[0]]
        assert sorted([seen[0][0], *names.split(", ")]) == [f"Essay {n}" for n in range(4)]


async def test_the_status_bar_notice_clears_after_a_while(fake, tmp_path, monkeypatch):
    from chatplex.tui import app as app_module

    monkeypatch.setattr(app_module, "NOTICE_SECONDS", 0.3, raising=False)
    s = fake.scenario(reply="background answer")
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    async with app.run_test(size=(120, 30)) as pilot:
        await app.ready.wait()
        away = (await app.coord.create_session("Away")).id
        await app.focus_session((await app.coord.create_session("Here")).id)
        await app.coord.send(away, "go")
        await until(pilot, lambda: "Away: background answer" in app.status.notice)
        await until(pilot, lambda: app.status.notice == "")


# ---------------------------------------------------------------- small things
async def test_the_sidebar_row_of_a_cancelled_reply_says_so(fake, tmp_path):
    """It was blank (a new session) or kept the reply before (an older one)."""
    from tests.fakeserver import Fault

    s = fake.scenario(reply="one two three four", faults=[Fault(hang_after=2), Fault(hang_after=2)])
    app = ChatplexApp(make_config(tmp_path, provider_for(s), workers=1))
    async with app.run_test(size=(120, 30)) as pilot:
        await app.ready.wait()
        await type_and_send(pilot, "tell me a story")
        sid = app.current
        await until(pilot, lambda: streamed(app, "one two"))
        await key(pilot, "escape")  # cancelled mid-stream: its partial text
        await until(pilot, lambda: app.sidebar.sessions[sid].preview == "⏹ one two")
        await type_and_send(pilot, "and again")  # the session moves on: the mark goes
        # (not "wait for 'one two' to stream": the cancelled reply above already shows it)
        await until(pilot, lambda: app.sidebar.sessions[sid].preview == "")
        await until(pilot, lambda: app.sidebar.sessions[sid].status is SessionStatus.STREAMING)  # the worker is busy
        other = (await app.coord.create_session("Queued behind it")).id
        await app.coord.send(other, "wait your turn")  # the only worker is busy
        await until(pilot, lambda: other in app.sidebar.sessions)
        await until(pilot, lambda: app.sidebar.sessions[other].status is SessionStatus.QUEUED)
        assert await app.coord.cancel(other)  # cancelled before it started
        await until(pilot, lambda: app.sidebar.sessions[other].preview == "⏹ cancelled")
        from chatplex.tui.widgets.sidebar import row

        assert "⏹ cancelled" in row(app.sidebar.sessions[other], 40).plain


async def test_deleting_a_session_focuses_its_neighbour_not_the_top(fake, tmp_path):
    app = ChatplexApp(make_config(tmp_path, provider_for(fake.scenario())))
    async with app.run_test(size=(120, 30)) as pilot:
        await app.ready.wait()
        for title in ("a", "b", "c", "d"):
            await pilot.press("ctrl+n")
            await app.coord.rename(app.current, title)
        await until(pilot, lambda: [app.sidebar.sessions[i].title for i in app.sidebar.order] == ["d", "c", "b", "a"])
        titles = {app.sidebar.sessions[i].title: i for i in app.sidebar.order}
        await app.focus_session(titles["c"])
        await dialog(pilot, "f8")
        await pilot.press("y")
        await until(pilot, lambda: titles["c"] not in app.sidebar.sessions)
        assert app.current == titles["b"]  # the row below took its place
        await app.focus_session(titles["a"])  # the last row: the one above
        await dialog(pilot, "f8")
        await pilot.press("y")
        await until(pilot, lambda: titles["a"] not in app.sidebar.sessions)
        assert app.current == titles["b"]
        assert app.sidebar.highlighted == app.sidebar.order.index(titles["b"])


async def test_search_shows_the_matching_line_and_opens_the_session_at_it(fake, tmp_path):
    from chatplex.core.db import Store
    from chatplex.core.models import Priority
    from chatplex.tui.widgets.chat import PAGE

    s = fake.scenario()
    config = make_config(tmp_path, provider_for(s))
    store = await Store.open(config.db_path)
    session = await store.create_session("Zoo notes", "fake", "fake-small")
    for i in range(60):  # 120 messages: the match is far above the newest page
        await store.create_turn(session.id, f"question {i}", Priority.LOW, 1)
        claimed = await store.claim("filler", 30)
        text = (
            f"answer {i}\nfirst line\nthe GIRAFFE eats leaves from tall trees\nlast line" if i == 5 else f"answer {i}"
        )
        await store.finish(claimed[0].id, "filler", "succeeded", text)
    await store.create_session("Other", "fake", "fake-small")
    await store.close()
    app = ChatplexApp(config)
    async with app.run_test(size=(110, 32)) as pilot:
        await app.ready.wait()
        await app.focus_session(session.id + 1)
        await dialog(pilot, "ctrl+f")
        await pilot.press(*"giraffe")
        from textual.widgets import OptionList

        results = app.screen.query_one("#results", OptionList)
        await until(pilot, lambda: results.option_count == 1)
        prompt = results.get_option_at_index(0).prompt.plain
        assert prompt == "Zoo notes\n  the GIRAFFE eats leaves from tall trees"
        assert "the GIRAFFE eats leaves" in await shown(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: app.current == session.id)
        found = next(r for r in app.chat.replies.values() if "GIRAFFE" in r.message.content)
        assert found.has_class("-found") and len(app.chat.children) > PAGE
        chat = app.chat
        await until(pilot, lambda: chat.scroll_y <= found.virtual_region.y <= chat.scroll_y + chat.size.height)
        deadline = asyncio.get_running_loop().time() + 60
        while "the GIRAFFE eats leaves" not in await shown(pilot):  # its Markdown is laid out after a frame
            assert asyncio.get_running_loop().time() < deadline, "the match never appeared on screen"
            await asyncio.sleep(0.05)


def test_a_long_matching_line_is_cut_around_the_match():
    from chatplex.tui.search import WIDTH, snippet

    text = "intro\n" + "x" * 200 + " NEEDLE " + "y" * 200 + "\nafter"
    start = text.index("NEEDLE")
    line, a, b = snippet(text, start, start + 6)
    assert line[a:b] == "NEEDLE" and line.startswith("…") and line.endswith("…")
    assert len(line) == WIDTH + 2 and "\n" not in line


async def test_the_model_picker_filters_as_you_type_and_marks_the_current_model(fake, tmp_path):
    from textual.widgets import OptionList

    s = fake.scenario(reply="r", models=["llama3.2", "qwen2.5-coder", "qwen2.5-7b", "mistral"])
    app = ChatplexApp(make_config(tmp_path, provider_for(s, model="mistral")))
    async with app.run_test(size=(110, 32)) as pilot:
        await app.ready.wait()
        await pilot.press("ctrl+n")
        await dialog(pilot, "ctrl+l")
        options = app.screen.query_one(OptionList)
        await until(pilot, lambda: options.option_count == 4)

        def listed() -> list[str]:
            return [options.get_option_at_index(i).prompt.plain for i in range(options.option_count)]

        assert "● fake · mistral  current" in listed() and "  fake · llama3.2" in listed()
        assert options.get_option_at_index(options.highlighted).id == "fake\tmistral"
        await pilot.press(*"qwen")
        await until(pilot, lambda: len(listed()) == 2)
        assert listed() == ["  fake · qwen2.5-7b", "  fake · qwen2.5-coder"]
        await pilot.press("down", "enter")  # the second of the two
        await until(pilot, lambda: app.sidebar.sessions[app.current].model == "qwen2.5-coder")


async def test_the_palette_lists_each_command_once(fake, tmp_path):
    """Each entry was its title twice ("Cancel reply" / "Cancel reply (escape)")."""
    app = ChatplexApp(make_config(tmp_path, provider_for(fake.scenario())))
    async with app.run_test(size=(110, 60)) as pilot:
        await app.ready.wait()
        commands = list(app.get_system_commands(app.screen))
        titles = [c.title for c in commands]
        assert len(titles) == len(set(titles)) and "Help" in titles
        for c in commands:  # the second line says something the title does not
            assert c.help != c.title and not c.help.startswith(c.title + " ("), c
        retry = next(c for c in commands if c.title == "Retry")
        assert retry.help == "Generate the last reply again · ctrl+r"
        await pilot.press("ctrl+p")
        await until(pilot, lambda: "Cancel reply" in "\n".join(s.text for s in app.screen._compositor.render_strips()))
        screen = await shown(pilot)
        assert screen.count("Cancel reply") == 1 and "Stop the reply being generated" in screen


async def test_help_explains_the_marks_and_the_queue_arrows_and_lists_every_binding_id(fake, tmp_path):
    from textual.widgets import DataTable

    from chatplex.tui.app import KEYS

    config = make_config(tmp_path, provider_for(fake.scenario()))
    config.keys = {"new_session": "ctrl+t"}
    app = ChatplexApp(config)
    async with app.run_test(size=(110, 32)) as pilot:
        await app.ready.wait()
        await pilot.press("f1")
        await until(pilot, lambda: bool(app.screen.query(DataTable)))
        screen = await shown(pilot)
        for words in (
            "○ idle",
            "● your turn",
            "✖ failed",
            "‖ paused",
            "⏹ cancelled",
            "queue 2▲ 5▼",
            "▲ high priority (the session on screen",
            "▼ low",
            "[keys]",
        ):
            assert words in screen, words
        table = app.screen.query_one(DataTable)
        rows = {table.get_row_at(i)[2].plain: table.get_row_at(i)[0].plain for i in range(table.row_count)}
        assert {bid for bid, *_ in KEYS} <= set(rows)
        assert rows["new_session"] == "ctrl+t"  # the key as remapped


async def test_the_system_prompt_shows_at_the_top_of_the_chat_literally_and_folded(fake, tmp_path):
    from chatplex.tui.widgets.chat import SystemPrompt

    s = fake.scenario(reply="Arr.")
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    long_prompt = "You are a pirate [b]not bold[/b].\n" + "\n".join(f"Rule {n}: talk like one." for n in range(1, 9))
    async with app.run_test(size=(110, 32)) as pilot:
        await app.ready.wait()
        session = await app.coord.create_session("Pirate", system_prompt="Be brief.")
        await app.focus_session(session.id)
        await type_and_send(pilot, "hello")
        await until(pilot, lambda: status(app, session.id) is SessionStatus.WAITING)
        header = app.chat.query_one(SystemPrompt)
        assert app.chat.children[0] is header and header.content.plain == "Be brief."
        assert s.requests[0]["messages"][0] == {"role": "system", "content": "Be brief."}
        await app.coord.update_session(session.id, system_prompt=long_prompt)  # as F4 saves it
        await until(pilot, lambda: header.prompt == long_prompt)
        shown_text = header.content.plain
        assert shown_text.startswith("You are a pirate [b]not bold[/b].\nRule 1: talk like one.\nRule 2:")
        assert "Rule 3" not in shown_text and shown_text.endswith("⋯ 6 more lines — f4 shows it all")
        text = await shown(pilot)
        assert "System prompt" in text and "[b]not bold[/b]" in text
        await app.coord.update_session(session.id, system_prompt="")
        await until(pilot, lambda: not app.chat.query(SystemPrompt))
