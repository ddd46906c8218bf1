"""Every screen and state a user sees, as SVG snapshots under snapshots/.

Deterministic by construction: spinners and the tokens/s clock are off (`still`), toasts
stay up for the whole test, streams that should look "in progress" stall after a fixed
number of tokens (Fault.hang_after) and waits are for conditions, never fixed sleeps.
"""

from __future__ import annotations

import pytest
from textual.app import App

from chatplex.core.models import MessageState, SessionStatus
from chatplex.tui.app import ChatplexApp
from tests.fakeserver import Fault
from tests.helpers import make_config, provider_for
from tests.tui.helpers import dialog, runaway, still, until

SIZE = (110, 32)

MARKDOWN_REPLY = (
    "Here is a **bold** claim, a list and some code:\n\n- first\n- second\n\n"
    '```python\ndef greet(name):\n    return f"hello {name}"\n```\n\nAnything else?'
)


@pytest.fixture(autouse=True)
def _still(monkeypatch):
    still(monkeypatch)
    monkeypatch.setattr(App, "NOTIFICATION_TIMEOUT", 120)


def statuses(app, sid):
    return app.sidebar.sessions[sid].status


async def send(app, sid, text):
    await app.coord.send(sid, text)


def test_first_start_empty(snap_compare, fake, tmp_path):
    app = ChatplexApp(make_config(tmp_path, provider_for(fake.scenario())))
    assert snap_compare(app, terminal_size=SIZE, run_before=lambda pilot: app.ready.wait())


@pytest.mark.parametrize("size", [SIZE, (80, 24), (160, 48)], ids=["normal", "narrow", "wide"])
def test_conversation_with_markdown(snap_compare, fake, tmp_path, size):
    s = fake.scenario(reply=MARKDOWN_REPLY)
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))

    async def run_before(pilot):
        await pilot.app.ready.wait()
        session = await app.coord.create_session("Greeting function")
        await app.focus_session(session.id)
        await send(app, session.id, "Write a greeting function in Python")
        await until(pilot, lambda: statuses(app, session.id) is SessionStatus.WAITING)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def _every_state_config(fake, tmp_path):
    good = fake.scenario(reply="The background answer arrived while you were away.")
    bad = fake.scenario(faults=[Fault(status=401, body={"error": {"message": "Incorrect API key provided"}})])
    stall = fake.scenario(
        reply="Partial words that stall here and never finish", faults=[Fault(hang_after=3), Fault(hang_after=4)]
    )
    config = make_config(
        tmp_path,
        provider_for(good, "good"),
        provider_for(bad, "bad", max_concurrency=0),
        provider_for(stall, "stall"),
        workers=1,
    )
    return config


async def _every_state(app, pilot) -> dict[str, int]:
    """One session in each state: error, waiting+unread, interrupted (preempted), streaming,
    queued. One worker makes it deterministic."""
    c = app.coord
    ids = {}
    ids["error"] = (await c.create_session("Wrong API key", provider="bad")).id
    await send(app, ids["error"], "hello?")
    await until(pilot, lambda: statuses(app, ids["error"]) is SessionStatus.ERROR)
    ids["waiting"] = (await c.create_session("Finished while away", provider="good")).id
    await send(app, ids["waiting"], "summarise the report")
    await until(pilot, lambda: statuses(app, ids["waiting"]) is SessionStatus.WAITING)
    ids["interrupted"] = (await c.create_session("Long essay", provider="stall")).id
    await send(app, ids["interrupted"], "write an essay")
    await until(pilot, lambda: app.sidebar.sessions[ids["interrupted"]].status is SessionStatus.STREAMING)
    await until(pilot, lambda: len(app.fake_stall.requests) == 1)
    ids["streaming"] = (await c.create_session("Focused question", provider="stall")).id
    await app.focus_session(ids["streaming"])
    await send(app, ids["streaming"], "quick question")  # HIGH: preempts the essay
    await until(
        pilot,
        lambda: (
            statuses(app, ids["interrupted"]) is SessionStatus.INTERRUPTED
            and statuses(app, ids["streaming"]) is SessionStatus.STREAMING
        ),
    )
    ids["queued"] = (await c.create_session("Waiting its turn", provider="good")).id
    await send(app, ids["queued"], "and this too")
    await until(pilot, lambda: statuses(app, ids["queued"]) is SessionStatus.QUEUED)
    reply = next(iter(app.chat.replies.values()))
    await until(pilot, lambda: reply.length == len("Partial words that stall"))
    # the Markdown stream batches: wait until the widget itself holds all of it
    await until(pilot, lambda: reply._markdown is not None and reply._markdown.source == "Partial words that stall")
    await pilot.pause()
    return ids


# Focusing the interrupted session would (rightly) preempt the focused one and race to
# re-run it, so its chat pane is not a stable picture; its sidebar mark is in all of these.
@pytest.mark.parametrize("focus", ["streaming", "error", "waiting"])
def test_every_session_state(snap_compare, fake, tmp_path, focus):
    config = _every_state_config(fake, tmp_path)
    app = ChatplexApp(config)
    app.fake_stall = fake.scenarios[max(fake.scenarios)]

    async def run_before(pilot):
        await pilot.app.ready.wait()
        ids = await _every_state(app, pilot)
        if focus != "streaming":
            await app.focus_session(ids[focus])
            await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_model_output_shown_literally(snap_compare, fake, tmp_path):
    s = fake.scenario(reply="[bold red]not red[/] [@click=app.quit]not a button[/] \x1b[31mno colour\x1b[0m")
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))

    async def run_before(pilot):
        await pilot.app.ready.wait()
        session = await app.coord.create_session("Markup [b]title[/b]")
        await app.focus_session(session.id)
        await send(app, session.id, "[i]typed[/i] \x1b[2J")
        await until(pilot, lambda: statuses(app, session.id) is SessionStatus.WAITING)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def _with_session(fake, tmp_path, reply="Sure."):
    app = ChatplexApp(make_config(tmp_path, provider_for(fake.scenario(reply=reply))))

    async def setup(pilot):
        await pilot.app.ready.wait()
        session = await app.coord.create_session("Trip planning")
        await app.focus_session(session.id)
        await send(app, session.id, "Plan a weekend in Lisbon")
        await until(pilot, lambda: statuses(app, session.id) is SessionStatus.WAITING)
        await pilot.pause()

    return app, setup


@pytest.mark.parametrize("key", ["f1", "f2", "f8", "f4", "ctrl+l"])
def test_dialogs(snap_compare, fake, tmp_path, key):
    app, setup = _with_session(fake, tmp_path)

    async def run_before(pilot):
        await pilot.app.ready.wait()
        await setup(pilot)
        # the dialog opens from a worker: wait for it (a soak under load caught the F2 dialog
        # still on its way, so snap_compare's steadying missed its blinking Input)
        await dialog(pilot, key)
        if key == "ctrl+l":
            await until(pilot, lambda: app.screen.query_one("OptionList").option_count == 2)
            await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_search_results(snap_compare, fake, tmp_path):
    app, setup = _with_session(fake, tmp_path)

    async def run_before(pilot):
        await pilot.app.ready.wait()
        await setup(pilot)
        await dialog(pilot, "ctrl+f")
        await pilot.press(*"lisbon")
        await until(pilot, lambda: app.screen.query_one("#results").option_count == 1)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_sidebar_hidden(snap_compare, fake, tmp_path):
    app, setup = _with_session(fake, tmp_path)

    async def run_before(pilot):
        await pilot.app.ready.wait()
        await setup(pilot)
        await pilot.press("ctrl+b")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_unusable_database_screen(snap_compare, fake, tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(tmp_path)  # a relative path keeps the message the same on every run
    config = make_config(tmp_path, provider_for(fake.scenario()))
    config.db_path = Path("chatplex.db")
    config.db_path.write_bytes(b"not sqlite at all" * 10)
    app = ChatplexApp(config)
    assert snap_compare(app, terminal_size=SIZE, run_before=lambda pilot: app.ready.wait())


def test_cancelled_reply(snap_compare, fake, tmp_path):
    s = fake.scenario(reply="one two three four five", faults=[Fault(hang_after=2)])
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))

    async def run_before(pilot):
        await pilot.app.ready.wait()
        session = await app.coord.create_session("Changed my mind")
        await app.focus_session(session.id)
        await send(app, session.id, "tell me a long story")
        await until(pilot, lambda: app.chat.replies and next(iter(app.chat.replies.values())).length == 7)
        await app.coord.cancel(session.id)
        await until(pilot, lambda: next(iter(app.chat.replies.values())).message.state is MessageState.INTERRUPTED)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_runaway_reply_shows_its_tail(snap_compare, fake, tmp_path):
    """Past LIMIT characters a reply is plain text, its end only, with a note (B12)."""
    text = runaway(0.2, end="and that is **all** [b]literally[/b].")
    s = fake.scenario(reply=text)
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))

    async def run_before(pilot):
        await pilot.app.ready.wait()
        app.composer.cursor_blink = False  # a steady cursor: this one takes longer than a blink
        session = await app.coord.create_session("Runaway reply")
        await app.focus_session(session.id)
        await send(app, session.id, "Count for me")
        await until(pilot, lambda: statuses(app, session.id) is SessionStatus.WAITING)
        reply = next(iter(app.chat.replies.values()))
        await until(
            pilot,
            lambda: (
                reply.long
                and reply.text == text
                and reply.query_one(".body").content.plain.endswith("[b]literally[/b].")
            ),
        )
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


# ---------------------------------------------------------------- dashboard and queue (issue 7)
def _background_config(fake, tmp_path):
    good = fake.scenario(reply="The summary you asked for is ready.")
    bad = fake.scenario(faults=[Fault(status=401, body={"error": {"message": "Incorrect API key provided"}})])
    limited = fake.scenario(faults=[Fault(status=429, headers={"Retry-After": "120"})])
    stalls = [
        fake.scenario(reply=text, faults=[Fault(hang_after=n)])
        for text, n in (
            ("Alpha streams these words and then more", 4),
            ("Beta was writing when it got paused", 5),
            ("Delta is the one you look at", 3),
        )
    ]
    config = make_config(
        tmp_path,
        provider_for(good, "good"),
        provider_for(bad, "bad"),
        provider_for(limited, "limited"),
        *(provider_for(s, f"stall{i}") for i, s in enumerate(stalls)),
        workers=2,
    )
    return config, stalls


async def _background(app, pilot, stalls) -> dict[str, int]:
    """Several sessions at once: a retry scheduled, one failed, one finished, two streaming
    and one interrupted (preempted by the session in view). Two workers."""
    c = app.coord
    ids = {}

    async def session(name, provider, text):
        ids[name] = (await c.create_session(name, provider=provider)).id
        await c.send(ids[name], text)

    await session("Rate limited", "limited", "summarise the logs")
    await until(
        pilot,
        lambda: (
            statuses(app, ids["Rate limited"]) is SessionStatus.QUEUED
            and app.sidebar.sessions[ids["Rate limited"]].preview.startswith("↻")
        ),
    )
    await session("Wrong API key", "bad", "hello?")
    await until(pilot, lambda: statuses(app, ids["Wrong API key"]) is SessionStatus.ERROR)
    await session("Finished", "good", "summarise the report")
    await until(pilot, lambda: statuses(app, ids["Finished"]) is SessionStatus.WAITING)
    await session("Alpha", "stall0", "stream something")
    await until(pilot, lambda: len(stalls[0].requests) == 1 and statuses(app, ids["Alpha"]) is SessionStatus.STREAMING)
    await session("Beta", "stall1", "stream more")
    await until(pilot, lambda: len(stalls[1].requests) == 1 and statuses(app, ids["Beta"]) is SessionStatus.STREAMING)
    ids["Delta"] = (await c.create_session("Delta", provider="stall2")).id
    await app.focus_session(ids["Delta"])
    await c.send(ids["Delta"], "the urgent one")
    await until(
        pilot,
        lambda: (
            statuses(app, ids["Beta"]) is SessionStatus.INTERRUPTED
            and statuses(app, ids["Delta"]) is SessionStatus.STREAMING
        ),
    )
    running = {rj.session.title: rj for rj in c.running()}
    await until(pilot, lambda: running["Alpha"].tokens == 4 and running["Delta"].tokens == 3)
    return ids


def test_dashboard_idle(snap_compare, fake, tmp_path):
    app, setup = _with_session(fake, tmp_path)

    async def run_before(pilot):
        await pilot.app.ready.wait()
        await setup(pilot)
        await pilot.press("ctrl+o")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_dashboard_busy(snap_compare, fake, tmp_path, monkeypatch):
    from chatplex.tui.screens import dashboard

    config, stalls = _background_config(fake, tmp_path)
    app = ChatplexApp(config)

    async def run_before(pilot):
        import time

        await pilot.app.ready.wait()
        await _background(app, pilot, stalls)
        # elapsed and tok/s are fixed; `started` stays a real recent time (the worker's reply
        # timeout reads it too: 1000.0 - 12 looked hours old and stopped the replies)
        now = time.monotonic()
        monkeypatch.setattr(dashboard, "clock", lambda: now)
        for rj in app.coord.running():
            rj.started, rj.first_token = now - 12, now - 0.5
        app.action_dashboard()
        await until(
            pilot,
            lambda: (
                isinstance(app.screen, dashboard.DashboardScreen)
                and app.screen.tiles
                and all(t.last for t in app.screen.tiles.values())
            ),
        )
        await pilot.pause()

    assert snap_compare(app, terminal_size=(130, 36), run_before=run_before)


def test_queue_inspector(snap_compare, fake, tmp_path, monkeypatch):
    from chatplex.tui.screens import queue

    config, stalls = _background_config(fake, tmp_path)
    app = ChatplexApp(config)
    # durations are wall-clock noise in a picture: fixed here (their format has its own test)
    monkeypatch.setattr(queue, "duration", lambda seconds: "2s")

    async def run_before(pilot):
        await pilot.app.ready.wait()
        ids = await _background(app, pilot, stalls)
        scheduled = next(j for j in await app.coord.jobs() if j.session_id == ids["Rate limited"])
        # "now" 110 s before the retry, however long the setup took: it reads "in 2m"
        monkeypatch.setattr(queue, "wallclock", lambda: scheduled.run_after - 110)
        await pilot.press("f3")
        await until(pilot, lambda: isinstance(app.screen, queue.QueueScreen) and len(app.screen.jobs) == 6)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(130, 24), run_before=run_before)
