"""A reply's reasoning and tool calls, as the chat pane shows them above and inside the answer.

Reasoning streams in a dimmed block ("thinking 12s", its last lines), and once the answer
starts folds to one line ("thought for 38s · 1,204 tokens") that a click or a key opens.
A tool call is a compact card: the tool's name and its arguments summarised in one line.
Everything here is model output: literal text, never markup or escapes. Pieces arriving
within one frame are shown together at the next refresh, as the answer's text is.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from textual import events
from textual.content import Content
from textual.widgets import Static

from chatplex.core.text import duration
from chatplex.tui.errors import guarded
from chatplex.tui.safe import plain

clock: Callable[[], float] = time.monotonic  # snapshot tests fix it
PEEK_LINES = 6  # lines of the thinking shown while it streams (the newest)
PEEK_CHARS = 2_000  # …of at most this much of its end: cost bounded however long it thinks
# An open thought shows at most this much of its end (a Static re-wraps all it holds at each
# update): while it streams, a screenful or two; once done, as much as a reply's Markdown.
OPEN_STREAMING_CHARS = 8_000
OPEN_CHARS = 50_000
REDACTED = (
    "The provider sent this thinking encrypted: it goes back to the model with the conversation, but cannot be shown."
)
PARSE_CHARS = 4_096  # tool arguments longer than this are summarised without parsing them


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

    def __init__(
        self,
        text: str = "",
        *,
        streaming: bool = False,
        tokens: int | None = None,
        expanded: bool = False,
        interrupted: bool = False,
        redacted: bool = False,
    ) -> None:
        super().__init__("", markup=False, classes="reasoning")
        self.redacted = redacted  # the provider sent it encrypted (Anthropic's redacted_thinking)
        self._chunks = [text]
        self.length = len(text)
        self.streaming = streaming
        self.started = clock()
        self.elapsed: float | None = None  # set when it ends
        self.tokens = tokens
        self.interrupted = interrupted
        self.expanded = expanded
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

    def reset_text(self, text: str) -> None:
        """Its whole text is `text` (the stored part, at the reply's end)."""
        self._chunks, self.length = [text], len(text)
        if not self._due:
            self._due = True
            self.call_after_refresh(self._show)

    def add(self, text: str, offset: int) -> bool:
        """A streamed piece starting at `offset` of this part; the part before our length is
        shown already (a page loaded while the model thought). False if nothing was new."""
        if offset + len(text) <= self.length:
            return False
        self.append(text[self.length - offset :] if offset < self.length else text)
        return True

    def done(self, *, tokens: int | None = None, interrupted: bool = False) -> None:
        """The thinking ended (the answer began, or the reply stopped): fold to one line."""
        if self.streaming:
            self.elapsed = clock() - self.started
        self.streaming = False
        self.interrupted = interrupted
        if tokens is not None:
            self.tokens = tokens
        self._show()

    def set_expanded(self, expanded: bool) -> None:
        if expanded != self.expanded:
            self.expanded = expanded
            self._show()

    def toggle(self) -> None:
        self.set_expanded(not self.expanded)

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
            return f"thinking {duration(clock() - self.started)}"
        what = "thinking interrupted" if self.interrupted else "thought"
        title = f"{'▾' if self.expanded else '▸'} {what}"
        if self.elapsed is not None:
            title += f" for {duration(self.elapsed)}"
        if self.redacted and not self.length:
            title += " · redacted by the provider"
        if self.tokens:
            title += f" · {self.tokens:,} token{'s' if self.tokens != 1 else ''}"
        elif self.length:
            guess = max(1, self.length // 4)  # no count from the server: an estimate
            title += f" · ~{guess:,} token{'s' if guess != 1 else ''}"
        return title

    def _body(self) -> Content:
        if self.expanded and self.redacted and not self.length:
            return plain(REDACTED, "italic")
        if self.expanded:
            most = OPEN_STREAMING_CHARS if self.streaming else OPEN_CHARS
            text = self.text
            if len(text) <= most:
                return plain(text)
            end = text[-most:]
            end = end[end.find("\n") + 1 :] if "\n" in end[:200] else end  # from a line's start
            note = f"⋯ the first {len(text) - len(end):,} characters are not shown (the export has them)"
            return Content.assemble(plain(note, "italic"), "\n", plain(end))
        if self.streaming:
            lines = self.text[-PEEK_CHARS:].splitlines()[-PEEK_LINES:]
            return plain("\n".join(lines))
        return Content("")

    @guarded
    def _show(self) -> None:
        self._due = False
        head = plain(self.title(), "italic")
        body = self._body()
        self.update(Content.assemble(head, "\n", body) if body.plain.strip() else head)


def summarise(arguments: str, width: int = 60) -> str:
    """A tool call's arguments in one line: `key=value, …` for a JSON object, else the text
    itself, cut at `width` characters with an ellipsis."""
    value = None
    if len(arguments) <= PARSE_CHARS:
        try:
            value = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            value = None
    if isinstance(value, dict):
        text = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in value.items())
    else:
        text = " ".join(arguments[: width * 4].split())
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

    def __init__(self, name: str, arguments: str = "", *, status: str = "", error: bool = False) -> None:
        super().__init__("", markup=False, classes="tool-card -error" if error else "tool-card")
        self.tool_name = name
        self._chunks = [arguments]  # the arguments' text as streamed
        self._length = len(arguments)
        self.status = status
        self._due = False

    @property
    def arguments(self) -> str:
        if len(self._chunks) > 1:
            self._chunks = ["".join(self._chunks)]
        return self._chunks[0]

    @guarded
    def on_mount(self) -> None:
        self._show()

    def set_call(self, name: str, arguments: str) -> None:
        self.tool_name, self._chunks, self._length = name, [arguments], len(arguments)
        self._show()

    def add(self, text: str, offset: int, name: str = "") -> None:
        """A streamed piece of the arguments at `offset` (and the tool's name, once known);
        shown at the next refresh."""
        if name:
            self.tool_name = name
        if offset + len(text) > self._length:
            text = text[self._length - offset :] if offset < self._length else text
            self._chunks.append(text)
            self._length += len(text)
        if not self._due:
            self._due = True
            self.call_after_refresh(self._show)

    def set_status(self, status: str, *, error: bool = False) -> None:
        self.status = status
        self.set_class(error, "-error")
        self._show()

    @guarded
    def _show(self) -> None:
        self._due = False
        call = Content.assemble(
            plain("⚙ ", "$secondary"),
            plain(self.tool_name or "?", "bold"),
            plain(f"({summarise(self.arguments)})"),
        )
        self.update(Content.assemble(call, "\n", plain(self.status, "$text-muted")) if self.status else call)
