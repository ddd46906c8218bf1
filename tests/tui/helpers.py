"""Helpers for tests that drive the app with a pilot: wait for a condition, open a dialog,
read the toasts raised, build a runaway reply, stop animations, wait for the status bar.
The fixtures (and the snapshot location) are in tests/tui/conftest.py."""

from __future__ import annotations

from collections.abc import Callable

from chatplex.core.models import JobState


async def until(pilot, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Let the app run until `condition` holds (a deadline, not a fixed sleep). A condition
    that looks up what is not there yet (a sidebar row the app has not been told of, a reply
    not shown yet, a widget of a dialog not composed yet) is not met yet: LookupError,
    AttributeError and Textual's NoMatches mean "wait", and the last one is reported if the
    deadline passes."""
    import asyncio

    from textual.css.query import NoMatches

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        error: Exception | None = None
        try:
            if condition():
                return
        except (LookupError, AttributeError, NoMatches) as e:
            error = e
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time") from error
        await asyncio.sleep(0.02)  # the app runs in this loop; pilot.pause would wait for idle


async def dialog(pilot, key: str) -> None:
    """Press a key whose dialog opens from a worker, and return once the dialog is in front
    with its focus set: keys typed before that would go to the screen behind it."""
    from textual.screen import ModalScreen

    await pilot.press(key)
    await until(pilot, lambda: isinstance(pilot.app.screen, ModalScreen) and pilot.app.screen.focused is not None)


class Toasts:
    """The notifications an app raised, for a test to read through public API: `App.notify`
    posts a `Notify` message (textual.notifications) that a `run_test(message_hook=...)`
    hook sees when the app handles it. Pass an instance as the hook."""

    def __init__(self) -> None:
        from textual.notifications import Notification

        self.raised: list[Notification] = []

    def __call__(self, message) -> None:
        from textual.notifications import Notify

        if isinstance(message, Notify):
            self.raised.append(message.notification)

    def shown(self) -> list:
        """Those on screen now (each goes when its timeout has passed)."""
        return [n for n in self.raised if not n.has_expired]


def runaway(megabytes: float, end: str = "THE-END") -> str:
    """A runaway reply: tokens of 23 characters, a newline every 8, no blank line (one
    endless Markdown paragraph, the worst case), then `end`."""
    words = int(megabytes * 1_000_000 / 23.125)
    return " ".join(f"runaway-{i:08d}-lorem" + ("\n" if i % 8 == 7 else "") for i in range(words)) + " " + end


def still(monkeypatch) -> None:
    """No animation: spinner frames and the tokens/s clock would make snapshots vary. The app
    follows Textual's animation level; this is what TEXTUAL_ANIMATIONS=none sets at import."""
    from textual import constants

    monkeypatch.setattr(constants, "TEXTUAL_ANIMATIONS", "none")


def toasts_stay(monkeypatch, seconds: float = 120) -> None:
    """Toasts stay up `seconds`, also those the app shows for 2 s: a loaded machine may not
    look within 2 s, and the tests read the toasts that were shown."""
    from textual.app import App

    monkeypatch.setattr(App, "NOTIFICATION_TIMEOUT", seconds)
    notify = App.notify

    def staying(self, message, *, timeout=None, **kw):  # type: ignore[no-untyped-def]
        return notify(self, message, timeout=None if timeout is None else max(timeout, seconds), **kw)

    monkeypatch.setattr(App, "notify", staying)


async def status_settled(pilot, timeout: float = 15.0) -> None:
    """Wait until the status bar shows the coordinator's present worker and queue counts: they
    reach it ~50 ms after a change (coalesced), so a reply can be finished on screen while the
    bar still says "workers 1/4" (one snapshot in CI failed so). And the session's tokens and
    context fill, which a worker reads after the session changed."""
    import asyncio

    from chatplex.core.usage import context_line

    app = pilot.app
    coord = getattr(app, "coordinator", None)
    if coord is None or not app.query("StatusBar"):
        return  # the error screen, or an app without the main screen
    status = app.query_one("StatusBar")
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        stats = await coord.store.stats()
        shown = (status.worker_counts, status.queued, status.approvals, status.spent)
        held = stats.count(JobState.HELD)
        session = app.sidebar.sessions.get(app.current) if app.current is not None else None
        spent = ""
        if session is not None:
            window = await coord.context_window(session.provider, session.model)
            spent = context_line(await coord.totals(session.id), window)
        counts = ((coord.workers_busy, coord.workers_total), (stats.queued_high, stats.queued_low), held, spent)
        if shown == counts:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"status bar still shows {shown}")
        await asyncio.sleep(0.02)


async def finished_turns(db_path, title: str, turns: list[tuple[str, str]]) -> int:
    """A session `title` holding `turns` (question, answer) as finished replies; its id."""
    from chatplex.core.db import Store
    from chatplex.core.models import Priority

    async with await Store.open(db_path) as store:
        session = await store.create_session(title, "fake", "fake-small")
        for question, answer in turns:
            await store.create_turn(session.id, question, Priority.LOW, 1)
            claimed = await store.claim("filler", 30)
            assert claimed is not None
            await store.finish(claimed[0].id, "filler", "succeeded", answer)
        return session.id
