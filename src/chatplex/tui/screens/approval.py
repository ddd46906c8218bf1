"""The approval dialog: one tool call that waits, with its whole arguments as pretty, literal
JSON, answered with a key: y once, a always (in this session), n deny (with an optional
reason for the model), Escape later."""

from __future__ import annotations

import json
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, TextArea

from chatplex.core.db.steps import Approval
from chatplex.tui.errors import guarded
from chatplex.tui.safe import plain, visible

Answer = tuple[str, str]  # ("approve" | "always" | "deny", the reason given with a deny)


def pretty(arguments: str) -> str:
    """The arguments as indented JSON, or exactly as the model wrote them if not JSON."""
    try:
        return json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
    except ValueError:
        return arguments


class ApprovalScreen(ModalScreen[Answer | None]):
    DEFAULT_CSS = """
    ApprovalScreen .args { border: round $warning 60%; margin: 1 0 0 0; }
    ApprovalScreen #reason { display: none; }
    ApprovalScreen.-denying #reason { display: block; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "later", "Later"),
        Binding("y", "answer('approve')", "Approve once"),
        Binding("a", "answer('always')", "Always in this session"),
        Binding("n", "deny", "Deny"),
    ]

    def __init__(self, approval: Approval, waiting: int = 1) -> None:
        super().__init__(classes="modal")
        self.approval = approval
        self.waiting = waiting  # how many calls wait in all (this one included)

    def compose(self) -> ComposeResult:
        a = self.approval
        more = f" · {self.waiting - 1} more waiting" if self.waiting > 1 else ""
        with Vertical(classes="dialog wide"):
            yield Label(plain(f"Run {a.call.name}?"), classes="dialog-title")
            yield Static(plain(f"session “{a.session.title}” · job {a.job.id}{more}", "$text-muted"))
            if a.reason:
                yield Static(plain(a.reason, "$warning"))
            # read-only text: literal, keeps the JSON's indentation, scrolls when long; as tall
            # as its lines, at most a third of the screen (the choices stay in sight at 80×24)
            text = visible(pretty(a.call.arguments))
            area = TextArea(text, read_only=True, show_line_numbers=False, id="arguments", classes="args")
            rows = max(self.app.size.height // 3, 3)
            area.styles.height = min(text.count("\n") + 1, rows) + 2  # + the border
            yield area
            yield Input(placeholder="why not? (told to the model; Enter denies)", id="reason")
            with Horizontal(classes="buttons"):
                yield Button("Approve once (y)", variant="success", id="approve")
                yield Button("Always here (a)", id="always")
                yield Button("Deny (n)", variant="error", id="deny")
                yield Button("Later (esc)", id="later")

    @guarded
    def on_mount(self) -> None:
        self.query_one("#later", Button).focus()

    @on(Button.Pressed)
    @guarded
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "deny":
            self.action_deny()
        elif event.button.id == "later":
            self.dismiss(None)
        elif event.button.id in ("approve", "always"):
            self.dismiss((event.button.id, ""))

    @guarded
    def action_answer(self, what: str) -> None:
        if not self.has_class("-denying"):
            self.dismiss((what, ""))

    @guarded
    def action_deny(self) -> None:
        """First n: ask why (optional); Enter in the reason (or n again) denies."""
        if self.has_class("-denying"):
            self.dismiss(("deny", self.query_one("#reason", Input).value))
            return
        self.add_class("-denying")
        self.query_one("#reason", Input).focus()

    @on(Input.Submitted, "#reason")
    @guarded
    def _reason_given(self, event: Input.Submitted) -> None:
        self.dismiss(("deny", event.value))

    @guarded
    def action_later(self) -> None:
        if self.has_class("-denying"):  # back from the reason to the question: the reason goes
            self.remove_class("-denying")
            self.query_one("#reason", Input).value = ""
            self.query_one("#later", Button).focus()
            return
        self.dismiss(None)
