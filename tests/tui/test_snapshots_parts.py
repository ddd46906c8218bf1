"""Replies made of parts, as SVG snapshots under snapshots/: thinking while it streams, folded
above its answer, opened; a tool call's card on the tool-only error; a thinking session in the
sidebar and on the dashboard.

Deterministic as test_snapshots.py is: no animation (`still`), toasts stay, streams that must
look in progress stall after a fixed number of pieces (Fault.hang_after), waits are for
conditions. The thinking's clock is fixed (reasoning.clock), moved on only where a picture
needs a duration.
"""

from __future__ import annotations

import threading

import pytest
from textual.app import App

from chatplex.core.models import MessageState, SessionStatus
from chatplex.tui.app import ChatplexApp
from chatplex.tui.widgets import reasoning
from chatplex.tui.widgets.reasoning import ReasoningBlock, ToolCard
from tests.fakeserver import Fault
from tests.helpers import make_config, provider_for
from tests.tui.helpers import still, until

SIZE = (110, 32)
THOUGHT = (
    "The user asks for the sum of the first ten odd numbers.\n"
    " The odd numbers are 1, 3, 5, 7, 9, 11, 13, 15, 17, 19.\n"
    " Their sum is the square of their count: 10 × 10.\n"
    " Check by pairs: 1 + 19 = 20, five pairs, so 100.\n"
    " Both ways give 100, and [bold]this is not markup[/bold]."
)
THOUGHT_PIECES = len(THOUGHT.split(" "))  # the fake server streams a word at a time
STALLED = THOUGHT_PIECES - 2  # pieces of the thinking a stream that stalls in it has sent
THOUGHT_SO_FAR = " ".join(THOUGHT.split(" ")[:STALLED])
ANSWER = "The sum of the first ten odd numbers is **100** — that is, 10²."


@pytest.fixture(autouse=True)
def _still(monkeypatch):
    still(monkeypatch)
    monkeypatch.setattr(App, "NOTIFICATION_TIMEOUT", 120)


@pytest.fixture
def now(monkeypatch) -> list[float]:
    """The thinking's clock, fixed at now[0] (a test moves it on)."""
    at = [1000.0]
    monkeypatch.setattr(reasoning, "clock", lambda: at[0])
    return at


def status(app, sid):
    return app.sidebar.sessions[sid].status


def reply_of(app):
    return list(app.chat.replies.values())[-1] if app.chat.replies else None


async def _thought_and_answer(app, pilot, now, held) -> None:
    """A reply that thought for 38 s (the clock moved on while it was held before its answer)
    and answered, on screen."""
    session = await app.coord.create_session("Odd numbers")
    await app.focus_session(session.id)
    await app.coord.send(session.id, "What is the sum of the first ten odd numbers?")
    await until(pilot, lambda: reply_of(app) is not None and reply_of(app).query(ReasoningBlock))
    block = reply_of(app).query_one(ReasoningBlock)
    await until(pilot, lambda: block.text == THOUGHT)
    now[0] += 38
    held.set()
    await until(pilot, lambda: status(app, session.id) is SessionStatus.WAITING)
    reply = reply_of(app)
    await until(pilot, lambda: reply._markdown is not None and reply._markdown.source == ANSWER)
    await pilot.pause()


def test_thinking_while_it_streams(snap_compare, fake, tmp_path, now):
    s = fake.scenario(parts=[("reasoning", THOUGHT), ("text", ANSWER)], faults=[Fault(hang_after=STALLED)])
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))

    async def run_before(pilot):
        await pilot.app.ready.wait()
        session = await app.coord.create_session("Odd numbers")
        await app.focus_session(session.id)
        await app.coord.send(session.id, "What is the sum of the first ten odd numbers?")
        await until(pilot, lambda: status(app, session.id) is SessionStatus.THINKING)
        await until(pilot, lambda: reply_of(app).query(ReasoningBlock))
        block = reply_of(app).query_one(ReasoningBlock)
        await until(pilot, lambda: block.text == THOUGHT_SO_FAR)
        now[0] += 12
        block.tick()  # what the app's once-a-second clock does (off here: no animation)
        await until(pilot, lambda: str(block.render()).startswith("thinking 12s"))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


@pytest.mark.parametrize("opened", [False, True], ids=["folded", "opened"])
def test_thought_above_its_answer(snap_compare, fake, tmp_path, now, opened):
    held = threading.Event()
    s = fake.scenario(
        parts=[("reasoning", THOUGHT), ("text", ANSWER)],
        reasoning_tokens=1204,
        faults=[Fault(hold_after=THOUGHT_PIECES, hold=held)],
    )
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))

    async def run_before(pilot):
        await pilot.app.ready.wait()
        await _thought_and_answer(app, pilot, now, held)
        if opened:
            await pilot.press("ctrl+t")
            await pilot.pause()

    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    finally:
        held.set()


def test_a_tool_call_while_tools_are_not_enabled(snap_compare, fake, tmp_path, now):
    s = fake.scenario(
        parts=[
            ("reasoning", "The user wants the time in Paris. I should call the clock tool."),
            ("tool", "get_current_time", '{"timezone": "Europe/Paris", "format": "[b]24h[/b]"}'),
        ]
    )
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))

    async def run_before(pilot):
        await pilot.app.ready.wait()
        session = await app.coord.create_session("Time in Paris")
        await app.focus_session(session.id)
        await app.coord.send(session.id, "What time is it in Paris?")
        await until(pilot, lambda: status(app, session.id) is SessionStatus.ERROR)
        reply = reply_of(app)
        await until(pilot, lambda: reply.message.state is MessageState.ERROR and reply.query(ToolCard))
        await until(pilot, lambda: "not run" in str(reply.query_one(ToolCard).render()))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


async def _background_thinking(app, pilot) -> dict[str, int]:
    """A finished session on screen, another that thinks in the background (after an answer
    of its own, so it has a preview to hide), one that streams, one waiting."""
    c = app.coord
    ids = {}
    for name in ("Streaming essay", "Deep thought", "Weekend plans"):
        ids[name] = (await c.create_session(name, provider="plain")).id
        await c.send(ids[name], "hello")
        await until(pilot, lambda n=name: status(app, ids[n]) is SessionStatus.WAITING)
    await c.update_session(ids["Streaming essay"], provider="stream")
    await c.send(ids["Streaming essay"], "write an essay")
    await until(pilot, lambda: status(app, ids["Streaming essay"]) is SessionStatus.STREAMING)
    await c.update_session(ids["Deep thought"], provider="think")
    await c.send(ids["Deep thought"], "think it over")
    await until(pilot, lambda: status(app, ids["Deep thought"]) is SessionStatus.THINKING)
    running = {rj.session.title: rj for rj in c.running()}
    await until(
        pilot,
        lambda: running["Deep thought"].other_events == STALLED and running["Streaming essay"].tokens == 5,
    )
    await app.focus_session(ids["Weekend plans"])
    await pilot.pause()
    return ids


def _background_config(fake, tmp_path):
    plain = fake.scenario(reply="Happy to help with that.")
    stream = fake.scenario(reply="Essays begin with a claim and then defend it", faults=[Fault(hang_after=5)])
    think = fake.scenario(parts=[("reasoning", THOUGHT), ("text", ANSWER)], faults=[Fault(hang_after=STALLED)])
    return make_config(
        tmp_path,
        provider_for(plain, "plain"),
        provider_for(stream, "stream"),
        provider_for(think, "think"),
        workers=3,
    )


def test_sidebar_with_a_thinking_session(snap_compare, fake, tmp_path, now):
    app = ChatplexApp(_background_config(fake, tmp_path))

    async def run_before(pilot):
        await pilot.app.ready.wait()
        await _background_thinking(app, pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_dashboard_with_a_thinking_tile(snap_compare, fake, tmp_path, now, monkeypatch):
    import time

    from chatplex.tui.screens import dashboard

    app = ChatplexApp(_background_config(fake, tmp_path))

    async def run_before(pilot):
        await pilot.app.ready.wait()
        await _background_thinking(app, pilot)
        at = time.monotonic()
        monkeypatch.setattr(dashboard, "clock", lambda: at)
        for rj in app.coord.running():
            rj.started, rj.first_token = at - 12, at - 0.5
        app.action_dashboard()
        await until(
            pilot,
            lambda: (
                isinstance(app.screen, dashboard.DashboardScreen)
                and app.screen.tiles
                and all(t.last for t in app.screen.tiles.values())
                and any("thinking 12s" in (t.last or "") for t in app.screen.tiles.values())
            ),
        )
        await pilot.pause()

    assert snap_compare(app, terminal_size=(130, 30), run_before=run_before)


async def _asked_and_answered(app, pilot):
    """The odd-numbers question asked in a new session on screen; its reply once it ended."""
    session = await app.coord.create_session("Odd numbers")
    await app.focus_session(session.id)
    await app.coord.send(session.id, "What is the sum of the first ten odd numbers?")
    await until(pilot, lambda: status(app, session.id) is SessionStatus.WAITING)
    return reply_of(app)


@pytest.mark.parametrize("opened", [False, True], ids=["folded", "opened"])
def test_redacted_thinking_above_its_answer(snap_compare, fake, tmp_path, now, opened):
    """Anthropic's redacted_thinking: an encrypted block, kept for the model, not shown."""
    s = fake.scenario(parts=[("redacted", "EqQBCgIYAhIM…opaque"), ("text", ANSWER)])
    app = ChatplexApp(make_config(tmp_path, provider_for(s, kind="anthropic")))

    async def run_before(pilot):
        await pilot.app.ready.wait()
        reply = await _asked_and_answered(app, pilot)
        await until(pilot, lambda: reply.query(ReasoningBlock) and reply.query_one(ReasoningBlock).redacted)
        await until(pilot, lambda: reply._markdown is not None and reply._markdown.source == ANSWER)
        if opened:
            await pilot.press("ctrl+t")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_interleaved_thinking_and_text_each_in_its_place(snap_compare, fake, tmp_path, now):
    """Thinking, text, thinking, text, with Anthropic's blocks interleaved on the wire (the next
    opened before this one stops, signatures late): four parts in the model's order."""
    s = fake.scenario(
        parts=[
            ("reasoning", "First, what is being asked: a sum of odd numbers."),
            ("text", "The odd numbers up to 19 are ten."),
            ("reasoning", "Their sum is the count squared, [b]not markup[/b]."),
            ("text", ANSWER),
        ],
        interleave=True,
    )
    app = ChatplexApp(make_config(tmp_path, provider_for(s, kind="anthropic")))

    async def run_before(pilot):
        await pilot.app.ready.wait()
        reply = await _asked_and_answered(app, pilot)
        await until(pilot, lambda: len(reply.query(ReasoningBlock)) == 2)
        # the body holds the last text part alone (it showed the first part again before it)
        await until(pilot, lambda: reply._markdown is not None and reply._markdown.source == ANSWER)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
