"""The parts of a reply besides the text its Markdown body streams, for the chat pane's reply.

A reply is its parts in order: thinking, the answer's text, tool calls (DESIGN.md). The reply
widget (chat.ReplyMessage) streams its last text part through one Markdown body, as fast as a
reply with no parts; `ReplyParts` keeps the others — a ReasoningBlock, a ToolCard, or an
earlier text part frozen in its own Markdown — by their place (`seq`) among the parts, makes
them from stored parts or from streamed pieces, and says where each goes among the widgets.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from textual.content import Content
from textual.widget import Widget
from textual.widgets import Markdown, Static

from chatplex.core.events import PartDelta
from chatplex.core.models import Message, MessageState
from chatplex.providers.base import ChatPart, ReasoningPart, TextPart, ToolCallPart
from chatplex.tui.errors import guarded
from chatplex.tui.safe import plain, visible
from chatplex.tui.widgets.reasoning import ReasoningBlock, ToolCard

NOT_ENABLED = "tools are not enabled"  # in the error of a reply that only asked for tools (core.running)


class DoneText(Markdown):
    """A text part that another part followed: its Markdown, parsed after the first frame
    (a page of replies mounts before any of them is parsed, B5). Whitespace alone shows
    nothing."""

    def __init__(self, text: str) -> None:
        super().__init__("", classes="body-done", open_links=False)
        self.part_text = text
        self.display = bool(text.strip())

    @guarded
    def on_mount(self) -> None:
        if self.display:
            self.call_after_refresh(self._parse_part)

    @guarded
    async def _parse_part(self) -> None:
        await self.update(visible(self.part_text))


Tail = Callable[[str], tuple[str, str]]  # a long text -> what of it is shown, and the note saying so


def done_text(text: str, limit: int, tail: Tail) -> Widget:
    """An earlier text part: Markdown, or past `limit` characters its end as plain text."""
    if len(text) <= limit:
        return DoneText(text)
    shown, note = tail(text)
    body = Content.assemble(("⋯ earlier text not shown\n", "$text-muted"), plain(shown), "\n", plain(note, "italic"))
    return Static(body, classes="body-done tail", markup=False)


def kind_of(part: ChatPart) -> str | None:
    """The kind a reply shows a part as (None: not shown in a reply, e.g. a tool result)."""
    if type(part) is TextPart:
        return "text"
    if type(part) is ReasoningPart:
        return "reasoning"
    if type(part) is ToolCallPart:
        return "tool_call"
    return None


def card_status(message: Message, last: bool) -> tuple[str, bool]:
    """What a tool call's card says under it, and whether that is an error."""
    if message.state is MessageState.ERROR and NOT_ENABLED in (message.error or ""):
        return f"not run — {NOT_ENABLED}", True
    if message.state is MessageState.INTERRUPTED and last:
        return "interrupted while the model wrote it", False
    return "", False


class ReplyParts:
    """A reply's parts other than its live text, by seq (see the module's docstring).

    `text_seq` is the seq of the text part the live body shows (None: no text yet, the body
    comes after every part); `earlier` the texts of the text parts before it, frozen."""

    def __init__(self) -> None:
        self.expanded = False  # thinking shown open (the setting, or the key's toggle for all)
        self.reset()

    def reset(self) -> None:
        """No parts (a reply generated again from the start)."""
        self.widgets: dict[int, Widget] = {}
        self.earlier: list[str] = []
        self.base = 0  # characters of the reply's text before the live body's
        self.text_seq: int | None = None
        self.thinking: ReasoningBlock | None = None  # the block streaming now
        self.thinking_seq = -1
        self.unplaced: list[int] = []  # made while streaming, not mounted yet
        self.freezes: list[tuple[int, str]] = []  # text parts that ended, not frozen on screen yet

    # ------------------------------------------------------------ from stored parts
    def lay_out(self, message: Message, limit: int, tail: Tail) -> str:
        """Widgets for `message`'s parts; returns the text of the live body's part."""
        parts = message.all_parts()
        texts = [i for i, p in enumerate(parts) if type(p) is TextPart]
        live = texts[-1] if texts else None
        streaming = message.state is MessageState.STREAMING
        cut = message.state in (MessageState.INTERRUPTED, MessageState.ERROR)
        thoughts = sum(1 for p in parts if type(p) is ReasoningPart)
        self.reset()
        for i, part in enumerate(parts):
            end = i == len(parts) - 1  # the part the reply stopped in
            if i == live:
                continue
            if type(part) is TextPart:
                self.earlier.append(part.text)
                self.widgets[i] = done_text(part.text, limit, tail)
            elif type(part) is ReasoningPart:
                tokens = message.reasoning_tokens if thoughts == 1 else None
                block = ReasoningBlock(
                    part.text,
                    streaming=streaming and end,
                    tokens=tokens,
                    interrupted=cut and end,
                    redacted=bool(part.redacted),
                )
                if not block.streaming:
                    block.elapsed = part.seconds  # as measured while it streamed, if it was
                block.expanded = self.expanded
                if block.streaming:
                    self.thinking, self.thinking_seq = block, i
                self.widgets[i] = block
            elif type(part) is ToolCallPart:
                status, error = card_status(message, end)
                self.widgets[i] = ToolCard(part.name, part.arguments, status=status, error=error)
        self.text_seq = live
        self.base = sum(map(len, self.earlier))
        last = parts[live] if live is not None else None
        return last.text if type(last) is TextPart else ""

    def ordered(self) -> tuple[list[Widget], list[Widget]]:
        """The widgets before the live body and those after it, in order (for compose)."""
        at = self.text_seq if self.text_seq is not None else math.inf
        seqs = sorted(self.widgets)
        return [self.widgets[s] for s in seqs if s < at], [self.widgets[s] for s in seqs if s > at]

    def blocks(self) -> list[ReasoningBlock]:
        return [w for w in self.widgets.values() if isinstance(w, ReasoningBlock)]

    # ------------------------------------------------------------ streamed pieces
    def piece(self, event: PartDelta) -> bool:
        """A piece of thinking or of a tool call; True if it made a widget to mount."""
        widget = self.widgets.get(event.seq)
        made = widget is None
        if widget is None:
            if event.seq == self.text_seq:
                return False  # numbered as our text part: the stored parts differ; finish() mends it
            if event.kind == "reasoning":
                # counted from its first piece on; one loaded half-way only has an estimate
                widget = ReasoningBlock(streaming=True, tokens=0 if event.offset == 0 else None, expanded=self.expanded)
            elif event.kind == "tool_call":
                widget = ToolCard(event.name)
            else:
                return False
            self.began(event.seq)
            self.widgets[event.seq] = widget
            self.unplaced.append(event.seq)
        if isinstance(widget, ReasoningBlock) and event.kind == "reasoning":
            if widget.add(event.text, event.offset) and widget.tokens is not None:
                widget.tokens += event.tokens
            if widget.streaming:
                self.thinking, self.thinking_seq = widget, event.seq
        elif isinstance(widget, ToolCard) and event.kind == "tool_call":
            widget.add(event.text, event.offset, event.name)
        return made

    def began(self, seq: int) -> None:
        """Part `seq` began: the thinking before it is over (the answer, or a call, began)."""
        if self.thinking is not None and seq > self.thinking_seq:
            self.thinking.done()
            self.thinking = None

    def text_part(self, seq: int, body_text: str) -> bool:
        """The answer's text goes on in part `seq`; True if the live body's part ended with
        that (another part came between): it is to be frozen, and the body starts empty."""
        self.began(seq)
        if self.text_seq is None or not body_text:
            self.text_seq = seq
            return False
        if seq < self.text_seq:
            return False  # a piece of an older part (the stored parts differ): finish() mends it
        self.freezes.append((self.text_seq, body_text))
        self.earlier.append(body_text)
        self.base += len(body_text)
        self.text_seq = seq
        return True

    def seq_of(self, child: Widget) -> float | None:
        """Where a child of the reply stands among its parts (None: not a part)."""
        if child.has_class("body") or child.has_class("tail-note"):
            return self.text_seq if self.text_seq is not None else math.inf
        for seq, widget in self.widgets.items():
            if widget is child:
                return seq
        return None

    def anchor(self, children: Iterable[Widget], seq: int, state: Widget) -> Widget:
        """The child a new part `seq` is mounted before: the first part after it, else the
        state line."""
        for child in children:
            if child is state:
                return state
            at = self.seq_of(child)
            if at is not None and at > seq:
                return child
        return state

    # ------------------------------------------------------------ the end
    def matches(self, message: Message) -> bool:
        """Whether what is shown has the final message's parts in the same places (then they
        are brought up to date in place; else laid out again)."""
        shown: dict[int, str] = {s: "text" if w.has_class("body-done") else _kind(w) for s, w in self.widgets.items()}
        shown.update({s: "text" for s, _ in self.freezes})
        if self.text_seq is not None:
            shown[self.text_seq] = "text"
        parts = message.all_parts()
        final = {i: k for i, p in enumerate(parts) if (k := kind_of(p)) is not None}
        texts = [p.text for p in parts if type(p) is TextPart]
        return shown == final and self.earlier == texts[:-1]

    def settle(self, message: Message) -> None:
        """The reply ended as `message` (whose parts match what is shown): every block and
        card says how it ended."""
        parts = message.all_parts()
        cut = message.state in (MessageState.INTERRUPTED, MessageState.ERROR)
        thoughts = [i for i, p in enumerate(parts) if type(p) is ReasoningPart]
        for i, part in enumerate(parts):
            widget = self.widgets.get(i)
            end = i == len(parts) - 1
            if isinstance(widget, ReasoningBlock) and type(part) is ReasoningPart:
                if widget.text != part.text:
                    widget.reset_text(part.text)
                tokens = message.reasoning_tokens if len(thoughts) == 1 and message.reasoning_tokens else None
                widget.done(tokens=tokens, interrupted=cut and end)
            elif isinstance(widget, ToolCard) and type(part) is ToolCallPart:
                status, error = card_status(message, end)
                widget.set_call(part.name, part.arguments)
                widget.set_status(status, error=error)
        self.thinking = None


def _kind(widget: Widget) -> str:
    if isinstance(widget, ReasoningBlock):
        return "reasoning"
    if isinstance(widget, ToolCard):
        return "tool_call"
    return "text"
