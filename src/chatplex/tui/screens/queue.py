"""The queue inspector: every job with its priority, state, attempts, wait and run time,
next retry and last error, updating live; totals per state and priority on top; a filter
by state; cancel (confirmed), retry now, raise and lower priority on the selected job."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from chatplex.core.coordinator import Coordinator
from chatplex.core.models import Job, JobState, Priority, QueueStats
from chatplex.core.text import duration, preview_of
from chatplex.tui.errors import guarded
from chatplex.tui.safe import visible
from chatplex.tui.screens.modals import ConfirmScreen

wallclock: Callable[[], float] = time.time  # snapshot tests fix it
FILTERS: list[JobState | None] = [
    None,
    JobState.QUEUED,
    JobState.RUNNING,
    JobState.FAILED,
    JobState.SUCCEEDED,
    JobState.CANCELLED,
]
COLUMNS = (
    ("id", 5),
    ("session", 22),
    ("prio", 4),
    ("state", 9),
    ("tries", 5),
    ("waited", 7),
    ("ran", 7),
    ("next retry", 10),
    ("last error", 60),
)


def next_retry(job: Job, now: float) -> str:
    if job.state is not JobState.QUEUED or job.run_after <= now:
        return ""
    left = job.run_after - now
    return f"in {math.ceil(left)}s" if left < 30 else f"in {math.ceil(left / 60)}m"


def job_row(job: Job, titles: dict[int, str], now: float) -> list[Text | str]:
    """Cells as rich Text (never parsed as markup: titles and errors are data)."""
    queued = job.state is JobState.QUEUED
    waited = (now if queued or not job.started_at else job.started_at) - job.created_at
    ran = None if queued or not job.started_at else (job.finished_at or now) - job.started_at
    state_style = {
        JobState.FAILED: "bold red",
        JobState.RUNNING: "bold cyan",
        JobState.CANCELLED: "yellow",
        JobState.SUCCEEDED: "green",
    }.get(job.state, "")

    def cell(text: str, style: str = "") -> Text:
        return Text(text, style, justify="left")

    return [
        str(job.id),
        cell(visible(titles.get(job.session_id, str(job.session_id)))[:22]),
        cell(job.priority.name, "bold" if job.priority is Priority.HIGH else "dim"),
        cell(job.state.value, state_style),
        f"{job.attempts}/{job.max_attempts}",
        duration(waited),
        duration(ran) if ran is not None else "",
        next_retry(job, now),
        cell(visible(preview_of(job.last_error or "", 60)), "red" if job.last_error else ""),
    ]


def totals(stats: QueueStats) -> Content:
    parts = []
    for state in JobState:
        high, low = stats.count(state, Priority.HIGH), stats.count(state, Priority.LOW)
        parts.append(f"{state.value} {high + low} ({high}▲ {low}▼)")
    return Content("  ·  ".join(parts))


class QueueScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "dismiss(None)", "Back"),
        Binding("f", "filter", "Filter"),
        Binding("c", "cancel_job", "Cancel job"),
        Binding("r", "retry_job", "Retry now"),
        Binding("plus,equals_sign", "priority('HIGH')", "Raise"),
        Binding("minus", "priority('LOW')", "Lower"),
    ]

    DEFAULT_CSS = """
    QueueScreen #totals { padding: 0 1; }
    QueueScreen #filter { padding: 0 1; color: $text-muted; }
    QueueScreen DataTable { height: 1fr; }
    """

    def __init__(self, coordinator: Coordinator, titles: Callable[[], dict[int, str]]) -> None:
        super().__init__()
        self.coord = coordinator
        self.titles = titles
        self.state: JobState | None = None
        self.jobs: dict[int, Job] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="totals")
        yield Static(id="filter")
        table: DataTable = DataTable(id="jobs", cursor_type="row", zebra_stripes=True)
        for label, width in COLUMNS:
            table.add_column(label, width=width)
        yield table
        yield Footer()

    @guarded
    async def on_mount(self) -> None:
        await self.reload()
        self.set_interval(0.5, self.reload)
        self.query_one(DataTable).focus()

    @guarded
    async def reload(self) -> None:
        jobs = await self.coord.jobs(self.state, limit=500)
        stats = await self.coord.stats(finished=True)
        self.query_one("#totals", Static).update(totals(stats))
        label = self.state.value if self.state else "all"
        self.query_one("#filter", Static).update(
            Content(f"showing: {label} ({len(jobs)})  —  f filter · c cancel · r retry now · +/- priority")
        )
        table = self.query_one(DataTable)
        selected = self.selected_id()
        titles, now = self.titles(), wallclock()
        table.clear()
        for job in jobs:
            table.add_row(*job_row(job, titles, now), key=str(job.id))
        self.jobs = {j.id: j for j in jobs}
        if selected in self.jobs:
            table.move_cursor(row=table.get_row_index(str(selected)), animate=False)

    def selected_id(self) -> int | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return int(key.value) if key.value is not None else None

    def selected_job(self) -> Job | None:
        return self.jobs.get(self.selected_id() or -1)

    @guarded
    async def action_filter(self) -> None:
        self.state = FILTERS[(FILTERS.index(self.state) + 1) % len(FILTERS)]
        await self.reload()

    @work(exclusive=True, group="queue-action")
    @guarded
    async def action_cancel_job(self) -> None:
        if (job := self.selected_job()) is None:
            return
        if job.state not in (JobState.QUEUED, JobState.RUNNING):
            self.notify(f"Job {job.id} is {job.state.value}; nothing to cancel", severity="warning")
            return
        if await self.app.push_screen_wait(ConfirmScreen(f"Cancel job {job.id}? Its partial reply is kept.")):
            await self.coord.cancel_job(job.id)
            await self.reload()

    @work(exclusive=True, group="queue-action")
    @guarded
    async def action_retry_job(self) -> None:
        if (job := self.selected_job()) is None:
            return
        if job.state is JobState.RUNNING:
            self.notify(f"Job {job.id} is running", severity="warning")
            return
        if job.state is JobState.SUCCEEDED and not await self.app.push_screen_wait(
            ConfirmScreen(f"Generate job {job.id}'s reply again? The current reply is replaced.")
        ):
            return
        if job.state is JobState.QUEUED:
            await self.coord.run_now(job.id)
        else:
            await self.coord.retry_job(job.id)
        await self.reload()

    @guarded
    async def action_priority(self, name: str) -> None:
        if (job := self.selected_job()) is None:
            return
        if job.state is not JobState.QUEUED:
            self.notify(f"Only queued jobs change priority (job {job.id} is {job.state.value})", severity="warning")
            return
        await self.coord.set_job_priority(job.id, Priority[name])
        await self.reload()
