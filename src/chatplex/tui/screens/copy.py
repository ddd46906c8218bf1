"""Message mode (F5): pick a message in the chat pane behind, by keyboard, and copy it, fork
there or edit it. ↑/↓ move between messages (the highlighted one is outlined and scrolled
into view), c cycles through the code blocks of a reply (the block is outlined; Enter copies
its code, without the fences), Enter copies, f forks the session at the message, e edits
one of your messages into a fork (the original stays as it was), o goes to where this
session was forked from, Escape leaves. What is copied is the message as stored, never as
rendered."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Static
from textual.widgets.markdown import MarkdownFence

from chatplex.core.models import MessageState
from chatplex.tui.clipboard import CodeBlock, code_blocks
from chatplex.tui.errors import guarded
from chatplex.tui.safe import plain
from chatplex.tui.widgets.chat import ChatView, ReplyMessage, UserMessage

# ("copy", what it is — "the reply", "code block 2 (python)" —, its text) · ("fork", message id, "")
# · ("edit", message id, its text) · ("origin", "", "")
Choice = tuple[str, str, str]


def stored_text(widget: Widget) -> str:
    """A message widget's text as stored (a streaming reply: what has arrived so far)."""
    if isinstance(widget, ReplyMessage):
        return widget.text if widget.message.state is MessageState.STREAMING else widget.message.content
    assert isinstance(widget, UserMessage)
    return widget.message.content


class CopyScreen(ModalScreen[Choice | None]):
    DEFAULT_CSS = """
    CopyScreen { background: transparent; align: center bottom; }
    CopyScreen #copy-hint { dock: bottom; height: auto; background: $panel; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Back"),
        Binding("up,k", "move(-1)", "Previous message"),
        Binding("down,j", "move(1)", "Next message"),
        Binding("c", "next_block", "Code block"),
        Binding("enter,y", "copy", "Copy"),
        Binding("f", "fork", "Fork here"),
        Binding("e", "edit", "Edit into a fork"),
        Binding("o", "origin", "Fork's origin"),
    ]

    def __init__(self, chat: ChatView) -> None:
        super().__init__()
        self.chat = chat
        self.items: list[Widget] = [w for w in chat.children if isinstance(w, UserMessage | ReplyMessage)]
        self.index = len(self.items) - 1  # the newest message
        self.block: int | None = None  # a code block of it, or None: the whole message
        self._marked: list[Widget] = []

    def compose(self) -> ComposeResult:
        yield Static(id="copy-hint")

    @guarded
    def on_mount(self) -> None:
        self._show()

    @guarded
    def on_unmount(self) -> None:
        self._unmark()

    def blocks(self) -> list[CodeBlock]:
        item = self.current
        return code_blocks(stored_text(item)) if isinstance(item, ReplyMessage) else []

    @property
    def current(self) -> Widget | None:
        return self.items[self.index] if 0 <= self.index < len(self.items) else None

    def choice(self) -> tuple[str, str] | None:
        """(what is highlighted, its text)."""
        item = self.current
        if item is None:
            return None
        blocks = self.blocks()
        if self.block is not None and self.block >= len(blocks):  # the reply changed meanwhile
            self.block = None
        if self.block is not None:
            block = blocks[self.block]
            language = f" ({block.language})" if block.language else ""
            return f"code block {self.block + 1}{language}", block.code
        what = "the reply" if isinstance(item, ReplyMessage) else "your message"
        return what, stored_text(item)

    @guarded
    def action_move(self, step: int) -> None:
        if self.items:
            self.index = max(0, min(len(self.items) - 1, self.index + step))
            self.block = None
            self._show()

    @guarded
    def action_next_block(self) -> None:
        """The next code block of the highlighted reply; after the last, the whole reply."""
        found = self.blocks()
        if not found:
            self.notify("This message has no code block.", severity="warning", timeout=2, markup=False)
            return
        self.block = 0 if self.block is None else None if self.block + 1 >= len(found) else self.block + 1
        self._show()

    @guarded
    def action_copy(self) -> None:
        choice = self.choice()
        self.dismiss(("copy", *choice) if choice else None)

    @guarded
    def action_fork(self) -> None:
        item = self.current
        if isinstance(item, UserMessage | ReplyMessage):
            self.dismiss(("fork", str(item.message.id), ""))

    @guarded
    def action_edit(self) -> None:
        item = self.current
        if not isinstance(item, UserMessage):
            self.notify("Only your own messages can be edited: ↑ to one.", severity="warning", timeout=3, markup=False)
            return
        self.dismiss(("edit", str(item.message.id), item.message.content))

    @guarded
    def action_origin(self) -> None:
        session = self.chat.session
        if session is None or session.forked_from is None:
            self.notify(
                "This session is not a fork (or its origin was deleted).", severity="warning", timeout=3, markup=False
            )
            return
        self.dismiss(("origin", "", ""))

    def _unmark(self) -> None:
        for widget in self._marked:
            widget.remove_class("-copying")
        self._marked = []

    def _show(self) -> None:
        self._unmark()
        hint = self.query_one("#copy-hint", Static)
        item = self.current
        if item is None:
            hint.update(plain("Nothing to copy in this session yet — Escape goes back"))
            return
        target: Widget = item
        if self.block is not None:  # the rendered fences, in the order of the blocks in the text
            fences = list(item.query(MarkdownFence))
            if self.block < len(fences):
                target = fences[self.block]
        target.add_class("-copying")
        self._marked.append(target)
        self.chat.scroll_to_widget(target, animate=False)
        choice = self.choice()
        assert choice is not None
        blocks = len(self.blocks())
        code = f" · c: code block ({blocks})" if blocks else ""
        mine = " · e: edit into a fork" if isinstance(item, UserMessage) else ""
        session = self.chat.session
        origin = " · o: where this fork began" if session is not None and session.forked_from is not None else ""
        hint.update(
            plain(
                f"{choice[0].capitalize()} ({len(choice[1]):,} characters) — Enter copies · ↑↓ message{code}"
                f" · f: fork here{mine}{origin} · Escape back",
                "bold",
            )
        )
