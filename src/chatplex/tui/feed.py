"""Core events as Textual messages, one class per kind, delivered to the widgets that
subscribe to them (no central router).

`Feed` is the app's one subscriber to the coordinator's bus. Each widget or screen says which
kinds it shows (`feed.subscribe(self, SessionChanged, ...)`) and handles them with `@on`;
the feed posts each event to each subscriber of its kind, so a subscriber sees its events
in the order they happened, in its own message queue.

Deltas are the exception, for speed (B5, B12): those of sessions not on screen are not
posted at all (with 20 streams they would fill the queues and keys would wait behind them),
and the ones a subscriber has not handled yet ride together in one message — deltas that
arrive while it waits in the queue join it, so a fast stream is one message per turn of the
loop instead of one per token. The answer's text (ReplyDeltas) and the other parts' pieces
(PartDeltas: thinking, tool-call arguments) are batched apart, and a delta of one kind closes
the open batch of the other, so a tool call streamed after the text is handled after it. Any
other event closes the open batches, so deltas after it go in a new message behind it and the
order is kept.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.message import Message
from textual.message_pump import MessagePump

from chatplex.core import events as core


class CoreMessage(Message, bubble=False):
    """A coordinator event; `event` is the core's own (frozen) object. It goes to the
    subscribers only: it does not bubble up the DOM (each subclass says so too: Textual
    sets `bubble` per class)."""

    def __init__(self, event: core.Event) -> None:
        super().__init__()
        self.event = event


class SessionChanged(CoreMessage, bubble=False):
    event: core.SessionChanged


class SessionDeleted(CoreMessage, bubble=False):
    event: core.SessionDeleted


class MessageAdded(CoreMessage, bubble=False):
    event: core.MessageAdded


class ReplyStarted(CoreMessage, bubble=False):
    event: core.ReplyStarted


class ReplyFinished(CoreMessage, bubble=False):
    event: core.ReplyFinished


class JobChanged(CoreMessage, bubble=False):
    event: core.JobChanged


class QueueStatsChanged(CoreMessage, bubble=False):
    event: core.QueueStatsChanged


class Notification(CoreMessage, bubble=False):
    event: core.Notification


class ExternalChange(CoreMessage, bubble=False):
    event: core.ExternalChange


MESSAGES: dict[type, type[CoreMessage]] = {
    core.SessionChanged: SessionChanged,
    core.SessionDeleted: SessionDeleted,
    core.MessageAdded: MessageAdded,
    core.ReplyStarted: ReplyStarted,
    core.ReplyFinished: ReplyFinished,
    core.JobChanged: JobChanged,
    core.QueueStatsChanged: QueueStatsChanged,
    core.Notification: Notification,
    core.ExternalChange: ExternalChange,
}


class ReplyDeltas(Message, bubble=False):
    """The text deltas of the session on screen, in order, not handled yet. `take()` them
    when handling: deltas arriving from then on start a new message."""

    def __init__(self, events: list[core.ReplyDelta]) -> None:
        super().__init__()
        self.events = events
        self.open = True

    def take(self) -> list[core.ReplyDelta]:
        self.open = False
        return self.events


class PartDeltas(Message, bubble=False):
    """The session on screen's pieces of thinking and tool calls (PartDelta), in order, not
    handled yet; like ReplyDeltas, `take()` them when handling."""

    def __init__(self, events: list[core.PartDelta]) -> None:
        super().__init__()
        self.events = events
        self.open = True

    def take(self) -> list[core.PartDelta]:
        self.open = False
        return self.events


Batch = ReplyDeltas | PartDeltas


class Streamed(Message, bubble=False):
    """These sessions' replies got new text (any session; for views that show them all)."""

    def __init__(self, session_id: int) -> None:
        super().__init__()
        self.session_ids = {session_id}
        self.open = True

    def take(self) -> set[int]:
        self.open = False
        return self.session_ids


class Feed:
    """The app's subscriber to the coordinator's bus (see the module's docstring)."""

    def __init__(self, focused: Callable[[], int | None]) -> None:
        self._focused = focused  # the session on screen: only its deltas become ReplyDeltas
        self._subscribers: dict[type[Message], list[MessagePump]] = {}
        self._batches: dict[tuple[type[Message], MessagePump], Batch | Streamed] = {}

    def subscribe(self, node: MessagePump, *kinds: type[Message]) -> None:
        """`node` gets a message of each of these kinds (CoreMessage subclasses, ReplyDeltas,
        PartDeltas, Streamed) from now on, until `unsubscribe`."""
        for kind in kinds:
            nodes = self._subscribers.setdefault(kind, [])
            if node not in nodes:
                nodes.append(node)

    def unsubscribe(self, node: MessagePump) -> None:
        for nodes in self._subscribers.values():
            if node in nodes:
                nodes.remove(node)
        for key in [key for key in self._batches if key[1] is node]:
            del self._batches[key]

    def __call__(self, event: core.Event) -> None:
        if type(event) is core.ReplyDelta:
            self._delta(event, ReplyDeltas, PartDeltas)
            return
        if type(event) is core.PartDelta:
            self._delta(event, PartDeltas, ReplyDeltas)
            return
        kind = MESSAGES.get(type(event))
        if kind is None:
            return
        self._batches.clear()  # deltas after this event go in new messages, behind it
        for node in self._subscribers.get(kind, ()):
            node.post_message(kind(event))

    def _delta(
        self, event: core.ReplyDelta | core.PartDelta, kind: type[ReplyDeltas | PartDeltas], other: type[Batch]
    ) -> None:
        if event.session_id == self._focused():
            batches = self._batches
            for node in self._subscribers.get(kind, ()):
                batches.pop((other, node), None)  # the other kind's deltas after this go behind it
                batch = batches.get((kind, node))
                if isinstance(batch, kind) and batch.open:
                    batch.events.append(event)  # type: ignore[arg-type]
                    continue
                batch = kind([event])  # type: ignore[list-item]
                if node.post_message(batch):
                    batches[(kind, node)] = batch
        for node in self._subscribers.get(Streamed, ()):
            streamed = self._batches.get((Streamed, node))
            if isinstance(streamed, Streamed) and streamed.open:
                streamed.session_ids.add(event.session_id)
                continue
            streamed = Streamed(event.session_id)
            if node.post_message(streamed):
                self._batches[(Streamed, node)] = streamed
