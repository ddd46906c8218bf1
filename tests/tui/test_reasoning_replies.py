"""Replies made of parts in the chat pane, through the real coordinator and the fake server:
thinking streams dimmed then folds to one line when the answer begins, a key and a setting
open it, a tool call is a card, stored parts come back in order, and the sidebar and the
dashboard say a session is thinking."""

from __future__ import annotations

import threading

from chatplex.core.db import Store
from chatplex.core.models import MessageState, Priority, SessionStatus
from chatplex.core.queue import JobQueue
from chatplex.providers.base import ReasoningPart, TextPart, ToolCallPart
from chatplex.tui.app import ChatplexApp
from chatplex.tui.widgets.chat import ReplyMessage
from chatplex.tui.widgets.parts import DoneText
from chatplex.tui.widgets.reasoning import ReasoningBlock, ToolCard
from tests.fakeserver import Fault
from tests.helpers import make_config, provider_for
from tests.tui.helpers import until

# one line per step, so the streaming block's "newest lines" can be told from the rest
THOUGHT = " ".join(f"step{i}\n" for i in range(30))
ANSWER = "The answer is **4**."


async def shown(pilot) -> str:
    """What the terminal shows, as plain text, once the app has rendered."""
    await pilot.pause()
    return "\n".join(strip.text for strip in pilot.app.screen._compositor.render_strips())


def last_reply(app) -> ReplyMessage | None:
    replies = list(app.chat.replies.values())
    return replies[-1] if replies else None


def blocks(app) -> list[ReasoningBlock]:
    reply = last_reply(app)
    return list(reply.query(ReasoningBlock)) if reply else []


def kinds(reply: ReplyMessage) -> list[str]:
    """The reply's parts as they stand on screen, top to bottom (what shows nothing left out)."""
    shown = []
    for w in reply.children:
        if isinstance(w, ReasoningBlock):
            shown.append("reasoning")
        elif isinstance(w, ToolCard):
            shown.append("tool")
        elif isinstance(w, DoneText):
            shown += ["text"] if w.display else []
        elif w.has_class("body"):
            shown += ["text"] if reply.body_text.strip() else []
    return shown


def on_screen_in_order(reply: ReplyMessage) -> bool:
    """Each part that shows something is drawn below the one before it."""
    drawn = [w for w in reply.children if w.display and w.region.height and not w.has_class("state")]
    return all(a.region.bottom <= b.region.y for a, b in zip(drawn, drawn[1:], strict=False)) and len(drawn) > 1


async def answered(pilot, sid: int, question: str, n: int) -> None:
    """Send `question` and return once the chat pane shows the session's `n`th reply ended."""
    app = pilot.app
    await app.coord.send(sid, question)
    await until(
        pilot,
        lambda: (
            len(app.chat.replies) == n
            and last_reply(app).message.state is not MessageState.STREAMING
            and status(app, sid) is not SessionStatus.STREAMING
        ),
    )


def status(app, sid) -> SessionStatus:
    return app.sidebar.sessions[sid].status


async def test_thinking_streams_dimmed_then_folds_to_one_line_when_the_answer_begins(fake, tmp_path):
    in_thought, in_answer = threading.Event(), threading.Event()
    s = fake.scenario(
        parts=[("reasoning", THOUGHT), ("text", ANSWER)],
        reasoning_tokens=1204,
        faults=[Fault(hold_after=12, hold=in_thought), Fault(hold_after=32, hold=in_answer)],
    )
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await app.ready.wait()
            session = await app.coord.create_session("think")
            await app.focus_session(session.id)
            await app.coord.send(session.id, "2+2?")
            await until(pilot, lambda: bool(blocks(app)) and "step11" in blocks(app)[0].text)
            await until(pilot, lambda: status(app, session.id) is SessionStatus.THINKING)
            block = blocks(app)[0]
            assert block.streaming and "step11" in str(block.render())
            text = await shown(pilot)
            assert "thinking" in text and "step6" in text and "step11" in text
            assert "step5" not in text  # only its newest lines while it streams
            assert "waiting for the model" not in text  # the thinking says it is alive
            assert app.composer.has_class("-busy")  # thinking is busy, as streaming is
            in_thought.set()
            await until(pilot, lambda: last_reply(app).message.state is MessageState.COMPLETE)
            reply = last_reply(app)
            assert kinds(reply) == ["reasoning", "text"] and reply.text == ANSWER
            text = await shown(pilot)
            assert "▸ thought for" in text and "1,204 tokens" in text  # the server's count, at the end
            assert "step" not in text and "The answer is 4." in text
            assert status(app, session.id) is SessionStatus.WAITING

            # the next reply: the thinking folds as soon as the answer's first words come
            await app.coord.send(session.id, "and again?")
            await until(pilot, lambda: last_reply(app) is not reply and last_reply(app).body_text == "The answer")
            second = last_reply(app)
            assert second.message.state is MessageState.STREAMING
            await until(pilot, lambda: bool(second.query(ReasoningBlock)))
            [block] = second.query(ReasoningBlock)
            assert not block.streaming and block.tokens == 30  # counted as it streamed
            await until(pilot, lambda: str(block.render()).startswith("▸ thought for"))
            assert "step" not in str(block.render())
            in_answer.set()
            await until(pilot, lambda: second.message.state is MessageState.COMPLETE)
            assert kinds(second) == ["reasoning", "text"]

            # read back from the database, each thought still says how long it took
            await app.focus_session(session.id)
            await until(
                pilot, lambda: len(app.chat.query(ReasoningBlock)) == 2 and block not in app.chat.query(ReasoningBlock)
            )
            assert all(str(b.render()).startswith("▸ thought for ") for b in app.chat.query(ReasoningBlock))
    finally:
        in_thought.set()
        in_answer.set()


async def test_a_key_opens_the_last_thought_and_a_setting_opens_them_all(fake, tmp_path):
    s = fake.scenario(parts=[("reasoning", THOUGHT), ("text", ANSWER)])
    config = make_config(tmp_path, provider_for(s))
    app = ChatplexApp(config)
    async with app.run_test(size=(100, 60)) as pilot:
        await app.ready.wait()
        session = await app.coord.create_session("think")
        await app.focus_session(session.id)
        for n, question in enumerate(("one?", "two?"), 1):
            await answered(pilot, session.id, question, n)
        first, second = app.chat.replies.values()
        await pilot.press("ctrl+t")  # the last reply with thinking on screen
        assert second.query_one(ReasoningBlock).expanded and not first.query_one(ReasoningBlock).expanded
        text = await shown(pilot)
        assert "▾ thought" in text and "step0" in text and "step29" in text
        await pilot.press("ctrl+t")
        assert not second.query_one(ReasoningBlock).expanded and "step" not in await shown(pilot)

        # the palette's command opens every thought, and replies shown from then on
        [command] = [c for c in app.get_system_commands(app.screen) if "thinking in every reply" in c.title]
        assert command.title == "Show thinking in every reply"
        await command.callback()
        await pilot.pause()
        assert all(r.query_one(ReasoningBlock).expanded for r in app.chat.replies.values())
        await answered(pilot, session.id, "three?", 3)
        assert last_reply(app).query_one(ReasoningBlock).expanded
        [command] = [c for c in app.get_system_commands(app.screen) if "thinking in every reply" in c.title]
        assert command.title == "Fold thinking in every reply"
        await command.callback()
        await pilot.pause()
        assert not any(r.query_one(ReasoningBlock).expanded for r in app.chat.replies.values())

    # show_reasoning = true in config.toml: open from the start, reopened sessions too
    config.show_reasoning = True
    app = ChatplexApp(config)
    async with app.run_test(size=(100, 60)) as pilot:
        await app.ready.wait()
        await until(pilot, lambda: len(app.chat.replies) == 3)
        assert all(r.query_one(ReasoningBlock).expanded for r in app.chat.replies.values())
        assert "step29" in await shown(pilot)


async def test_the_key_says_so_when_no_reply_has_thinking(fake, tmp_path):
    from tests.tui.helpers import Toasts

    toasts = Toasts()
    app = ChatplexApp(make_config(tmp_path, provider_for(fake.scenario(reply="plain"))))
    async with app.run_test(size=(100, 30), message_hook=toasts) as pilot:
        await app.ready.wait()
        session = await app.coord.create_session("plain")
        await app.focus_session(session.id)
        await app.coord.send(session.id, "hi")
        await until(pilot, lambda: status(app, session.id) is SessionStatus.WAITING)
        await pilot.press("ctrl+t")
        await until(pilot, lambda: any("No reply here has thinking" in n.message for n in toasts.raised))


async def test_a_tool_call_only_reply_is_a_card_that_says_tools_are_not_enabled(fake, tmp_path):
    s = fake.scenario(parts=[("reasoning", "I need the clock"), ("tool", "get_time", '{"tz": "[red]UTC[/]"}')])
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    async with app.run_test(size=(110, 30)) as pilot:
        await app.ready.wait()
        session = await app.coord.create_session("tools")
        await app.focus_session(session.id)
        await app.coord.send(session.id, "what time is it?")
        await until(pilot, lambda: status(app, session.id) is SessionStatus.ERROR)
        reply = last_reply(app)
        await until(pilot, lambda: reply.message.state is MessageState.ERROR)
        assert kinds(reply) == ["reasoning", "tool"]
        card = reply.query_one(ToolCard)
        assert card.has_class("-error")
        assert str(card.render()) == '⚙ get_time(tz="[red]UTC[/]")\nnot run — tools are not enabled'
        text = await shown(pilot)
        assert "get_time" in text and "tools are not enabled" in text and "▸ thought" in text


async def test_stored_parts_come_back_in_order_when_the_session_is_opened_again(fake, tmp_path):
    """A reply that thought, wrote, called a tool and wrote again: each part in its place,
    from the database (the text around the call as Markdown, whitespace alone as nothing)."""
    config = make_config(tmp_path, provider_for(fake.scenario()))
    parts = [
        ReasoningPart("plan: look it up [b]first[/b]"),
        TextPart("Let me **check**."),
        ToolCallPart("call_1", "lookup", '{"q": "weather"}'),
        TextPart("\n\n"),
        ToolCallPart("call_2", "lookup", '{"q": "time"}'),
        TextPart("It is *sunny*."),
    ]
    async with await Store.open(config.db_path) as store:
        q = JobQueue(store, owner="earlier")
        stored = await store.create_session("stored", "fake", "fake-small")
        other = await store.create_session("other", "fake", "fake-small")
        _, reply_row, _, _ = await q.enqueue(stored.id, "weather?", Priority.LOW)
        job, _ = await q.claim()
        text = "".join(p.text for p in parts if type(p) is TextPart)
        await q.complete(job, text, unread=False, usage=(7, 40, 12), finish_reason="stop", parts=parts)
    app = ChatplexApp(config)
    async with app.run_test(size=(110, 40)) as pilot:
        await app.ready.wait()
        for sid in (other.id, stored.id):  # away and back: the page is read from the database
            await app.focus_session(sid)
        await pilot.pause()
        reply = app.chat.replies[reply_row.id]
        assert kinds(reply) == ["reasoning", "text", "tool", "tool", "text"]  # "\n\n" shows nothing
        assert reply.text == text and reply.body_text == "It is *sunny*."
        done = reply.query_one(DoneText)
        await until(pilot, lambda: done.source == "Let me **check**.")
        block = reply.query_one(ReasoningBlock)
        assert str(block.render()) == "▸ thought · 12 tokens"
        assert on_screen_in_order(reply)
        screen = await shown(pilot)
        assert "Let me check." in screen and 'lookup(q="time")' in screen and "It is sunny." in screen
        await pilot.press("ctrl+t")
        assert "plan: look it up [b]first[/b]" in await shown(pilot)  # literal, never markup


async def test_text_a_tool_call_and_more_text_stream_each_in_its_place(fake, tmp_path):
    """The answer's text goes on after a tool call: the text before the call stays above it
    (frozen in its own Markdown), the new text streams below it."""
    held = threading.Event()
    s = fake.scenario(
        parts=[
            ("reasoning", "plan"),
            ("text", "Looking it up."),
            ("tool", "lookup", '{"q": "x"}'),
            ("text", "Found **it**."),
        ],
        faults=[Fault(hold_after=8, hold=held)],  # after "Found": the last text part has begun
    )
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    try:
        async with app.run_test(size=(110, 40)) as pilot:
            await app.ready.wait()
            session = await app.coord.create_session("mixed")
            await app.focus_session(session.id)
            await app.coord.send(session.id, "find it")
            await until(pilot, lambda: last_reply(app) is not None and last_reply(app).body_text == "Found")
            reply = last_reply(app)
            await until(pilot, lambda: kinds(reply) == ["reasoning", "text", "tool", "text"])
            assert reply.text == "Looking it up.Found" and reply.message.state is MessageState.STREAMING
            done, card = reply.query_one(DoneText), reply.query_one(ToolCard)
            await until(pilot, lambda: done.source == "Looking it up.")
            held.set()
            await until(pilot, lambda: reply.message.state is not MessageState.STREAMING)
            assert kinds(reply) == ["reasoning", "text", "tool", "text"]
            assert reply.query_one(DoneText) is done and reply.query_one(ToolCard) is card  # kept, not redone
            assert reply.text == "Looking it up.Found **it**." and reply.body_text == "Found **it**."
            await pilot.pause()
            assert on_screen_in_order(reply)
    finally:
        held.set()


async def test_a_text_part_that_begins_while_a_thought_is_placed_still_shows(fake, tmp_path, monkeypatch):
    """Thinking, text, thinking, text. Placing the second thought on screen awaits; when the last
    text part begins meanwhile, that text is shown in the new body, not lost with the old one
    (a busy machine once showed an empty answer under its thinking)."""
    import asyncio

    held = threading.Event()  # the stream waits after the second thought's first word
    place = ReplyMessage._place

    async def slow_place(self: ReplyMessage) -> None:
        if 2 in self.parts.unplaced:  # the second thought: the answer's text begins meanwhile
            held.set()
            deadline = asyncio.get_running_loop().time() + 60
            while not self.parts.freezes:
                assert asyncio.get_running_loop().time() < deadline, "the last text part never began"
                await asyncio.sleep(0.01)
        await place(self)

    monkeypatch.setattr(ReplyMessage, "_place", slow_place)
    s = fake.scenario(
        parts=[("reasoning", "read it"), ("text", "First part."), ("reasoning", "check it"), ("text", ANSWER)],
        interleave=True,  # pieces: 0 start, 1-2 thought, 3 start, 4-5 text, 6-7 its end, 8 start, 9 "check"
        faults=[Fault(hold_after=10, hold=held)],
    )
    app = ChatplexApp(make_config(tmp_path, provider_for(s, kind="anthropic")))
    try:
        async with app.run_test(size=(110, 40)) as pilot:
            await app.ready.wait()
            session = await app.coord.create_session("parts")
            await app.focus_session(session.id)
            await answered(pilot, session.id, "q", 1)
            reply = last_reply(app)
            await until(pilot, lambda: kinds(reply) == ["reasoning", "text", "reasoning", "text"])
            assert held.is_set()  # the second thought was placed while the stream was held
            await until(pilot, lambda: reply.query_one(DoneText).source == "First part.")
            await until(pilot, lambda: reply._markdown is not None and reply._markdown.source == ANSWER)
    finally:
        held.set()


async def test_thinking_cut_by_a_cancel_says_it_was_interrupted(fake, tmp_path):
    held = threading.Event()
    s = fake.scenario(parts=[("reasoning", THOUGHT), ("text", ANSWER)], faults=[Fault(hold_after=5, hold=held)])
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await app.ready.wait()
            session = await app.coord.create_session("cut")
            await app.focus_session(session.id)
            await app.coord.send(session.id, "think")
            await until(pilot, lambda: bool(blocks(app)) and "step4" in blocks(app)[0].text)
            await app.coord.cancel(session.id)
            await until(pilot, lambda: last_reply(app).message.state is MessageState.INTERRUPTED)
            block = blocks(app)[0]
            assert str(block.render()).startswith("▸ thinking interrupted")
            # and from the database too
            other = await app.coord.create_session("elsewhere")
            await app.focus_session(other.id)
            await app.focus_session(session.id)
            await until(pilot, lambda: bool(blocks(app)))
            assert str(blocks(app)[0].render()).startswith("▸ thinking interrupted")
    finally:
        held.set()


async def test_a_thought_opened_half_way_goes_on_without_repeating_itself(fake, tmp_path):
    """Switching to a session while its model thinks: the page shows the stored thinking and
    the pieces that follow carry on from it (offsets), nothing shown twice."""
    held = threading.Event()
    s = fake.scenario(parts=[("reasoning", THOUGHT), ("text", ANSWER)], faults=[Fault(hold_after=15, hold=held)])
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await app.ready.wait()
            session = await app.coord.create_session("think")
            other = await app.coord.create_session("other")
            await app.focus_session(other.id)
            await app.coord.send(session.id, "think")
            await until(pilot, lambda: status(app, session.id) is SessionStatus.THINKING)
            await until(pilot, lambda: len(s.requests) == 1)
            await app.focus_session(session.id)
            await until(pilot, lambda: bool(blocks(app)) and blocks(app)[0].streaming)
            held.set()
            await until(pilot, lambda: last_reply(app).message.state is MessageState.COMPLETE)
            assert blocks(app)[0].text == THOUGHT and last_reply(app).text == ANSWER
    finally:
        held.set()


async def test_whitespace_before_a_tool_call_shows_nothing(fake, tmp_path):
    s = fake.scenario(parts=[("text", "\n\n"), ("tool", "get_time", "{}")])
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    async with app.run_test(size=(110, 30)) as pilot:
        await app.ready.wait()
        session = await app.coord.create_session("blank")
        await app.focus_session(session.id)
        await app.coord.send(session.id, "time?")
        await until(pilot, lambda: last_reply(app) is not None and last_reply(app).message.state is MessageState.ERROR)
        reply = last_reply(app)
        await until(pilot, lambda: bool(reply.query(ToolCard)))
        await pilot.pause()
        assert kinds(reply) == ["tool"]
        body = reply.query_one(".body")
        assert body.region.height == 0  # no blank lines above the card
        card = reply.query_one(ToolCard)
        assert card.region.y == reply.content_region.y  # the card is the reply's first line


async def test_the_sidebar_and_the_dashboard_say_a_session_is_thinking(fake, tmp_path):
    from chatplex.tui.screens.dashboard import DashboardScreen
    from chatplex.tui.widgets.sidebar import legend

    held = threading.Event()
    s = fake.scenario(parts=[("reasoning", THOUGHT), ("text", ANSWER)], faults=[Fault(hold_after=8, hold=held)])
    plain = fake.scenario(reply="Earlier answer.")
    app = ChatplexApp(make_config(tmp_path, provider_for(s), provider_for(plain, "plain")))
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await app.ready.wait()
            session = await app.coord.create_session("Deep thought")
            await app.coord.update_session(session.id, provider="plain")
            await app.coord.send(session.id, "warm up")
            await until(pilot, lambda: status(app, session.id) is SessionStatus.WAITING)
            await app.coord.update_session(session.id, provider="fake")
            await app.coord.send(session.id, "think hard")
            await until(pilot, lambda: status(app, session.id) is SessionStatus.THINKING)
            sidebar = app.sidebar
            index = sidebar.order.index(session.id)
            line1 = sidebar.render_line(index * 2).text.strip()
            line2 = sidebar.render_line(index * 2 + 1).text.strip()
            assert "Deep thought" in line1 and line1[0] in "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"  # a spinner
            assert line2 == "thinking…"  # what it does now, not the last reply's start
            assert "thinking — the model reasons first" in legend().plain  # F1 explains the mark
            app.action_dashboard()
            await until(
                pilot,
                lambda: (
                    isinstance(app.screen, DashboardScreen)
                    and session.id in app.screen.tiles
                    and "thinking" in (app.screen.tiles[session.id].last or "")
                ),
            )
            tile = app.screen.tiles[session.id].last
            assert "◉ Deep thought" in tile and "step7" in tile and "streaming" not in tile
            held.set()
            await until(pilot, lambda: "Earlier answer" not in (app.screen.tiles[session.id].last or "x"))
            await until(pilot, lambda: status(app, session.id) is SessionStatus.WAITING)
    finally:
        held.set()
