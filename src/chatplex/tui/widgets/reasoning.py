"""A reply's reasoning and tool calls, as the chat pane shows them above and inside the answer.

Reasoning streams in a dimmed block ("thinking 12 s", its last lines), and once the answer
starts folds to one line ("thought for 38 s · 1,204 tokens") that a click or a key opens.
A tool call is a compact card: the tool's name and its arguments summarised in one line.
Everything here is model output: literal text, never markup or escapes.
"""

from __future__ import annotations

import json
import time

from textual import events
from textual.content import Content
from textual.widgets import Static

from chatplex.tui.errors import guarded
from chatplex.tui.safe import plain

PEEK_LINES = 6  # lines of the thinking shown while it streams (the newest)
PEEK_CHARS = 2_000  # …of at most this much of its end: cost bounded however long it thinks


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


class ReasoningBlock(Static):
    """One reasoning part. `expanded` says whether its whole text shows; while it streams it
    shows its newest lines, and it folds by itself when the answer begins (`done`)."""

    DEFAULT_CSS = """
    ReasoningBlock {
        color: $text-muted;
        padding: 0 1;
        margin: 0 0 1 0;
        border-left: vkey $foreground 20%;
    }
    """

    def __init__(self, text: str = "", *, streaming: bool = False, tokens: int | None = None) -> None:
        super().__init__("", markup=False, classes="reasoning")
        self._chunks = [text]
        self.length = len(text)
        self.streaming = streaming
        self.started = time.monotonic()
        self.elapsed: float | None = None  # set when it ends
        self.tokens = tokens
        self.interrupted = False
        self.expanded = False
        self._due = False

    @property
    def text(self) -> str:
        if len(self._chunks) > 1:
            self._chunks = ["".join(self._chunks)]
        return self._chunks[0]

    @guarded
    def on_mount(self) -> None:
        self._show()

    def append(self, text: str) -> None:
        """More thinking; shown at the next refresh, however many pieces came before it."""
        self._chunks.append(text)
        self.length += len(text)
        if not self._due:
            self._due = True
            self.call_after_refresh(self._show)

    def done(self, *, tokens: int | None = None, interrupted: bool = False) -> None:
        """The thinking ended (the answer began, or the reply stopped): fold to one line."""
        if self.streaming:
            self.elapsed = time.monotonic() - self.started
        self.streaming = False
        self.interrupted = interrupted
        if tokens is not None:
            self.tokens = tokens
        self._show()

    def toggle(self) -> None:
        self.expanded = not self.expanded
        self._show()

    def tick(self) -> None:
        """Once a second while thinking: the count in the title goes on."""
        if self.streaming:
            self._show()

    @guarded
    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.toggle()

    def title(self) -> str:
        if self.streaming:
            return f"thinking {_duration(time.monotonic() - self.started)}"
        figures = []
        if self.elapsed is not None:
            figures.append(f"for {_duration(self.elapsed)}")
        if self.tokens:
            figures.append(f"{self.tokens:,} tokens")
        elif self.length:
            figures.append(f"~{max(1, self.length // 4):,} tokens")  # no count from the server: an estimate
        what = "thinking interrupted" if self.interrupted else "thought"
        mark = "▾" if self.expanded else "▸"
        return f"{mark} {what} " + " · ".join(figures) if figures else f"{mark} {what}"

    @guarded
    def _show(self) -> None:
        self._due = False
        head = plain(self.title(), "italic")
        if self.streaming and not self.expanded:
            tail = self.text[-PEEK_CHARS:]
            lines = tail.splitlines()[-PEEK_LINES:]
            body = "\n".join(lines)
        elif self.expanded:
            body = self.text
        else:
            body = ""
        self.update(Content.assemble(head, "\n", plain(body)) if body else head)


def summarise(arguments: str, width: int = 60) -> str:
    """A tool call's arguments in one line: `key=value, …` for a JSON object, else the text
    itself, cut at `width` characters with an ellipsis."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        value = None
    if isinstance(value, dict):
        text = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in value.items())
    else:
        text = " ".join(arguments.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class ToolCard(Static):
    """One tool call: `⚙ name(arguments, summarised)` and a line saying where it stands."""

    DEFAULT_CSS = """
    ToolCard {
        padding: 0 1;
        margin: 0 0 1 0;
        border: round $secondary 50%;
    }
    ToolCard.-error {
        border: round $error;
    }
    """

    def __init__(self, name: str, arguments: str = "", *, status: str = "") -> None:
        super().__init__("", markup=False, classes="tool-card")
        self.tool_name = name
        self.arguments = arguments
        self.status = status

    @guarded
    def on_mount(self) -> None:
        self._show()

    def set_call(self, name: str, arguments: str) -> None:
        self.tool_name, self.arguments = name, arguments
        self._show()

    def set_status(self, status: str, *, error: bool = False) -> None:
        self.status = status
        self.set_class(error, "-error")
        self._show()

    @guarded
    def _show(self) -> None:
        call = Content.assemble(
            plain("⚙ ", "$secondary"),
            plain(self.tool_name or "?", "bold"),
            plain(f"({summarise(self.arguments)})"),
        )
        self.update(Content.assemble(call, "\n", plain(self.status, "$text-muted")) if self.status else call)
