"""Core events reach the widgets that subscribe to them (tui/feed.py): each once, in order,
the focused session's deltas batched and the others' dropped."""

from __future__ import annotations

import collections

from chatplex.core import events as core
from chatplex.core.models import SessionStatus
from chatplex.tui import feed
from chatplex.tui.app import ChatplexApp
from tests.helpers import make_config, provider_for
from tests.tui.helpers import until


class Pump:
    """Stands for a widget: records what the feed posts to it."""

    def __init__(self) -> None:
        self.got: list = []

    def post_message(self, message) -> bool:
        self.got.append(message)
        return True


def test_deltas_batch_until_handled_and_other_events_keep_their_place():
    focused = [1]
    f = feed.Feed(lambda: focused[0])
    chat, board = Pump(), Pump()
    f.subscribe(chat, feed.ReplyDeltas, feed.ReplyFinished)
    f.subscribe(board, feed.Streamed, feed.SessionChanged)
    d = [core.ReplyDelta(1, 10, f"t{i}", i * 2) for i in range(5)]
    f(d[0])
    f(d[1])
    f(core.ReplyDelta(2, 20, "background"))  # not on screen: no ReplyDeltas for it
    [batch] = chat.got
    assert isinstance(batch, feed.ReplyDeltas) and batch.events == [d[0], d[1]]
    assert batch.take() == [d[0], d[1]]  # handled: the next delta starts a new message
    f(d[2])
    finished = core.ReplyFinished(None)  # type: ignore[arg-type]
    f(finished)
    f(d[3])  # after the event: a new message behind it, not into the one before it
    assert [type(m) for m in chat.got] == [feed.ReplyDeltas, feed.ReplyDeltas, feed.ReplyFinished, feed.ReplyDeltas]
    assert chat.got[1].events == [d[2]] and chat.got[3].events == [d[3]] and chat.got[2].event is finished
    # the dashboard's kind: which sessions streamed, every session, batched the same way
    assert [type(m) for m in board.got] == [feed.Streamed, feed.Streamed]
    assert board.got[0].session_ids == {1, 2} and board.got[1].session_ids == {1}
    f.unsubscribe(chat)
    f(d[4])
    assert len(chat.got) == 4


def test_thinking_and_tool_call_pieces_batch_apart_from_text_in_the_order_they_came():
    """A tool call streamed after the text must not ride in the open batch of the thinking
    before it (it would be shown above the text): a delta of one kind closes the other's."""
    f = feed.Feed(lambda: 1)
    chat, board = Pump(), Pump()
    f.subscribe(chat, feed.ReplyDeltas, feed.PartDeltas)
    f.subscribe(board, feed.Streamed)
    thought = [core.PartDelta(1, 10, 0, "reasoning", f"r{i} ", i * 3) for i in range(2)]
    text = core.ReplyDelta(1, 10, "answer", 0, seq=1)
    call = core.PartDelta(1, 10, 2, "tool_call", "{}", 0, name="lookup")
    for event in (*thought, text, call):
        f(event)
    f(core.PartDelta(2, 20, 0, "reasoning", "not on screen"))
    assert [type(m) for m in chat.got] == [feed.PartDeltas, feed.ReplyDeltas, feed.PartDeltas]
    assert [m.events for m in chat.got] == [thought, [text], [call]]
    assert [m.session_ids for m in board.got] == [{1, 2}]  # the dashboard hears of all thinking


async def test_each_core_message_is_handled_once_by_the_chat_pane_and_once_by_the_app(fake, tmp_path):
    """The chat pane hands each message on to the app; none may also bubble there (the app
    would show a notification twice: "7 replies arrived" for 4)."""
    handled: collections.Counter = collections.Counter()
    kept: list = []  # alive, so that no two messages share an id()

    def hook(message) -> None:
        if isinstance(message, feed.CoreMessage):
            kept.append(message)
            handled[id(message), type(message).__name__] += 1

    app = ChatplexApp(make_config(tmp_path, provider_for(fake.scenario(reply="hello there"))))
    async with app.run_test(size=(100, 30), message_hook=hook) as pilot:
        await app.ready.wait()
        session = await app.coord.create_session("s")
        await app.focus_session(session.id)
        await app.coord.send(session.id, "hi")
        await until(pilot, lambda: app.sidebar.sessions[session.id].status is SessionStatus.WAITING)
        await pilot.pause()
    counts = collections.defaultdict(set)
    for (_, kind), n in handled.items():
        counts[kind].add(n)
    assert counts["SessionChanged"] == {2} and counts["MessageAdded"] == {2} and counts["ReplyFinished"] == {2}
    assert counts["QueueStatsChanged"] == {1}  # the status bar's alone


async def test_the_reply_is_finished_on_screen_before_the_app_hears_its_session_is_waiting(fake, tmp_path):
    """The order the tests (and the eye) rely on: when the app gets the SessionChanged that
    follows a ReplyFinished (its second stop, after the chat pane), the reply shows its end."""
    from chatplex.core.models import MessageState

    app = ChatplexApp(make_config(tmp_path, provider_for(fake.scenario(reply="all of it", token_delay=0.01))))
    seen: collections.Counter = collections.Counter()
    kept: list = []
    states: list = []

    def hook(message) -> None:
        if isinstance(message, feed.SessionChanged):
            kept.append(message)
            seen[id(message)] += 1
            if seen[id(message)] == 2 and message.event.session.status is SessionStatus.WAITING:
                states.extend((r.message.state, r.text) for r in app.chat.replies.values())

    async with app.run_test(size=(100, 30), message_hook=hook) as pilot:
        await app.ready.wait()
        session = await app.coord.create_session("s")
        await app.focus_session(session.id)
        await app.coord.send(session.id, "hi")
        await until(pilot, lambda: app.sidebar.sessions[session.id].status is SessionStatus.WAITING)
    assert states == [(MessageState.COMPLETE, "all of it")]
