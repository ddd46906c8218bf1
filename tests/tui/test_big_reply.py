"""A runaway reply (megabytes) is shown as a plain-text tail with a note, streams without
freezing the app, and a session holding one opens like any other (B12)."""

from __future__ import annotations

import pytest
from textual.widgets import Markdown, Static

from chatplex.core.db import Store
from chatplex.core.models import MessageState, Priority, SessionStatus
from chatplex.tui.app import ChatplexApp
from chatplex.tui.widgets.chat import LIMIT, ReplyMessage, UserMessage
from tests.helpers import make_config, provider_for
from tests.tui.helpers import dialog, runaway, until


def on_screen(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def note(reply: ReplyMessage) -> str:
    return reply.query_one(".tail-note", Static).content.plain


@pytest.mark.slow
async def test_a_2_mb_streamed_reply_ends_shown_and_keys_reach_the_composer_meanwhile(fake, tmp_path):
    text = runaway(2.2)
    s = fake.scenario(reply=text)
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        session = await app.coord.create_session("runaway")
        await app.focus_session(session.id)
        await app.coord.send(session.id, "write forever")
        await until(pilot, lambda: bool(app.chat.replies) and next(iter(app.chat.replies.values())).length > 0)
        reply = next(iter(app.chat.replies.values()))
        app.composer.focus()
        app.simulate_key("x")  # typed while the reply streams
        await until(pilot, lambda: app.composer.text == "x", timeout=90)
        typed_at = reply.length
        await until(pilot, lambda: reply.message.state is MessageState.COMPLETE, timeout=120)
        await until(pilot, lambda: "THE-END" in on_screen(app), timeout=90)
        assert typed_at < len(text), "the key waited for the whole reply"
        assert reply.long and reply.text == text and not reply.query(Markdown)
        assert note(reply) == "⋯ showing the last 43 lines of a 2.2 MB reply — export it (ctrl+s) to read it all"
        shown = reply.query_one(".body", Static).content.plain
        head, tail = shown.split("\n", 1)
        assert head == "⋯ earlier text not shown" and text.endswith(tail) and 7_000 < len(tail) <= 8_000
        # the sidebar hears of the end after the chat pane (by design: the pane shows it first)
        await until(pilot, lambda: app.sidebar.sessions[session.id].status is SessionStatus.WAITING)


async def test_a_stored_huge_reply_opens_as_its_tail_and_regenerating_it_goes_back_to_markdown(fake, tmp_path):
    """Opening a session must not parse megabytes of Markdown; and a long reply that is
    generated again (short this time) is Markdown again."""
    s = fake.scenario(reply="Now **short**.")
    config = make_config(tmp_path, provider_for(s))
    store = await Store.open(config.db_path)
    session = await store.create_session("kept runaway", "fake", "fake-small")
    await store.create_turn(session.id, "tell me everything:\n" + runaway(1, end="USER-END"), Priority.LOW, 1)
    job = (await store.claim("filler", 30))[0]
    big = runaway(3, end="THE-END [bold red]not markup[/] **nor bold** \x1b[2J")
    await store.finish(job.id, "filler", "succeeded", big)
    await store.close()
    app = ChatplexApp(config)
    async with app.run_test(size=(160, 30)) as pilot:
        await app.ready.wait()
        assert app.current == session.id
        reply = next(iter(app.chat.replies.values()))
        await until(pilot, lambda: "THE-END" in on_screen(app))
        assert "THE-END [bold red]not markup[/] **nor bold** ␛[2J" in on_screen(app)  # literal
        assert reply.long and reply.length == len(big) > LIMIT
        assert note(reply).startswith("⋯ showing the last 43 lines of a 3.0 MB reply")
        [asked] = app.chat.query(UserMessage)  # a huge paste shows its start
        assert asked.content.plain.startswith("tell me everything:\n")
        assert (
            asked.content.plain.endswith(
                "\n⋯ showing the first 44 lines of a 1.0 MB message — export it (ctrl+s) to read it all"
            )
            and "USER-END" not in asked.content.plain
        )
        app.composer.focus()
        await pilot.press(*"still quick")
        assert app.composer.text == "still quick"
        await dialog(pilot, "ctrl+r")  # generate it again: a finished reply asks first
        await pilot.press("y")
        await until(pilot, lambda: reply.message.state is MessageState.COMPLETE and reply.text == "Now **short**.")
        await until(pilot, lambda: bool(reply.query(Markdown)))
        assert not reply.long and not reply.query(".tail-note")
        assert reply.query_one(Markdown).source == "Now **short**."
        await until(pilot, lambda: "Now short." in on_screen(app))
