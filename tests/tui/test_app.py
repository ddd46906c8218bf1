"""The TUI driven with Textual's pilot against real sockets: what a user sees and can do."""

from __future__ import annotations

from chatplex.core.db import Store
from chatplex.core.models import JobState, MessageState, SessionStatus
from chatplex.tui.app import ChatplexApp
from chatplex.tui.widgets.chat import PAGE, ReplyMessage, UserMessage
from chatplex.tui.widgets.composer import Composer
from tests.fakeserver import Fault
from tests.helpers import make_config, provider_for
from tests.tui.helpers import Toasts, dialog, finished_turns, until


async def shown(pilot) -> str:
    """What the terminal shows, as plain text, once the app has rendered."""
    await pilot.pause()
    return "\n".join(strip.text for strip in pilot.app.screen._compositor.render_strips())


def status(app, sid):
    return app.sidebar.sessions[sid].status


async def type_and_send(pilot, text: str) -> None:
    """Type into the composer and press Enter, and return once the message is in the chat
    (the composer sends an Enter once it knows no pasted keys follow it). The key goes in as
    an event without waiting for the app to go idle (pilot.press would wait for the whole
    reply to stream)."""
    from textual import events

    app = pilot.app
    shown = len(app.chat.query(UserMessage))
    app.composer.focus()
    app.composer.insert(text)
    app.composer.post_message(events.Key("enter", "\r"))
    await until(
        pilot, lambda: app.composer.text == "" and app.current is not None and len(app.chat.query(UserMessage)) > shown
    )


async def key(pilot, name: str) -> None:
    """A key press while replies stream (see type_and_send)."""
    pilot.app.simulate_key(name)
    await pilot.pause()


async def test_send_and_see_the_reply(fake, tmp_path):
    s = fake.scenario(reply="Hello **there** friend")
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await type_and_send(pilot, "hi")
        await until(pilot, lambda: app.current is not None and status(app, app.current) is SessionStatus.WAITING)
        replies = list(app.chat.query(ReplyMessage))
        assert len(replies) == 1 and replies[0].text == "Hello **there** friend"
        assert [w.message.content for w in app.chat.query(UserMessage)] == ["hi"]
        assert "Hello there friend" in await shown(pilot)
        assert app.composer.text == ""


async def test_background_reply_badge_notification_and_full_transcript(fake, tmp_path):
    slow = fake.scenario(reply=" ".join(f"w{i}" for i in range(60)), token_delay=0.02)
    app = ChatplexApp(make_config(tmp_path, provider_for(slow)))
    toasts = Toasts()
    async with app.run_test(size=(100, 30), message_hook=toasts) as pilot:
        await app.ready.wait()
        await type_and_send(pilot, "background work")
        first = app.current
        await until(pilot, lambda: app.chat.replies and next(iter(app.chat.replies.values())).length > 0)
        await key(pilot, "ctrl+n")  # switch away while it streams
        assert app.current != first
        await until(pilot, lambda: status(app, first) is SessionStatus.WAITING)
        row = app.sidebar.sessions[first]
        assert row.unread == 1 and row.preview.startswith("w0 w1")
        assert any("w0 w1" in str(n.message) for n in toasts.shown())
        await key(pilot, "ctrl+down")  # back to the first session: everything that arrived is there
        assert app.current == first
        reply = next(iter(app.chat.replies.values()))
        assert reply.text == slow.reply and reply.message.state is MessageState.COMPLETE
        assert app.sidebar.sessions[first].unread == 0


async def test_model_output_is_shown_literally(fake, tmp_path):
    evil = "[bold red]x[/] [@click=app.quit]click[/] \x1b[31mred\x1b[0m \x07"
    s = fake.scenario(reply=evil)
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    async with app.run_test(size=(120, 30)) as pilot:
        await app.ready.wait()
        await type_and_send(pilot, "[b]not bold[/b] \x1b[2J")
        await until(pilot, lambda: app.current is not None and status(app, app.current) is SessionStatus.WAITING)
        text = await shown(pilot)
        assert "[b]not bold[/b] ␛[2J" in text
        assert "[bold red]x[/]" in text and "[@click=app.quit]click[/]" in text
        assert "␛[31mred␛[0m ␇" in text
        await pilot.click(ReplyMessage)  # clicking the "action" text does nothing
        assert app.is_running


async def test_unreachable_server_turns_the_session_red_and_app_keeps_running(tmp_path):
    from chatplex.config import ProviderConfig
    from chatplex.providers.llamacpp import free_port

    down = ProviderConfig(name="local", kind="ollama", base_url=f"http://127.0.0.1:{free_port()}/v1", model="llama3.2")
    app = ChatplexApp(make_config(tmp_path, down, max_attempts=1))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await type_and_send(pilot, "anyone there?")
        await until(pilot, lambda: app.current is not None and status(app, app.current) is SessionStatus.ERROR)
        reply = next(iter(app.chat.replies.values()))
        assert reply.has_class("-error")
        text = await shown(pilot)
        assert "cannot connect to" in text and "ctrl+r to retry" in text
        assert app.is_running
        assert app.sidebar.sessions[app.current].preview.startswith("⚠")


async def test_streamed_code_block_survives_switching_away_and_back(fake, tmp_path):
    s = fake.scenario(reply="Look:\n\n```python\ndef f():\n    return 42\n```\n\ndone", token_delay=0.005)
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await type_and_send(pilot, "code please")
        first = app.current
        await until(pilot, lambda: status(app, first) is SessionStatus.WAITING)
        assert "return 42" in await shown(pilot)
        await pilot.press("ctrl+n")
        await pilot.press("ctrl+up")
        assert app.current == first
        assert "return 42" in await shown(pilot)


async def test_escape_cancels_the_streaming_reply(fake, tmp_path):
    s = fake.scenario(reply="tok", forever=True, token_delay=0.01)
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await type_and_send(pilot, "go")
        await until(pilot, lambda: app.chat.replies and next(iter(app.chat.replies.values())).length > 0)
        assert app.composer.has_class("-busy")
        await key(pilot, "escape")
        await until(pilot, lambda: next(iter(app.chat.replies.values())).message.state is MessageState.INTERRUPTED)
        assert "cancelled" in await shown(pilot)
        await until(pilot, lambda: not app.composer.has_class("-busy"))


async def test_sending_while_busy_queues_the_message(fake, tmp_path):
    s = fake.scenario(reply=" ".join(["x"] * 40), token_delay=0.005)
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await type_and_send(pilot, "one")
        await until(pilot, lambda: app.composer.has_class("-busy"))
        await type_and_send(pilot, "two")
        await until(
            pilot,
            lambda: (
                len(app.chat.replies) == 2
                and all(r.message.state is MessageState.COMPLETE for r in app.chat.replies.values())
            ),
        )
        assert [w.message.content for w in app.chat.query(UserMessage)] == ["one", "two"]
        assert [r["messages"][-1]["content"] for r in s.requests] == ["one", "two"]


async def test_session_keys_new_rename_delete_jump(fake, tmp_path):
    s = fake.scenario(reply="r")
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await pilot.press("ctrl+n")
        a = app.current
        await pilot.press("ctrl+n")
        b = app.current
        assert a != b and app.sidebar.order[0] == b
        await dialog(pilot, "f2")
        await pilot.press(*"Plans", "enter")
        await until(pilot, lambda: app.sidebar.sessions[b].title == "Plans")
        await pilot.press("ctrl+down")  # the next one down the list (alt+digit never arrives)
        assert app.current == a
        await dialog(pilot, "f8")
        await pilot.press("y")
        await until(pilot, lambda: a not in app.sidebar.sessions)
        assert app.current == b
        assert await app.coord.session(a) is None


async def test_long_session_mounts_a_page_and_loads_older_on_scroll_up(tmp_path, fake):
    config = make_config(tmp_path, provider_for(fake.scenario()))
    sid = await finished_turns(config.db_path, "long", [(f"question {i}", f"answer {i}") for i in range(150)])
    transcript = [text for i in range(150) for text in (f"question {i}", f"answer {i}")]
    app = ChatplexApp(config)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        assert app.current == sid
        # the newest messages that fill the pane, not the whole page (each reply costs ~25 ms)
        first = len(app.chat.children)
        assert first < PAGE
        await until(pilot, lambda: app.chat.max_scroll_y > 0)
        assert [c.message.content for c in app.chat.children] == transcript[-first:]
        app.chat.scroll_home(animate=False)
        await until(pilot, lambda: len(app.chat.children) == first + PAGE)
        assert [c.message.content for c in app.chat.children] == transcript[-(first + PAGE) :]


async def test_a_page_too_short_to_scroll_loads_older_messages_until_the_pane_is_full(tmp_path, fake):
    """Short messages in a tall terminal: no scroll-up could ever ask for the older ones."""
    config = make_config(tmp_path, provider_for(fake.scenario()))
    await finished_turns(config.db_path, "short", [(f"q{i}", f"a{i}") for i in range(60)])
    transcript = [text for i in range(60) for text in (f"q{i}", f"a{i}")]
    app = ChatplexApp(config)
    async with app.run_test(size=(100, 90)) as pilot:
        await app.ready.wait()
        await until(pilot, lambda: app.chat.max_scroll_y > 0)  # filled, with no key pressed
        shown = [c.message.content for c in app.chat.children]
        assert len(shown) > PAGE and shown == transcript[-len(shown) :]
        assert app.chat.has_older


async def test_quit_leaves_running_replies_resumable(fake, tmp_path):
    s = fake.scenario(reply="tok", forever=True, token_delay=0.01)
    config = make_config(tmp_path, provider_for(s))
    app = ChatplexApp(config)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await type_and_send(pilot, "go")
        await until(pilot, lambda: app.chat.replies and next(iter(app.chat.replies.values())).length > 0)
        await pilot.press("ctrl+q")
    store = await Store.open(config.db_path)
    [job] = await store.jobs()
    assert job.state is JobState.QUEUED and job.attempts == 0
    message = await store.get_message(job.message_id)
    assert message.state is MessageState.INTERRUPTED and message.content.startswith("tok")
    await store.close()


async def test_unusable_database_shows_a_message_not_a_traceback(tmp_path, fake):
    config = make_config(tmp_path, provider_for(fake.scenario()))
    config.db_path.write_bytes(b"definitely not sqlite" * 50)
    app = ChatplexApp(config)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await pilot.pause()
        text = await shown(pilot)
        # the words as a person reads them, whatever the path's length did to the wrapping
        words = " ".join(w for w in text.split() if w.strip("█▀▄"))
        assert "cannot open its database" in words and "chatplex database (not SQLite)" in words, text
        await pilot.press("q")
    assert config.db_path.read_bytes() == b"definitely not sqlite" * 50


async def test_keys_can_be_remapped_and_palette_lists_commands(fake, tmp_path):
    config = make_config(tmp_path, provider_for(fake.scenario()))
    config.keys = {"new_session": "ctrl+t"}
    app = ChatplexApp(config)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await pilot.press("ctrl+t")
        assert app.current is not None
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in (
            "New session",
            "Rename",
            "Delete",
            "Cancel reply",
            "Retry",
            "Model",
            "System prompt",
            "Search",
            "Export",
            "Sidebar",
        ):
            assert wanted in titles


async def test_pick_model_from_server_list(fake, tmp_path):
    s = fake.scenario(reply="r")
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await pilot.press("ctrl+n", "ctrl+l")
        from textual.widgets import OptionList

        await until(
            pilot,
            lambda: (
                bool(app.screen.query(OptionList))  # the filter box has the focus
                and app.screen.query_one(OptionList).option_count == 2
            ),
        )
        await pilot.press("down", "enter")
        await until(pilot, lambda: app.sidebar.sessions[app.current].model == "fake-large")
        assert "fake · fake-large" in await shown(pilot)


async def test_export_writes_markdown(fake, tmp_path):
    s = fake.scenario(reply="the answer")
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    target = tmp_path / "out.md"
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await type_and_send(pilot, "the question")
        await until(pilot, lambda: app.current is not None and status(app, app.current) is SessionStatus.WAITING)
        await dialog(pilot, "ctrl+s")
        app.screen.query_one("#value").value = str(target)
        await pilot.press("enter")
        await until(pilot, lambda: target.exists())
    text = target.read_text()
    assert "the question" in text and "the answer" in text and text.startswith("# the question")


async def test_composer_enter_sends_ctrl_j_newline(fake, tmp_path):
    app = ChatplexApp(make_config(tmp_path, provider_for(fake.scenario())))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        composer = app.query_one(Composer)
        composer.focus()
        await pilot.press("a", "ctrl+j", "b")
        assert composer.text == "a\nb"


async def test_retry_key_regenerates_a_failed_reply(fake, tmp_path):
    s = fake.scenario(reply="worked this time", faults=[Fault(status=500)])
    app = ChatplexApp(make_config(tmp_path, provider_for(s), max_attempts=1))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await type_and_send(pilot, "try")
        await until(pilot, lambda: app.current is not None and status(app, app.current) is SessionStatus.ERROR)
        assert "HTTP 500" in await shown(pilot)
        await key(pilot, "ctrl+r")
        await until(pilot, lambda: status(app, app.current) is SessionStatus.WAITING)
        reply = next(iter(app.chat.replies.values()))
        assert reply.text == "worked this time" and not reply.has_class("-error")


async def test_preemption_is_visible_in_the_sidebar(fake, tmp_path):
    from chatplex.core.events import SessionChanged
    from chatplex.tui.widgets.sidebar import row

    slow = fake.scenario(reply=" ".join(f"w{i}" for i in range(200)), token_delay=0.01)
    app = ChatplexApp(make_config(tmp_path, provider_for(slow), workers=1))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        seen = []
        app.coord.bus.subscribe(lambda e: isinstance(e, SessionChanged) and seen.append(e.session))
        await type_and_send(pilot, "background essay")
        essay = app.current
        await until(pilot, lambda: app.chat.replies and next(iter(app.chat.replies.values())).length > 0)
        await key(pilot, "ctrl+n")
        assert app.current != essay
        await type_and_send(pilot, "urgent")
        await until(pilot, lambda: any(s.id == essay and s.status is SessionStatus.INTERRUPTED for s in seen))
        paused = next(s for s in seen if s.id == essay and s.status is SessionStatus.INTERRUPTED)
        shown_row = row(paused, 40).plain
        assert shown_row.startswith("‖ background essay") and "paused; resumes" in shown_row
        await until(pilot, lambda: status(app, essay) is SessionStatus.WAITING, timeout=90)
        assert app.sidebar.sessions[essay].preview.startswith("w0 w1")


async def test_quit_and_reopen_shows_the_same_transcripts(fake, tmp_path):
    s = fake.scenario(reply="kept forever")
    config = make_config(tmp_path, provider_for(s))
    app = ChatplexApp(config)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await type_and_send(pilot, "first chat")
        await until(pilot, lambda: app.current is not None and status(app, app.current) is SessionStatus.WAITING)
        await key(pilot, "ctrl+n")
        await type_and_send(pilot, "second chat")
        await until(pilot, lambda: status(app, app.current) is SessionStatus.WAITING)
        before = {sid: s.title for sid, s in app.sidebar.sessions.items()}
        await pilot.press("ctrl+q")
    again = ChatplexApp(config)
    async with again.run_test(size=(100, 30)) as pilot:
        await again.ready.wait()
        assert {sid: s.title for sid, s in again.sidebar.sessions.items()} == before
        text = await shown(pilot)
        assert "second chat" in text and "kept forever" in text
        await key(pilot, "ctrl+down")
        assert "first chat" in await shown(pilot)


async def test_search_finds_a_session_by_its_text_and_opens_it(fake, tmp_path):
    s = fake.scenario(reply="noted")
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await type_and_send(pilot, "the giraffe question")
        target = app.current
        await until(pilot, lambda: status(app, target) is SessionStatus.WAITING)
        await pilot.press("ctrl+n")
        await type_and_send(pilot, "something else")
        other = app.current
        assert other != target
        await dialog(pilot, "ctrl+f")
        await pilot.press(*"giraffe")
        from textual.widgets import OptionList

        results = app.screen.query_one("#results", OptionList)
        await until(pilot, lambda: results.option_count == 1)
        await pilot.press("enter")
        await until(pilot, lambda: app.current == target)
        assert [w.message.content for w in app.chat.query(UserMessage)] == ["the giraffe question"]


async def test_background_completion_rings_the_bell_only_when_enabled(fake, tmp_path):
    s = fake.scenario(reply=" ".join(f"w{i}" for i in range(30)), token_delay=0.02)
    for enabled in (True, False):
        config = make_config(tmp_path / str(enabled), provider_for(s))
        config.bell = enabled
        app = ChatplexApp(config)
        rings: list[int] = []
        app.bell = lambda: rings.append(1)  # type: ignore[method-assign]
        toasts = Toasts()
        async with app.run_test(size=(100, 30), message_hook=toasts) as pilot:
            await app.ready.wait()
            await type_and_send(pilot, "go")
            first = app.current
            await key(pilot, "ctrl+n")
            await until(pilot, lambda: status(app, first) is SessionStatus.WAITING)
            await until(pilot, lambda: bool(toasts.shown()))
            assert len(rings) == (1 if enabled else 0)


async def test_reply_says_whether_it_is_queued_or_waiting_at_the_server(fake, tmp_path):
    """A request queued at a busy server must not look like a hang: the reply box says the
    request is with the model (and counts seconds); a reply not started yet says it is queued."""
    import threading

    answer = threading.Event()  # its first word waits for this: the screen is read before it
    slow = fake.scenario(reply="late answer", faults=[Fault(hold_after=0, hold=answer)])
    app = ChatplexApp(make_config(tmp_path, provider_for(slow), workers=1))
    try:
        await _queued_or_waiting(app, answer)
    finally:
        answer.set()


async def _queued_or_waiting(app: ChatplexApp, answer) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await type_and_send(pilot, "first")
        await until(pilot, lambda: bool(app.chat.replies))
        first = next(iter(app.chat.replies.values()))
        await until(pilot, lambda: first.started_at is not None)
        await type_and_send(pilot, "second")  # waits for the first reply of its session
        await until(pilot, lambda: len(app.chat.replies) == 2)
        second = list(app.chat.replies.values())[1]
        assert first.started_at is not None and second.started_at is None
        screen = await shown(pilot)
        assert "waiting for the model…" in screen and "queued — waiting its turn" in screen
        first.started_at -= 3  # as if the server had kept it waiting for 3 s
        first.tick()
        assert "waiting for the model… 3s" in await shown(pilot)
        answer.set()
        await until(pilot, lambda: second.message.state is MessageState.COMPLETE)


async def test_switching_away_from_a_streaming_reply_leaves_no_stream_task_behind(fake, tmp_path):
    """Found by the B5 benchmark: each switch away from a streaming reply leaked a pending
    MarkdownStream task."""
    import asyncio

    # endless: on a loaded machine a finite reply could end before the switches are done
    slow = fake.scenario(reply="w0 w1 w2 w3", token_delay=0.01, forever=True)
    app = ChatplexApp(make_config(tmp_path, provider_for(slow)))

    def stream_tasks() -> int:
        return sum(1 for t in asyncio.all_tasks() if not t.done() and "MarkdownStream._run" in repr(t.get_coro()))

    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await type_and_send(pilot, "stream")
        first = app.current
        await until(pilot, lambda: bool(app.chat.replies))
        reply = next(iter(app.chat.replies.values()))
        await until(pilot, lambda: reply._stream is not None)
        assert stream_tasks() == 1
        for _ in range(3):  # away and back while it streams
            await key(pilot, "ctrl+n")
            await until(pilot, lambda: stream_tasks() == 0)
            await app.focus_session(first)
            await until(
                pilot, lambda: bool(app.chat.replies) and next(iter(app.chat.replies.values()))._stream is not None
            )
        assert stream_tasks() == 1


async def test_updates_that_arrive_while_a_dialog_is_open_are_not_lost(fake, tmp_path):
    """App.query_one looks at the active screen only: with a dialog open, coordinator events
    used to be dropped, leaving the sidebar and chat stale after it closed."""
    slow = fake.scenario(reply=" ".join(f"w{i}" for i in range(20)), token_delay=0.02)
    app = ChatplexApp(make_config(tmp_path, provider_for(slow)))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await type_and_send(pilot, "hello")
        sid = app.current
        await pilot.press("f1")  # help open while the reply streams and finishes
        await until(pilot, lambda: app.coord.workers_busy == 0 and not app.coord.running())
        await until(pilot, lambda: status(app, sid) is SessionStatus.WAITING)
        await pilot.press("escape")
        reply = next(iter(app.chat.replies.values()))
        assert reply.message.state is MessageState.COMPLETE and reply.text == slow.reply


async def test_every_sidebar_row_is_exactly_two_lines(fake, tmp_path):
    """The sidebar maps rows to lines arithmetically (2 per row), so no row may wrap: wide
    characters, long titles, badges and errors are all cut to the width."""
    s = fake.scenario(reply="答" * 80)
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        titles = [
            "短",
            "这是一个非常非常长的中文标题，用来测试宽字符的截断是否正确",
            "x" * 200,
            "emoji 🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉",
            "tab\tand\nnewline\x1b[31m",
        ]
        ids = [(await app.coord.create_session(t)).id for t in titles]
        for sid in ids[:3]:
            await app.coord.send(sid, "长回复")  # previews of wide text, unread badges
        await until(pilot, lambda: all(app.sidebar.sessions[i].status is SessionStatus.WAITING for i in ids[:3]))
        from chatplex.tui.widgets.sidebar import row

        sidebar = app.sidebar
        width = sidebar.row_width
        for sid in sidebar.order:
            lines = row(sidebar.sessions[sid], width).split("\n")
            assert len(lines) == 2 and all(line.cell_length <= width for line in lines), lines
        # and the arithmetic line map agrees with navigation: each row selects its own session
        sidebar.focus()
        for index, sid in enumerate(sidebar.order):
            sidebar.highlighted = index
            await pilot.press("enter")
            await until(pilot, lambda sid=sid: app.current == sid)
            sidebar.focus()


async def test_a_reply_finishing_before_its_stream_task_ran_shows_all_its_text(fake, tmp_path):
    """The interleaving behind a rare hang: the reply widget's own task creates its Markdown
    stream, and before that stream's task first runs, the app's task handles ReplyFinished
    and stops it. `MarkdownStream.stop()` then raised the stream's CancelledError into the
    app's message loop, which ended it silently: no further event was shown."""
    from dataclasses import replace

    from textual.widgets import Markdown

    from chatplex.core.models import Message, Role

    app = ChatplexApp(make_config(tmp_path, provider_for(fake.scenario())))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        streaming = Message(id=7, session_id=1, role=Role.ASSISTANT, content="", state=MessageState.STREAMING)
        reply = ReplyMessage(streaming, "m")
        await app.chat.mount(reply)
        await pilot.pause()
        reply.append("Hello ", 0)
        reply._pending = []  # as if its own task had just taken the text into a new stream…
        reply._stream = Markdown.get_stream(reply._markdown)  # …whose task has not run yet
        await reply.finish(replace(streaming, content="Hello world", state=MessageState.COMPLETE))
        await pilot.pause()
        assert reply.query_one(Markdown).source == "Hello world"
        assert "Hello world" in "\n".join(s.text for s in app.screen._compositor.render_strips())


async def test_a_terminal_made_taller_than_the_first_page_loads_older_messages(tmp_path, fake):
    """The pane scrolled to its end can no longer scroll: its scroll offset drops to the top,
    which asks for the older page, as a scroll-up does."""
    config = make_config(tmp_path, provider_for(fake.scenario()))
    await finished_turns(config.db_path, "grows", [(f"question {i}", f"answer {i}") for i in range(40)])
    app = ChatplexApp(config)
    async with app.run_test(size=(100, 24)) as pilot:
        await app.ready.wait()
        await until(pilot, lambda: app.chat.max_scroll_y > 0)
        first = len(app.chat.children)
        await pilot.resize_terminal(100, 120)  # now the first page no longer fills the pane
        await until(pilot, lambda: len(app.chat.children) > first and app.chat.max_scroll_y > 0)
        assert app.chat.children[-1].message.content == "answer 39"
