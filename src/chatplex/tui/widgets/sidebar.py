"""The session list: one two-line row per session, most recently active first.

An OptionList renders only the rows in view, so a thousand sessions cost no more than a
screenful; a change to one session re-renders that row alone.
"""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size
from textual import on
from textual.content import Content
from textual.geometry import Size
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from chatplex.core.models import Session, SessionStatus
from chatplex.tui.errors import guarded
from chatplex.tui.safe import visible

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
MARKS: dict[SessionStatus, tuple[str, str]] = {
    SessionStatus.IDLE: ("○", "$text-muted"),
    SessionStatus.QUEUED: ("", "$text-muted"),  # spinner, dim: waiting for a worker
    SessionStatus.STREAMING: ("", "$accent"),  # spinner
    SessionStatus.WAITING: ("●", "$success"),
    SessionStatus.ERROR: ("✖", "$error"),
    SessionStatus.INTERRUPTED: ("‖", "$warning"),
}
ANIMATED = (SessionStatus.QUEUED, SessionStatus.STREAMING)
# What each mark means, for the help screen (F1), in its two columns
MEANING = {
    SessionStatus.IDLE: "idle — nothing asked yet",
    SessionStatus.QUEUED: "queued (dim) — waits for a worker",
    SessionStatus.STREAMING: "answering — the model streams",
    SessionStatus.WAITING: "your turn — bold, with a count: unread",
    SessionStatus.ERROR: "failed — the reply says why",
    SessionStatus.INTERRUPTED: "paused — resumes by itself",
}
PREVIEW_MARKS = "In the second line: ⏹ cancelled · ↻ retrying soon · ⚠ failed"


def legend() -> Content:
    """The marks a row can show and what each means (F1)."""
    cells = []
    for status, meaning in MEANING.items():
        mark, style = MARKS[status]
        cells.append(Content.assemble((mark or SPINNER[0], style), " ", meaning))
    half = (len(cells) + 1) // 2
    lines = [
        Content.assemble(left, " " * max(42 - left.cell_length, 1), right)
        for left, right in zip(cells[:half], cells[half:], strict=False)
    ]
    return Content("\n").join([*lines, Content(PREVIEW_MARKS).stylize("$text-muted")])


ROW_HEIGHT = 2
PLACEHOLDER = {
    SessionStatus.QUEUED: "queued…",
    SessionStatus.STREAMING: "streaming…",
    SessionStatus.INTERRUPTED: "paused; resumes when a worker is free",
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
    badge = f" {session.unread} " if session.unread else ""
    title_width = max(width - 3 - len(badge), 4)
    title = Content(_cut(session.title, title_width))
    if session.unread or focused:
        title = title.stylize("bold")
    line1 = Content.assemble((mark, style), " ", title)
    if badge:
        pad = max(width - line1.cell_length - len(badge), 1)
        line1 = Content.assemble(line1, " " * pad, (badge, "bold $text on $accent"))
    preview = session.preview or PLACEHOLDER.get(session.status, "")
    line2 = Content.assemble(
        "  ", (_cut(preview, max(width - 2, 4)), "$error" if session.status is SessionStatus.ERROR else "$text-muted")
    )
    return Content("\n").join([line1, line2])


class SessionList(OptionList):
    """Rows keyed by session id; `Selected` asks the app to focus that session."""

    class Selected(Message):
        def __init__(self, session_id: int) -> None:
            super().__init__()
            self.session_id = session_id

    DEFAULT_CSS = """
    SessionList { width: 100%; height: 1fr; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.sessions: dict[int, Session] = {}
        self.order: list[int] = []
        self.focused_id: int | None = None
        self._frame = 0

    # Every row is exactly ROW_HEIGHT lines (title and preview are cut to the width), so the
    # line map is arithmetic. OptionList would measure every row after any change to one —
    # with 1,000 sessions that is ~70 ms per spinner frame or highlight move (B6).
    def _update_lines(self) -> None:
        if not self.scrollable_content_region:
            return
        cache = self._line_cache
        count = len(self.options)
        if len(cache.heights) != count:
            cache.lines = [(i, j) for i in range(count) for j in range(ROW_HEIGHT)]
            cache.heights = dict.fromkeys(range(count), ROW_HEIGHT)
            cache.index_to_line = {i: i * ROW_HEIGHT for i in range(count)}
        width = self.scrollable_content_region.width - self._get_left_gutter_width()
        virtual_size = Size(width, len(cache.lines))
        if virtual_size != self.virtual_size:
            self.virtual_size = virtual_size
            self._scroll_update(virtual_size)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return ROW_HEIGHT * len(self.options)

    @guarded
    def on_mount(self) -> None:
        self.set_interval(0.1, self._spin)

    @property
    def row_width(self) -> int:
        return max(self.scrollable_content_region.width - 3, 12) if self.is_mounted and self.size.width else 28

    def set_sessions(self, sessions: list[Session]) -> None:
        self.sessions = {s.id: s for s in sessions}
        self._rebuild()

    def _sorted(self) -> list[int]:
        return [s.id for s in sorted(self.sessions.values(), key=lambda s: (s.updated_at, s.id), reverse=True)]

    def _rebuild(self) -> None:
        self.order = self._sorted()
        width = self.row_width
        self.set_options(
            Option(row(self.sessions[sid], width, self._frame, sid == self.focused_id), id=str(sid))
            for sid in self.order
        )
        self._highlight_focused()

    def _highlight_focused(self) -> None:
        if self.focused_id in self.sessions:
            index = self.order.index(self.focused_id)
            if self.highlighted != index:  # moving it measures every row: only when it moves
                self.highlighted = index

    def upsert(self, session: Session) -> None:
        known = session.id in self.sessions
        self.sessions[session.id] = session
        if not known or self._sorted() != self.order:
            self._rebuild()
        else:
            self._render_row(session.id)

    def remove_session(self, session_id: int) -> None:
        if self.sessions.pop(session_id, None) is not None:
            self._rebuild()

    def set_focused(self, session_id: int | None) -> None:
        previous, self.focused_id = self.focused_id, session_id
        for sid in (previous, session_id):
            if sid in self.sessions:
                self._render_row(sid)
        self._highlight_focused()

    def _render_row(self, sid: int) -> None:
        self.replace_option_prompt(
            str(sid), row(self.sessions[sid], self.row_width, self._frame, sid == self.focused_id)
        )

    @guarded
    def _spin(self) -> None:
        """Textual's animation level "none" (TEXTUAL_ANIMATIONS=none) keeps the marks still."""
        if self.app.animation_level == "none":
            return
        self._frame += 1
        for sid, session in self.sessions.items():
            if session.status in ANIMATED:
                self._render_row(sid)

    @guarded
    def on_resize(self) -> None:
        if self.sessions:
            self._rebuild()

    @on(OptionList.OptionSelected)
    @guarded
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.Selected(int(event.option.id)))
