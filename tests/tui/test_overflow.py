"""A message that would overflow the model's context window (issue 17, item 5): the app asks
before sending — drop the oldest turns from what is sent (they stay stored and shown, under
a line that says so), send anyway, or go back to editing with the text kept. The estimate
uses the server's own token counts; the fake server here counts a request's characters / 4."""

from __future__ import annotations

import dataclasses

from textual import events

from chatplex.core.models import SessionStatus
from chatplex.core.usage import overflow
from chatplex.tui.app import ChatplexApp
from chatplex.tui.screens.modals import ChoiceScreen
from tests.helpers import make_config, provider_for
from tests.tui.helpers import still, until
from tests.tui.test_app import status


def test_the_estimate_drops_the_fewest_oldest_turns_that_make_room():
    # (id, role, characters, tokens counted for a reply's request and answer): 4 characters a token
    sizes = [(1, "user", 2_000, None), (2, "assistant", 100, None), (3, "user", 300, None), (4, "assistant", 100, 625)]
    assert overflow(sizes, new=100, system=0, window=1000) is None  # 650 tokens: fits
    cut = overflow(sizes, new=1_000, system=0, window=1000)  # 875 tokens, over 85 % of the window
    assert cut is not None and (cut.tokens, cut.drop_from, cut.turns) == (875, 3, 1)  # 350 tokens left
    everything = overflow(sizes, new=2_200, system=0, window=1000)
    assert everything is not None and (everything.drop_from, everything.turns) == (5, 2)  # past the newest
    alone = overflow(sizes, new=3_500, system=0, window=1000)
    assert alone is not None and alone.drop_from is None  # no drop makes it fit
    # the rate follows the server's count: here 1 token for 2 characters
    assert overflow([(1, "user", 500, None), (2, "assistant", 100, 300)], new=1_200, system=0, window=1000)


def overflow_app(fake, tmp_path) -> tuple[ChatplexApp, object]:
    s = fake.scenario(reply="ok", count_prompt=True)
    pc = dataclasses.replace(provider_for(s), context_window=400)
    return ChatplexApp(make_config(tmp_path, pc)), s


async def send(app, pilot, text: str) -> None:
    app.composer.focus()
    app.composer.insert(text)
    app.composer.post_message(events.Key("enter", "\r"))


async def three_turns(app, pilot, s) -> int:
    sid = (await app.coord.create_session("Long talk")).id
    await app.focus_session(sid)
    for n in range(3):
        await app.coord.send(sid, f"{n}" * 300)
        await until(pilot, lambda: len(s.requests) == n + 1 and status(app, sid) is SessionStatus.WAITING)
    return sid


async def test_dropping_the_oldest_turns_sends_the_rest_and_says_so(fake, tmp_path):
    app, s = overflow_app(fake, tmp_path)
    async with app.run_test(size=(110, 30)) as pilot:
        await app.ready.wait()
        sid = await three_turns(app, pilot, s)
        await send(app, pilot, "x" * 600)
        await until(pilot, lambda: isinstance(app.screen, ChoiceScreen) and app.screen.focused is not None)
        assert "Drop the 2 oldest turns" in str(app.screen.query_one("#answer-d").label)
        await pilot.press("d")
        await until(pilot, lambda: len(s.requests) == 4 and status(app, sid) is SessionStatus.WAITING)
        sent = [m["content"] for m in s.requests[-1]["messages"]]
        assert sent == ["2" * 300, "ok", "x" * 600]  # the two oldest turns not sent
        assert len(await app.coord.messages(sid)) == 8  # and all still stored
        await until(pilot, lambda: bool(app.chat.query(".dropped")))
        assert app.composer.text == ""
        await app.run_action("send_every_turn")
        await until(pilot, lambda: app.sidebar.sessions[sid].context_from is None)
        await app.coord.send(sid, "short")
        await until(pilot, lambda: len(s.requests) == 5)
        assert len(s.requests[-1]["messages"]) == 9  # everything again


async def test_going_back_keeps_the_text_and_sending_anyway_sends_it_all(fake, tmp_path):
    app, s = overflow_app(fake, tmp_path)
    async with app.run_test(size=(110, 30)) as pilot:
        await app.ready.wait()
        sid = await three_turns(app, pilot, s)
        await send(app, pilot, "y" * 600)
        await until(pilot, lambda: isinstance(app.screen, ChoiceScreen) and app.screen.focused is not None)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ChoiceScreen))
        assert app.composer.text == "y" * 600 and len(s.requests) == 3  # nothing sent, nothing lost
        app.composer.text = ""
        await send(app, pilot, "y" * 600)
        await until(pilot, lambda: isinstance(app.screen, ChoiceScreen) and app.screen.focused is not None)
        await pilot.press("s")
        await until(pilot, lambda: len(s.requests) == 4 and status(app, sid) is SessionStatus.WAITING)
        assert len(s.requests[-1]["messages"]) == 7 and app.composer.text == ""


def test_snapshot_the_overflow_question(snap_compare, fake, tmp_path, monkeypatch):
    still(monkeypatch)  # no tokens/s clock, no smooth scroll
    app, s = overflow_app(fake, tmp_path)

    async def run_before(pilot):
        await app.ready.wait()
        await three_turns(app, pilot, s)
        await send(app, pilot, "z" * 600)
        await until(pilot, lambda: isinstance(app.screen, ChoiceScreen) and app.screen.focused is not None)

    # tall enough that the chat behind does not scroll: where a scrolled pane settles behind a
    # dialog varied from run to run, which is not what this snapshot is about
    assert snap_compare(app, terminal_size=(110, 60), run_before=run_before)


async def test_a_send_never_waits_for_a_slow_server_to_say_its_window(fake, tmp_path):
    """The window is looked up in the background: a server slow to answer /models must not
    hold a message back (it would not even be stored meanwhile); once it has answered, the next
    message is checked."""
    import threading

    hold = threading.Event()
    s = fake.scenario(
        reply="ok", count_prompt=True, models_hold=hold, model_info={"fake-small": {"context_length": 400}}
    )
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    try:
        async with app.run_test(size=(110, 30)) as pilot:
            await app.ready.wait()
            sid = (await app.coord.create_session("Patient")).id
            await app.focus_session(sid)
            await send(app, pilot, "x" * 2_000)  # would overflow 400 tokens, but the window is not known
            await until(pilot, lambda: len(s.requests) == 1 and status(app, sid) is SessionStatus.WAITING)
            assert not isinstance(app.screen, ChoiceScreen)
            hold.set()  # the server answers /models now
            await until(pilot, lambda: app.coord.known_window("fake", "fake-small") == 400)
            await send(app, pilot, "y" * 2_000)
            await until(pilot, lambda: isinstance(app.screen, ChoiceScreen) and app.screen.focused is not None)
    finally:
        hold.set()
