"""The queue inspector: every job with its priority, state, attempts, wait and run time,
next retry and last error, updating live; totals per state and priority on top; a filter
by state; cancel (confirmed), retry now, raise and lower priority on the selected job.

Live from events, not a poll: a JobChanged updates that job's row (only the cells that
changed), adds it or takes it out of the filter; the totals are read again when the queue's
stats change; another process's writes (ExternalChange) reload the list, still changing only
the rows that differ. A clock ticks the waiting and running times once a second.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen
from textual.signal import Signal
from textual.widgets import DataTable, Footer, Static

from chatplex.core.coordinator import Coordinator
from chatplex.core.db import StepOpen
from chatplex.core.models import Job, JobState, Priority, QueueStats
from chatplex.core.text import duration, preview_of
from chatplex.tui import feed
from chatplex.tui.errors import guarded
from chatplex.tui.safe import visible
from chatplex.tui.screens.modals import ConfirmScreen, confirm_cancel_background

wallclock: Callable[[], float] = time.time  # snapshot tests fix it
FILTERS: list[JobState | None] = [
    None,
    JobState.QUEUED,
    JobState.RUNNING,
    JobState.FAILED,
    JobState.SUCCEEDED,
    JobState.CANCELLED,
]
LIMIT = 500  # jobs listed, the newest first
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
    queued = job.state in (JobState.QUEUED, JobState.HELD)  # held: waiting for the user's answer
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
        Binding("X", "cancel_background", "Cancel all background"),
        Binding("r", "retry_job", "Retry now"),
        Binding("plus,equals_sign", "priority('HIGH')", "Raise"),
        Binding("minus", "priority('LOW')", "Lower"),
    ]

    DEFAULT_CSS = """
    QueueScreen #totals { padding: 0 1; }
    QueueScreen #filter { padding: 0 1; color: $text-muted; }
    QueueScreen DataTable { height: 1fr; }
    """

    def __init__(
        self,
        coordinator: Coordinator,
        titles: Callable[[], dict[int, str]],
        events: feed.Feed,
        sessions_changed: Signal[int | None],
        current: Callable[[], int | None] = lambda: None,
    ) -> None:
        super().__init__()
        self.coord = coordinator
        self.current = current  # the session open in the chat pane (its work is not background)
        self.titles = titles
        self.events = events
        self.sessions_changed = sessions_changed
        self.state: JobState | None = None
        self.jobs: dict[int, Job] = {}  # the rows shown, by job id
        self._cells: dict[int, list[Text | str]] = {}  # what each row shows now

    def compose(self) -> ComposeResult:
        yield Static(id="totals")
        yield Static(id="filter")
        table: DataTable = DataTable(id="jobs", cursor_type="row", zebra_stripes=True)
        for label, width in COLUMNS:
            table.add_column(label, width=width, key=label)
        yield table
        yield Footer()

    @guarded
    async def on_mount(self) -> None:
        self.events.subscribe(self, feed.JobChanged, feed.QueueStatsChanged, feed.SessionDeleted, feed.ExternalChange)
        self.sessions_changed.subscribe(self, self._titles_changed)
        await self.reload()
        self.set_interval(1.0, self._clock)
        self.query_one(DataTable).focus()

    @guarded
    def on_unmount(self) -> None:
        self.events.unsubscribe(self)
        self.sessions_changed.unsubscribe(self)

    async def reload(self) -> None:
        """Read the list and the totals again; only the rows that differ change."""
        jobs = await self.coord.jobs(self.state, limit=LIMIT)
        await self._totals()
        self._show(jobs)

    async def _totals(self) -> None:
        self.query_one("#totals", Static).update(totals(await self.coord.stats(finished=True)))

    def _show(self, jobs: list[Job]) -> None:
        """Make the table list `jobs` (newest first), touching only rows that differ."""
        table = self.query_one(DataTable)
        selected = self.selected_id()
        wanted = {j.id: j for j in jobs}
        for job_id in [j for j in self.jobs if j not in wanted]:
            self._remove(job_id)
        added, titles, now = False, self.titles(), wallclock()
        for job in jobs:
            added = self._put(job, titles, now) or added
        if added:
            self._sort()
        if selected in self.jobs and self.selected_id() != selected:
            table.move_cursor(row=table.get_row_index(str(selected)), animate=False)
        self._label()

    def _put(self, job: Job, titles: dict[int, str], now: float) -> bool:
        """Show `job` in its row, changing the cells that differ; True if the row is new."""
        table = self.query_one(DataTable)
        cells = job_row(job, titles, now)
        self.jobs[job.id] = job
        old = self._cells.get(job.id)
        self._cells[job.id] = cells
        if old is None:
            table.add_row(*cells, key=str(job.id))
            return True
        for (label, _), before, cell in zip(COLUMNS, old, cells, strict=True):
            if before != cell:
                table.update_cell(str(job.id), label, cell)
        return False

    def _remove(self, job_id: int) -> None:
        self.jobs.pop(job_id, None)
        if self._cells.pop(job_id, None) is not None:
            self.query_one(DataTable).remove_row(str(job_id))

    def _sort(self) -> None:
        """Newest first (a new job's row was added at the bottom); the cursor stays on its job."""
        table = self.query_one(DataTable)
        selected = self.selected_id()
        table.sort("id", key=lambda cell: -int(cell))
        if selected in self.jobs:
            table.move_cursor(row=table.get_row_index(str(selected)), animate=False)

    def _label(self) -> None:
        label = self.state.value if self.state else "all"
        self.query_one("#filter", Static).update(
            Content(
                f"showing: {label} ({len(self.jobs)})  —  f filter · c cancel · X cancel all background"
                " · r retry now · +/- priority"
            )
        )

    @on(feed.JobChanged)
    @guarded
    def _job_changed(self, message: feed.JobChanged) -> None:
        job = message.event.job
        shown = self.jobs.get(job.id)
        if shown is not None and job.updated_at < shown.updated_at:
            return  # older than what a reload read meanwhile
        if self.state is not None and job.state is not self.state:
            if job.id in self.jobs:
                self._remove(job.id)
                self._label()
            return
        if job.id not in self.jobs and self.jobs and job.id < min(self.jobs) and len(self.jobs) >= LIMIT:
            return  # older than every job listed: past the limit
        if self._put(job, self.titles(), wallclock()):
            self._sort()
            while len(self.jobs) > LIMIT:
                self._remove(min(self.jobs))
        self._label()

    @on(feed.QueueStatsChanged)
    @guarded
    async def _stats_changed(self) -> None:
        await self._totals()

    @on(feed.SessionDeleted)
    @guarded
    def _session_deleted(self, message: feed.SessionDeleted) -> None:
        for job in [j for j in self.jobs.values() if j.session_id == message.event.session_id]:
            self._remove(job.id)  # its jobs went with it
        self._label()

    @on(feed.ExternalChange)
    @guarded
    async def _external_change(self) -> None:
        await self.reload()

    @guarded
    def _titles_changed(self, session_id: int | None) -> None:
        titles, now = self.titles(), wallclock()
        for job in list(self.jobs.values()):
            if session_id is None or job.session_id == session_id:
                self._put(job, titles, now)

    @guarded
    def _clock(self) -> None:
        """Waiting and running times, and when a retry is due, move on with the clock."""
        titles, now = self.titles(), wallclock()
        for job in list(self.jobs.values()):
            if job.state in (JobState.QUEUED, JobState.RUNNING, JobState.HELD):
                self._put(job, titles, now)

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
    async def action_cancel_background(self) -> None:
        """Every job of the sessions but the one open in the chat pane, after a yes."""
        await confirm_cancel_background(self.app, self.coord, self.current())

    @work(exclusive=True, group="queue-action")
    @guarded
    async def action_cancel_job(self) -> None:
        if (job := self.selected_job()) is None:
            return
        if job.state not in (JobState.QUEUED, JobState.RUNNING, JobState.HELD):
            self.notify(f"Job {job.id} is {job.state.value}; nothing to cancel", severity="warning")
            return
        question = (
            f"Cancel tool call {job.id}? Its turn ends here (F6 would deny it and let the model go on)."
            if job.state is JobState.HELD
            else f"Cancel job {job.id}? Its partial reply is kept."
        )
        if await self.app.push_screen_wait(ConfirmScreen(question)):
            await self.coord.cancel_job(job.id)  # its JobChanged updates the row

    @work(exclusive=True, group="queue-action")
    @guarded
    async def action_retry_job(self) -> None:
        if (job := self.selected_job()) is None:
            return
        if job.state is JobState.RUNNING:
            self.notify(f"Job {job.id} is running", severity="warning")
            return
        if job.state is JobState.HELD:
            self.notify(f"Job {job.id} waits for your approval: F6 answers it", severity="warning", markup=False)
            return
        if job.is_tool:  # a call never runs again by itself (it may have side effects)
            self.notify(
                f"Job {job.id} is a tool call: it is not run again by itself; retry its reply (ctrl+r in its session)",
                severity="warning",
                markup=False,
            )
            return
        if job.state is JobState.SUCCEEDED and not await self.app.push_screen_wait(
            ConfirmScreen(f"Generate job {job.id}'s reply again? The current reply is replaced.")
        ):
            return
        if job.state is JobState.QUEUED:
            await self.coord.run_now(job.id)
        else:
            try:
                await self.coord.retry_job(job.id)
            except StepOpen as e:
                self.notify(f"Job {job.id}: {e}", severity="warning", markup=False)

    @guarded
    async def action_priority(self, name: str) -> None:
        if (job := self.selected_job()) is None:
            return
        if job.state is not JobState.QUEUED:
            self.notify(f"Only queued jobs change priority (job {job.id} is {job.state.value})", severity="warning")
            return
        await self.coord.set_job_priority(job.id, Priority[name])
