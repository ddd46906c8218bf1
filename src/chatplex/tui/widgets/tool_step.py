"""One tool step of an agent turn in the chat pane: the call, where it stands (waits for
you, runs, cut with its outcome unknown) and, once done, its result folded to its first
lines. Tool output is data: shown literally, never as markup or terminal escapes."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from chatplex.core.models import Message, MessageState
from chatplex.providers.base import ToolCallPart, ToolResultPart
from chatplex.tui.errors import guarded
from chatplex.tui.safe import plain

FOLDED_LINES = 6  # of a result, shown; a click shows all of it


def result_of(message: Message) -> ToolResultPart | None:
    return next((p for p in message.parts if type(p) is ToolResultPart), None)


class ToolStep(Static):
    DEFAULT_CSS = """
    ToolStep { padding: 0 1; margin: 0 0 1 2; border: round $secondary 50%; }
    ToolStep.-error { border: round $error; }
    ToolStep.-needs-you { border: heavy $warning; }
    """

    def __init__(self, message: Message, call: ToolCallPart | None, approve_key: str = "f6") -> None:
        super().__init__("", classes="tool-step")
        self.message = message
        self.call = call
        self.approve_key = approve_key
        self.needs_you = False  # the session waits for the user's approval, and this call is pending
        self.expanded = False

    @property
    def call_id(self) -> str:
        found = result_of(self.message)
        return found.call_id if found else ""

    @property
    def pending(self) -> bool:
        return self.message.state is not MessageState.COMPLETE

    @guarded
    def on_mount(self) -> None:
        self._show()

    def finish(self, message: Message) -> None:
        self.message = message
        self.needs_you = self.needs_you and self.pending
        self._show()

    def set_needs_you(self, value: bool) -> None:
        value = value and self.pending
        if value != self.needs_you:
            self.needs_you = value
            self._show()

    @guarded
    async def on_click(self) -> None:
        if self.needs_you:  # the card says what to press: a click does the same
            await self.app.run_action("approvals")
            return
        self.expanded = not self.expanded
        self._show()

    def _show(self) -> None:
        call = self.call
        name = call.name if call else "tool"
        # the call itself is the reply's card just above: this says what became of it
        head = plain(f"↳ {name}", "bold") if call else plain("↳ a tool call (its reply is not on screen)", "bold")
        result = result_of(self.message)
        error = bool(result and result.is_error and not self.pending)
        lines: list[Content] = [head]
        if self.needs_you:
            lines.append(
                plain(f"? needs your approval — {self.approve_key}: y once · a always · n deny", "bold $warning")
            )
            if self.message.error:
                lines.append(plain(self.message.error, "$warning"))
        elif self.message.state is MessageState.INTERRUPTED:
            lines.append(plain(self.message.error or "interrupted", "$warning"))
        elif self.pending:
            lines.append(plain("running…", "italic $secondary"))
        elif result is not None:
            text = result.content.rstrip("\n") or "(empty result)"
            shown = text.splitlines() or [""]
            if not self.expanded and len(shown) > FOLDED_LINES:
                more = len(shown) - FOLDED_LINES
                shown = [*shown[:FOLDED_LINES], f"… {more} more lines (click to open)"]
            lines.append(plain("\n".join(shown), "$error" if error else "$text-muted"))
        self.set_class(error, "-error")
        self.set_class(self.needs_you, "-needs-you")
        self.update(Content("\n").join(lines))
