"""The session list: one two-line row per session, most recently active first.

Drawn line by line (Textual's Line API): only the rows in view are formatted, so ten
thousand sessions cost no more than a screenful; a change to one session redraws that row.
"""

from __future__ import annotations

import bisect
from typing import Any, ClassVar

from rich.cells import cell_len, set_cell_size
from textual import events, on
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.content import Content
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.visual import Padding, Visual

from chatplex.core.models import Session, SessionStatus
from chatplex.tui.errors import guarded
from chatplex.tui.safe import visible

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
MARKS: dict[SessionStatus, tuple[str, str]] = {
    SessionStatus.IDLE: ("○", "$text-muted"),
    SessionStatus.QUEUED: ("", "$text-muted"),  # spinner, dim: waiting for a worker
    SessionStatus.STREAMING: ("", "$accent"),  # spinner
    SessionStatus.THINKING: ("", "$text-primary"),  # spinner, in its own colour: no answer yet
    SessionStatus.WAITING: ("●", "$success"),
    SessionStatus.ERROR: ("✖", "$error"),
    SessionStatus.INTERRUPTED: ("‖", "$warning"),
    SessionStatus.RUNNING_TOOL: ("", "$secondary"),  # spinner: a tool call of the turn runs
    SessionStatus.NEEDS_APPROVAL: ("?", "bold $text on $warning"),  # the loudest: it waits for you
}
ANIMATED = (SessionStatus.QUEUED, SessionStatus.STREAMING, SessionStatus.THINKING, SessionStatus.RUNNING_TOOL)
# What each mark means, for the help screen (F1), in its two columns
MEANING = {
    SessionStatus.IDLE: "idle — nothing asked yet",
    SessionStatus.QUEUED: "queued (dim) — waits for a worker",
    SessionStatus.STREAMING: "answering — the model streams",
    SessionStatus.THINKING: "thinking — the model reasons first",
    SessionStatus.WAITING: "your turn — bold, with a count: unread",
    SessionStatus.ERROR: "failed — the reply says why",
    SessionStatus.INTERRUPTED: "paused — resumes by itself",
    SessionStatus.RUNNING_TOOL: "running a tool the model called",
    SessionStatus.NEEDS_APPROVAL: "needs you — a tool call waits",
}
PREVIEW_MARKS = "In the second line: ⏹ cancelled · ↻ retrying soon · ⚠ failed · badge ! : a tool call needs you (F6)"


def legend() -> Content:
    """The marks a row can show and what each means (F1)."""
    cells = []
    for status, meaning in MEANING.items():
        mark, style = MARKS[status]
        cells.append(Content.assemble((mark or SPINNER[0], style), " ", meaning))
    half = (len(cells) + 1) // 2
    rights = cells[half:] + [Content("")] * (half - len(cells[half:]))
    lines = [
        Content.assemble(left, " " * max(42 - left.cell_length, 1), right)
        for left, right in zip(cells[:half], rights, strict=True)
    ]
    return Content("\n").join([*lines, Content(PREVIEW_MARKS).stylize("$text-muted")])


ROW_HEIGHT = 2
PLACEHOLDER = {
    SessionStatus.QUEUED: "queued…",
    SessionStatus.STREAMING: "streaming…",
    SessionStatus.THINKING: "thinking…",
    SessionStatus.INTERRUPTED: "paused; resumes when a worker is free",
    SessionStatus.RUNNING_TOOL: "running a tool…",
    SessionStatus.NEEDS_APPROVAL: "needs your approval (F6)",
}


def _cut(text: str, width: int) -> str:
    """One line of at most `width` terminal cells (wide characters count two)."""
    text = " ".join(visible(text).split())
    if cell_len(text) <= width:
        return text
    return set_cell_size(text, max(width - 1, 0)).rstrip() + "…"


def row(session: Session, width: int, frame: int = 0, focused: bool = False) -> Content:
    mark, style = MARKS[session.status]
    if session.status in ANIMATED:
        mark = SPINNER[frame % len(SPINNER)]
    approval = session.status is SessionStatus.NEEDS_APPROVAL
    badge = " ! " if approval else f" {session.unread} " if session.unread else ""
    title_width = max(width - 3 - len(badge), 4)
    pin = "↑ " if session.pinned else ""  # kept at the top (the palette's "Pin this session")
    title = Content(pin + _cut(session.title, title_width - len(pin)))
    if session.unread or focused or approval:
        title = title.stylize("bold")
    line1 = Content.assemble((mark, style), " ", title)
    if badge:
        pad = max(width - line1.cell_length - len(badge), 1)
        line1 = Content.assemble(line1, " " * pad, (badge, f"bold $text on {'$warning' if approval else '$accent'}"))
    preview = session.preview or PLACEHOLDER.get(session.status, "")
    style = "$text-muted"
    if session.status is SessionStatus.ERROR:
        style = "$error"
    elif session.status is SessionStatus.THINKING:  # what it does now, not the last reply's start
        preview, style = PLACEHOLDER[SessionStatus.THINKING], f"italic {MARKS[SessionStatus.THINKING][1]}"
    elif session.status in (SessionStatus.NEEDS_APPROVAL, SessionStatus.RUNNING_TOOL):
        preview = PLACEHOLDER[session.status]
        style = "bold $warning" if approval else "italic $secondary"
    line2 = Content.assemble("  ", (_cut(preview, max(width - 2, 4)), style))
    return Content("\n").join([line1, line2])


class SessionList(ScrollView, can_focus=True):
    """Rows keyed by session id; `Selected` asks the app to focus that session.

    A virtual list on Textual's Line API (as Textual's own `Log`): every row is exactly
    ROW_HEIGHT lines, so a line maps to its row arithmetically and only the rows on screen
    are ever formatted. Ten thousand sessions cost a sort and a screenful.
    """

    class Selected(Message):
        def __init__(self, session_id: int) -> None:
            super().__init__()
            self.session_id = session_id

    ALLOW_SELECT = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down", "row_down", "Down", show=False),
        Binding("up", "row_up", "Up", show=False),
        Binding("home", "row_first", "First", show=False),
        Binding("end", "row_last", "Last", show=False),
        Binding("pagedown", "row_page_down", "Page Down", show=False),
        Binding("pageup", "row_page_up", "Page Up", show=False),
        Binding("enter", "open_row", "Select", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "session-list--row",
        "session-list--row-highlighted",
        "session-list--row-hover",
    }
    # The look of Textual's OptionList, which this list replaced: the same theme variables.
    DEFAULT_CSS = """
    SessionList {
        width: 100%;
        height: 1fr;
        overflow-x: hidden;
        text-wrap: nowrap;
        color: $foreground;
        background: $surface;
        &:focus {
            background-tint: $foreground 5%;
            & > .session-list--row-highlighted {
                color: $block-cursor-foreground;
                background: $block-cursor-background;
                text-style: $block-cursor-text-style;
            }
        }
        & > .session-list--row { padding: 0 1; }
        & > .session-list--row-highlighted {
            color: $foreground;
            background: $block-cursor-blurred-background;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .session-list--row-hover { background: $block-hover-background; }
    }
    """

    highlighted: reactive[int | None] = reactive(None)
    """The index in `order` of the row the cursor is on, or None."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sessions: dict[int, Session] = {}
        self.order: list[int] = []  # session ids, most recently active first
        self.focused_id: int | None = None
        self._frame = 0
        self._hover: int | None = None
        # (session id, what its row shows, width, style) -> its ROW_HEIGHT strips
        self._row_cache: LRUCache[tuple[object, ...], list[Strip]] = LRUCache(256)

    @on(events.Mount)
    @guarded
    def _start_spinner(self) -> None:
        self.set_interval(0.1, self._spin)

    @property
    def row_width(self) -> int:
        return max(self.scrollable_content_region.width - 3, 12) if self.is_mounted and self.size.width else 28

    # ------------------------------------------------------------ the rows
    def set_sessions(self, sessions: list[Session]) -> None:
        self.sessions = {s.id: s for s in sessions}
        self.order = sorted(self.sessions, key=self._rank)
        self._rows_changed()

    def _rank(self, sid: int) -> tuple[bool, float, int]:
        """Sort key of `order`, ascending: pinned sessions first, then most recently active
        first, newest id on ties."""
        session = self.sessions[sid]
        return (not session.pinned, -session.updated_at, -session.id)

    def upsert(self, session: Session) -> None:
        known = session.id in self.sessions
        self.sessions[session.id] = session
        at = self.order.index(session.id) if known else -1
        if known:
            del self.order[at]
        bisect.insort(self.order, session.id, key=self._rank)
        if known and self.order[at] == session.id:  # still in its place: redraw that row alone
            self._refresh_row(at)
        else:
            self._rows_changed()

    def remove_session(self, session_id: int) -> None:
        if self.sessions.pop(session_id, None) is not None:
            self.order.remove(session_id)
            self._rows_changed()

    def set_focused(self, session_id: int | None) -> None:
        previous, self.focused_id = self.focused_id, session_id
        for sid in (previous, session_id):
            if sid in self.sessions:
                self._refresh_row(self.order.index(sid))
        self._highlight_focused()

    def _rows_changed(self) -> None:
        """Rows were added, removed or moved: new height, and the cursor on the focused row."""
        self.virtual_size = Size(0, ROW_HEIGHT * len(self.order))
        self._hover = None
        self._highlight_focused(clear=True)
        self.refresh()

    def _highlight_focused(self, clear: bool = False) -> None:
        """The cursor on the focused session's row (unchanged, it does not scroll the list)."""
        if self.focused_id in self.sessions:
            self.highlighted = self.order.index(self.focused_id)
        elif clear:
            self.highlighted = None

    def _refresh_row(self, index: int) -> None:
        self.refresh_lines(index * ROW_HEIGHT, ROW_HEIGHT)

    def _visible_rows(self) -> range:
        top = self.scroll_offset.y // ROW_HEIGHT
        bottom = (self.scroll_offset.y + self.scrollable_content_region.height - 1) // ROW_HEIGHT
        return range(top, min(bottom + 1, len(self.order)))

    def _row_at(self, y: int) -> int | None:
        """The row under line `y` of the content region, if any."""
        index = (self.scroll_offset.y + y) // ROW_HEIGHT
        return index if y >= 0 and 0 <= index < len(self.order) else None

    # ------------------------------------------------------------ drawing
    def render_line(self, y: int) -> Strip:
        """One line on screen: its row's strips, formatted once per change of that row."""
        width = self.scrollable_content_region.width
        index, line = divmod(self.scroll_offset.y + y, ROW_HEIGHT)
        if not 0 <= index < len(self.order):
            return Strip.blank(width, self.get_visual_style("session-list--row").rich_style)
        return self._row_strips(index, width)[line]

    def _row_strips(self, index: int, width: int) -> list[Strip]:
        """Cached by what the row shows: a spinner frame or a cursor move formats that row
        alone, and the two lines of a row are formatted together."""
        sid = self.order[index]
        session = self.sessions[sid]
        state = "highlighted" if index == self.highlighted else "hover" if index == self._hover else ""
        style = self.get_visual_style("session-list--row", *([f"session-list--row-{state}"] if state else []))
        padding = self.get_component_styles("session-list--row").padding
        frame = self._frame if session.status in ANIMATED else 0
        focused = sid == self.focused_id
        shown = (session.title, session.status, session.unread, session.preview, frame, focused, session.pinned)
        key = (sid, shown, width, style, padding)
        if (strips := self._row_cache.get(key)) is None:
            content = row(session, self.row_width, frame, focused)
            drawn = Visual.to_strips(self, Padding(content, padding), width, ROW_HEIGHT, style)
            blank = Strip.blank(width, style.rich_style)
            strips = [s.extend_cell_length(width, style.rich_style) for s in drawn]
            strips += [blank] * (ROW_HEIGHT - len(strips))
            self._row_cache[key] = strips
        return strips

    @guarded
    def watch_highlighted(self, old: int | None, new: int | None) -> None:
        if new is not None and self.is_mounted:
            self._scroll_to_row(new)

    def validate_highlighted(self, index: int | None) -> int | None:
        if index is None or not self.order:
            return None
        return max(0, min(index, len(self.order) - 1))

    def _scroll_to_row(self, index: int) -> None:
        width = self.scrollable_content_region.width
        region = Region(0, index * ROW_HEIGHT, width, ROW_HEIGHT)
        self.scroll_to_region(region, force=True, animate=False, immediate=True)

    @guarded
    def on_show(self) -> None:
        if self.highlighted is not None:
            self._scroll_to_row(self.highlighted)

    @guarded
    def _spin(self) -> None:
        """Textual's animation level "none" (TEXTUAL_ANIMATIONS=none) keeps the marks still."""
        if self.app.animation_level == "none":
            return
        self._frame += 1
        for index in self._visible_rows():
            if self.sessions[self.order[index]].status in ANIMATED:
                self._refresh_row(index)

    # ------------------------------------------------------------ keys and mouse
    def _move(self, delta: int) -> None:
        if not self.order:
            return
        if self.highlighted is None:
            self.highlighted = 0 if delta > 0 else len(self.order) - 1
        else:
            self.highlighted = self.highlighted + delta

    @guarded
    def action_row_down(self) -> None:
        self._move(1)

    @guarded
    def action_row_up(self) -> None:
        self._move(-1)

    @guarded
    def action_row_first(self) -> None:
        self.highlighted = 0

    @guarded
    def action_row_last(self) -> None:
        self.highlighted = len(self.order) - 1

    @guarded
    def action_row_page_down(self) -> None:
        self._move(max(self.scrollable_content_region.height // ROW_HEIGHT, 1))

    @guarded
    def action_row_page_up(self) -> None:
        self._move(-max(self.scrollable_content_region.height // ROW_HEIGHT, 1))

    @guarded
    def action_open_row(self) -> None:
        if self.highlighted is not None:
            self.post_message(self.Selected(self.order[self.highlighted]))

    @on(events.Click)
    @guarded
    def _clicked(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)  # None on the scrollbar: it scrolls by itself
        index = self._row_at(offset.y) if offset is not None else None
        if index is not None:
            self.highlighted = index
            self.action_open_row()

    @on(events.MouseMove)
    @guarded
    def _hovered(self, event: events.MouseMove) -> None:
        offset = event.get_content_offset(self)
        self._set_hover(self._row_at(offset.y) if offset is not None else None)

    @on(events.Leave)
    @guarded
    def _left(self, event: events.Leave) -> None:
        self._set_hover(None)

    def _set_hover(self, index: int | None) -> None:
        if index != self._hover:
            for old in (self._hover, index):
                if old is not None:
                    self._refresh_row(old)
            self._hover = index
