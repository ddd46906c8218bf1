"""Typed events and a tiny one-way fan-out bus (core → UI).

Subscribers are plain callables run synchronously in the publisher's loop: no
re-publishing, no cross-talk between subscribers, so a broadcast can never echo
back into the bus (the parllama loop).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from chatplex.core.models import Job, Message, QueueStats, Session

log = logging.getLogger("chatplex.coordinator")


@dataclass(frozen=True, slots=True)
class SessionChanged:
    session: Session


@dataclass(frozen=True, slots=True)
class SessionDeleted:
    session_id: int


@dataclass(frozen=True, slots=True)
class MessageAdded:
    message: Message


@dataclass(frozen=True, slots=True)
class ReplyStarted:
    """A reply (re)starts: the UI keeps the first `kept` characters of what it shows (a
    partial reply being continued) and clears the rest."""

    session_id: int
    message_id: int
    job_id: int
    kept: int = 0


@dataclass(frozen=True, slots=True)
class ReplyDelta:
    """`offset` is the reply's length before `text`: a view that loaded a snapshot can
    skip what it already shows, so a delta is never displayed twice."""

    session_id: int
    message_id: int
    text: str
    offset: int = 0
    tokens: int = 1  # stream events merged into this one
    seq: int = 0  # the text part it extends (a reply's parts are numbered in order)


@dataclass(frozen=True, slots=True)
class PartDelta:
    """A piece of a streaming reply's other parts: its thinking (`kind` reasoning), or a tool
    call's arguments (`kind` tool_call, with the call's id and name once known). `seq` is the
    part's place among the reply's parts, text parts included (ReplyDelta.seq); `offset` is
    the part's own length before `text`."""

    session_id: int
    message_id: int
    seq: int
    kind: str  # "reasoning" | "tool_call"
    text: str
    offset: int = 0
    name: str = ""
    call_id: str = ""
    tokens: int = 1


@dataclass(frozen=True, slots=True)
class ReplyFinished:
    """The reply stopped: complete, interrupted (partial kept) or error."""

    message: Message


@dataclass(frozen=True, slots=True)
class JobChanged:
    job: Job


@dataclass(frozen=True, slots=True)
class QueueStatsChanged:
    stats: QueueStats
    workers_busy: int
    workers_total: int


@dataclass(frozen=True, slots=True)
class Notification:
    session_id: int
    title: str
    text: str
    level: str = "information"  # "information" | "warning" | "error"


@dataclass(frozen=True, slots=True)
class ExternalChange:
    """Another process wrote to the database; views should reload what they show."""


Event = (
    SessionChanged
    | SessionDeleted
    | MessageAdded
    | ReplyStarted
    | ReplyDelta
    | PartDelta
    | ReplyFinished
    | JobChanged
    | QueueStatsChanged
    | Notification
    | ExternalChange
)

Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Register a callback; returns the function that unsubscribes it."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, event: Event) -> None:
        for callback in tuple(self._subscribers):
            try:
                callback(event)
            except Exception:  # a broken subscriber must not stop the workers
                log.exception("event subscriber failed on %s", type(event).__name__)
