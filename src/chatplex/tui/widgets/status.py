"""The status bar: workers, queue depth, tokens/s, the focused model, the last notice."""

from __future__ import annotations

from textual import on
from textual.content import Content
from textual.widgets import Static

from chatplex.core.models import JobState
from chatplex.tui import feed
from chatplex.tui.errors import guarded
from chatplex.tui.safe import visible

LEGEND = (
    "workers 1/4: replies being generated / at most at once · queue 2▲ 5▼: replies waiting for "
    "a worker, ▲ high priority (the session on screen: it goes first), ▼ low (the others) · "
    "N need you: tool calls waiting for your approval (F6 answers them) · "
    "tok/s: tokens a second, all sessions · the model of this session · its tokens, cost (config's "
    "[prices]) and how full its context window is · the last notice"
)


class StatusBar(Static):
    def __init__(self, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.worker_counts = (0, 0)
        self.queued = (0, 0)
        self.tokens_per_s = 0.0
        self.model = ""
        self.spent = ""  # the session on screen: "12.3k tok · $0.12 · context 45% of 32k"
        self.notice = ""
        self.approvals = 0  # tool calls waiting for the user, in every session
        self.approve_key = "f6"

    @on(feed.QueueStatsChanged)
    @guarded
    def _queue_stats(self, message: feed.QueueStatsChanged) -> None:
        event = message.event
        self.set(
            workers=(event.workers_busy, event.workers_total),
            queued=(event.stats.queued_high, event.stats.queued_low),
            approvals=event.stats.count(JobState.HELD),
        )

    def set(self, **values: object) -> None:
        changed = False
        if "workers" in values:
            values["worker_counts"] = values.pop("workers")
        for key, value in values.items():
            if getattr(self, key) != value:
                setattr(self, key, value)
                changed = True
        if changed:
            self.update(self.status_line())

    def status_line(self) -> Content:
        busy, total = self.worker_counts
        high, low = self.queued
        parts = [
            Content.assemble(("workers ", "$text-muted"), f"{busy}/{total}"),
            Content.assemble(
                ("queue ", "$text-muted"), (f"{high}", "bold"), ("▲ ", "$text-muted"), f"{low}", ("▼", "$text-muted")
            ),
            Content.assemble(f"{self.tokens_per_s:,.0f}", (" tok/s", "$text-muted")),
        ]
        if self.approvals:  # the loudest: someone's agent waits for you
            parts.insert(
                2, Content(f" {self.approvals} need you · {self.approve_key} ").stylize("bold $text on $warning")
            )
        if self.model:
            parts.append(Content(visible(self.model)))
        if self.spent:
            parts.append(Content(self.spent).stylize("$text-muted"))
        if self.notice:
            parts.append(Content(visible(self.notice)).stylize("italic"))
        return Content("  │  ").join(parts)
