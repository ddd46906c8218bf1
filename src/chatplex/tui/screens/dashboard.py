"""The dashboard: one tile per session, most recently active first, showing what every
session is doing — status, unread count, the running reply's elapsed time, tokens and
tokens/s, and its last lines streaming live (plain text: no Markdown parse per token).

Tiles follow events, not a poll: the app's `sessions_changed` signal (a session changed as
the sidebar shows it) and the feed's ReplyStarted / ReplyFinished / Streamed mark the tiles
they concern, and those are re-rendered together at most every REFRESH seconds (only if their
text changed), plus once a second while a reply runs (its elapsed time). So 50 sessions with
20 streaming stay cheap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.signal import Signal
from textual.widgets import Footer, Static

from chatplex.core.coordinator import Coordinator, Running
from chatplex.core.models import Session, SessionStatus
from chatplex.core.text import duration, preview_of
from chatplex.tui import feed
from chatplex.tui.errors import guarded
from chatplex.tui.safe import visible
from chatplex.tui.widgets.sidebar import MARKS, PLACEHOLDER

clock: Callable[[], float] = time.monotonic  # snapshot tests fix it
KEYS_LINE = "arrows/hjkl move · Enter or 1–9 opens · s sorts · Esc back"
ORDERS = ("most recent first", "needs you first")  # what `s` switches between


def needs_you_first(sessions: list[Session]) -> list[Session]:
    """Sessions waiting for an approval, then failed ones, then those with unread replies,
    then the rest; most recent first within each (the list comes most recent first)."""

    def rank(session: Session) -> int:
        if session.status is SessionStatus.NEEDS_APPROVAL:
            return 0
        if session.status is SessionStatus.ERROR:
            return 1
        return 2 if session.unread else 3

    return sorted(sessions, key=rank)  # stable: recency kept within a rank


LINES = 3  # lines of the reply shown per tile
TILE_WIDTH = 38  # columns are as many of these as fit, 1 to 4
MAX_TILES = 200  # the most recently active; 1,000 tiles would take a second to open
REFRESH = 0.2  # seconds: marked tiles are re-rendered together, at most this often


def _tail(chunks: list[str], width: int) -> list[str]:
    """The last LINES lines of the streamed text, wrapped to `width` (joins only the end)."""
    text, n = [], 0
    for chunk in reversed(chunks):
        text.append(chunk)
        n += len(chunk)
        if n > width * LINES * 2:
            break
    lines: list[str] = []
    for para in visible("".join(reversed(text))).split("\n"):
        para = " ".join(para.split())
        lines += [para[i : i + width] for i in range(0, len(para), width)] or [""]
    return lines[-LINES:]


def _thinking(rj: Running) -> list[str] | None:
    """The chunks of the thinking the run is in now (None: it is not thinking)."""
    pieces = rj.parts.pieces
    return pieces[-1].chunks if pieces and pieces[-1].kind == "reasoning" else None


def tile_text(
    session: Session, rj: Running | None, width: int, retry_key: str = "ctrl+r", approve_key: str = "f6"
) -> Content:
    """A tile's text; the keys it names are the app's (config.toml's [keys] may remap them)."""
    mark, style = MARKS[session.status]
    if session.status in (SessionStatus.QUEUED, SessionStatus.STREAMING, SessionStatus.THINKING):
        mark = "◌" if session.status is SessionStatus.QUEUED else "◉"
    title = visible(" ".join(session.title.split()))
    badge = f" {session.unread} new " if session.unread else ""
    title = title[: max(width - 3 - len(badge), 4)]
    head = Content.assemble((mark, style), " ", (title, "bold"))
    if badge:
        head = Content.assemble(
            head, " " * max(width - head.cell_length - len(badge), 1), (badge, "bold $text on $accent")
        )
    lines = [head, Content(visible(f"{session.provider} · {session.model}")[:width]).stylize("$text-muted")]
    if rj is not None and rj.job.is_tool:
        lines.append(Content(f"running a tool {duration(clock() - rj.started)}").stylize("$secondary"))
    elif rj is not None:
        now = clock()
        elapsed = now - rj.started
        thought = _thinking(rj) if session.status is SessionStatus.THINKING else None
        if thought is not None:  # no answer yet: how long it has thought, and its newest lines, dim
            lines.append(Content(f"thinking {duration(elapsed)} · {rj.other_events} tok").stylize(style))
            lines += [Content(line).stylize("italic $text-muted") for line in _tail(thought, width)]
            return Content("\n").join(lines)
        rate = rj.tokens / (now - rj.first_token) if rj.first_token and now > rj.first_token else 0.0
        lines.append(Content(f"streaming {duration(elapsed)} · {rj.tokens} tok · {rate:.0f} tok/s").stylize("$accent"))
        body = _tail(rj.chunks, width) if rj.chunks else ["waiting for the model…"]
        lines += [Content(line) for line in body]
    elif session.status is SessionStatus.ERROR:
        lines.append(Content(f"failed — Enter, then {retry_key} to retry").stylize("$error"))
        lines.append(Content(visible(preview_of(session.preview, width * 2))).stylize("$error"))
    elif session.status is SessionStatus.NEEDS_APPROVAL:
        lines.append(Content(f"? needs your approval — {approve_key} answers, Enter opens").stylize("bold $warning"))
    elif session.status is SessionStatus.INTERRUPTED:
        lines.append(Content("‖ interrupted — resumes when a worker is free").stylize("$warning"))
    else:
        state = {
            SessionStatus.WAITING: "replied — your turn",
            SessionStatus.QUEUED: "queued",
            SessionStatus.STREAMING: "streaming in another process",
            SessionStatus.THINKING: "thinking in another process",
            SessionStatus.RUNNING_TOOL: "running a tool in another process",
            SessionStatus.IDLE: "idle",
        }
        lines.append(Content(state.get(session.status, session.status.value)).stylize("$text-muted"))
        preview = session.preview or PLACEHOLDER.get(session.status, "")
        lines.append(Content(visible(preview_of(preview, width * 2))))
    return Content("\n").join(lines)


class Tile(Static):
    def __init__(self, session_id: int) -> None:
        super().__init__(classes="tile")
        self.session_id = session_id
        self.last: str | None = None

    def show(self, content: Content) -> None:
        if content.plain != self.last:
            self.last = content.plain
            self.update(content)


class DashboardScreen(Screen[int | None]):
    """Enter opens the highlighted session (the screen returns its id); Escape goes back."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Back"),
        Binding("enter", "open", "Open"),
        Binding("left,h", "move(-1, 0)", "←", show=False),
        Binding("right,l", "move(1, 0)", "→", show=False),
        Binding("up,k", "move(0, -1)", "↑", show=False),
        Binding("down,j", "move(0, 1)", "↓", show=False),
        # "jump to session N": plain digits arrive in every terminal (Alt+digit and Ctrl+digit
        # do not), and nothing on this screen takes text
        *(Binding(str(n), f"open_number({n})", f"Open {n}", show=False) for n in range(1, 10)),
        Binding("s", "sort", "Sort"),
    ]

    DEFAULT_CSS = """
    DashboardScreen #grid { grid-gutter: 0 1; height: auto; padding: 0 1; }
    DashboardScreen .tile { height: 8; border: round $panel; padding: 0 1; }
    DashboardScreen .tile.-selected { border: round $accent; background: $accent 10%; }
    DashboardScreen #dash-title { padding: 0 1; color: $text-muted; }
    """

    def __init__(
        self,
        coordinator: Coordinator,
        sessions: Callable[[], list[Session]],
        selected: int | None,
        events: feed.Feed,
        sessions_changed: Signal[int | None],
    ) -> None:
        super().__init__()
        self.coord = coordinator
        self.sessions = sessions  # the app's live view of the sessions, most recent first
        self.selected = selected
        self.events = events
        self.sessions_changed = sessions_changed
        self.order: list[int] = []
        self.tiles: dict[int, Tile] = {}
        self._marked: set[int] = set()  # tiles to render at the next refresh
        self._all = False  # …or every tile (and the order)
        self._due = False  # a refresh is scheduled
        self._live: set[int] = set()  # sessions with a reply running here (their clock ticks)
        self.retry_key, self.approve_key = "ctrl+r", "f6"  # the app sets its own (remapped) keys
        self.needs_first = False  # the order: most recent first, or what needs you first (`s`)

    def compose(self) -> ComposeResult:
        yield Static(f"Dashboard · {ORDERS[self.needs_first]} — {KEYS_LINE}", id="dash-title")
        with VerticalScroll():
            yield Grid(id="grid")
        yield Footer()

    @property
    def columns(self) -> int:
        return max(1, min(4, (self.size.width - 2) // TILE_WIDTH))

    @guarded
    async def on_mount(self) -> None:
        self._live = {rj.session.id for rj in self.coord.running()}
        self.events.subscribe(self, feed.ReplyStarted, feed.ReplyFinished, feed.Streamed)
        self.sessions_changed.subscribe(self, self._sessions_changed)
        await self.refresh_tiles()
        self.set_interval(1.0, self._clock)

    @guarded
    def on_unmount(self) -> None:
        self.events.unsubscribe(self)
        self.sessions_changed.unsubscribe(self)

    @guarded
    def on_resize(self) -> None:
        self.query_one("#grid", Grid).styles.grid_size_columns = self.columns
        self._mark(None)  # the tails wrap to the new width

    @guarded
    def _sessions_changed(self, session_id: int | None) -> None:
        self._mark(None if session_id is None else (session_id,))  # (the order is checked anyway)

    @on(feed.ReplyStarted)
    @guarded
    def _reply_started(self, message: feed.ReplyStarted) -> None:
        self._live.add(message.event.session_id)
        self._mark((message.event.session_id,))

    @on(feed.ReplyFinished)
    @guarded
    def _reply_finished(self, message: feed.ReplyFinished) -> None:
        self._live.discard(message.event.message.session_id)
        self._mark((message.event.message.session_id,))

    @on(feed.Streamed)
    @guarded
    def _streamed(self, message: feed.Streamed) -> None:
        self._mark(message.take())

    @guarded
    def _clock(self) -> None:
        if self._live:
            self._mark(self._live)

    def _mark(self, session_ids: Iterable[int] | None) -> None:
        """Render these tiles (None: all) at the next refresh, scheduled if it is not yet."""
        if session_ids is None:
            self._all = True
        else:
            self._marked.update(session_ids)
        if not self._due:
            self._due = True
            self.set_timer(REFRESH, self._refresh_due)

    @guarded
    async def _refresh_due(self) -> None:
        self._due = False
        marked, self._marked = self._marked, set()
        every, self._all = self._all, False
        await self.refresh_tiles(None if every else marked)

    async def refresh_tiles(self, only: set[int] | None = None) -> None:
        """Render the tiles of `only` (None: all of them, rebuilding the grid if the sessions
        shown or their order changed)."""
        every = self.sessions()
        if self.needs_first:
            every = needs_you_first(every)
        sessions = every[:MAX_TILES]
        order = [s.id for s in sessions]
        grid = self.query_one("#grid", Grid)
        grid.styles.grid_size_columns = self.columns
        if order != self.order:  # sessions added, removed or re-ordered: rebuild the grid
            only = None
            self.order = order
            which = "first" if self.needs_first else "most recent"
            more = f" — the {MAX_TILES} {which} of {len(every)} sessions" if len(every) > MAX_TILES else ""
            self.query_one("#dash-title", Static).update(f"Dashboard · {ORDERS[self.needs_first]}{more} — {KEYS_LINE}")
            await grid.remove_children()
            self.tiles = {sid: Tile(sid) for sid in order}
            for n, tile in enumerate(list(self.tiles.values())[:9], 1):
                tile.border_title = str(n)  # the digit that opens it
            await grid.mount_all(self.tiles.values())
            if self.selected not in self.tiles:
                self.selected = order[0] if order else None
        running = {rj.session.id: rj for rj in self.coord.running()}
        guess = max(12, (self.size.width - 2) // self.columns - 5)
        for session in sessions:
            if only is not None and session.id not in only:
                continue
            tile = self.tiles[session.id]
            width = tile.content_size.width or guess  # wrap the tail ourselves, to show its last lines
            tile.show(tile_text(session, running.get(session.id), width, self.retry_key, self.approve_key))
            tile.set_class(session.id == self.selected, "-selected")

    @guarded
    def action_move(self, dx: int, dy: int) -> None:
        if not self.order or self.selected is None:
            return
        i = self.order.index(self.selected)
        j = i + dx + dy * self.columns
        if 0 <= j < len(self.order):
            self.selected = self.order[j]
            for sid, tile in self.tiles.items():
                tile.set_class(sid == self.selected, "-selected")
            self.tiles[self.selected].scroll_visible()

    @guarded
    def action_open(self) -> None:
        self.dismiss(self.selected)

    @guarded
    def action_sort(self) -> None:
        """Most recent first, or what needs you first: approvals, failures, unread replies."""
        self.needs_first = not self.needs_first
        self.order = []  # the grid is laid out again, in the new order
        self._mark(None)

    @guarded
    def action_open_number(self, n: int) -> None:
        if 0 < n <= min(len(self.order), 9):
            self.dismiss(self.order[n - 1])
