"""From stream events to a reply's parts, and inline `<think>` tags to reasoning events.

The core keeps a reply as an ordered list of parts (reasoning, text, tool calls). Streams
give them in pieces: text and reasoning deltas, a tool call's id and name and then its
arguments in fragments, and on Anthropic's API a thinking block's signature that may arrive
after the next block has begun. `Assembler` puts the pieces back together in the order the
model produced them. Pure logic, no I/O: the same code serves the worker and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chatplex.providers.base import (
    ChatPart,
    ReasoningDelta,
    ReasoningPart,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
)

OPEN, CLOSE = "<think>", "</think>"


class ThinkTags:
    """Split `content` that carries reasoning inline (`<think>…</think>`, as some servers
    leave it) into reasoning and text events. A tag cut across two deltas is held back until
    the next one says what it is; `end()` gives back whatever is still held."""

    __slots__ = ("inside", "_held", "_closed")

    def __init__(self) -> None:
        self.inside = False
        self._held = ""
        self._closed = False  # just after </think>: the newlines models put there are dropped

    def feed(self, text: str) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        text = self._held + text
        self._held = ""
        while text:
            tag = CLOSE if self.inside else OPEN
            at = text.find(tag)
            if at < 0:
                keep = _partial_tag(text, tag)
                text, self._held = text[: len(text) - keep], text[len(text) - keep :]
                self._emit(out, text)
                break
            self._emit(out, text[:at])
            text = text[at + len(tag) :]
            self.inside = not self.inside
            self._closed = not self.inside
        return out

    def end(self) -> list[StreamEvent]:
        held, self._held = self._held, ""
        out: list[StreamEvent] = []
        self._emit(out, held)
        return out

    def _emit(self, out: list[StreamEvent], text: str) -> None:
        if self._closed and not self.inside:
            text = text.lstrip("\n")
            self._closed = not text
        if text:
            out.append(ReasoningDelta(text) if self.inside else TextDelta(text))


def _partial_tag(text: str, tag: str) -> int:
    """How many characters at the end of `text` could be the start of `tag`."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-n:]):
            return n
    return 0


@dataclass(slots=True)
class _Reasoning:
    text: list[str] = field(default_factory=list)
    signature: list[str] = field(default_factory=list)
    redacted: str = ""


@dataclass(slots=True)
class _Call:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class Assembler:
    """Feed it a stream's events; `parts()` is the reply so far, in the model's order.

    Text after text, and reasoning after reasoning (with no block index), continue the same
    part; a change of kind starts a new one. Anthropic's pieces name their block, so a late
    signature finds its thinking block; tool calls are matched by their index."""

    __slots__ = ("_parts", "_blocks", "_calls")

    def __init__(self) -> None:
        self._parts: list[list[str] | _Reasoning | _Call] = []  # a list[str] is a text part
        self._blocks: dict[int, _Reasoning] = {}
        self._calls: dict[int, _Call] = {}

    def feed(self, event: StreamEvent) -> None:
        parts = self._parts
        if type(event) is TextDelta:
            last = parts[-1] if parts else None
            if type(last) is list:
                last.append(event.text)
            else:
                parts.append([event.text])
        elif type(event) is ReasoningDelta:
            self._reasoning(event)
        elif type(event) is ToolCallDelta:
            call = self._calls.get(event.index)
            if call is None:
                call = self._calls[event.index] = _Call()
                parts.append(call)
            if event.id:
                call.id = event.id
            if event.name:
                call.name = event.name
            if event.arguments:
                call.arguments.append(event.arguments)

    def _reasoning(self, event: ReasoningDelta) -> None:
        parts = self._parts
        if event.block is not None:
            part = self._blocks.get(event.block)
            if part is None:
                part = self._blocks[event.block] = _Reasoning()
                parts.append(part)
        else:
            last = parts[-1] if parts else None
            if type(last) is _Reasoning and not last.redacted:
                part = last
            else:
                part = _Reasoning()
                parts.append(part)
        if event.text:
            part.text.append(event.text)
        if event.signature:
            part.signature.append(event.signature)
        if event.redacted:
            part.redacted += event.redacted

    def parts(self) -> list[ChatPart]:
        out: list[ChatPart] = []
        for part in self._parts:
            if type(part) is list:
                text = "".join(part)
                if text and not text.isspace():  # e.g. the newline before a <think>
                    out.append(TextPart(text))
            elif type(part) is _Reasoning:
                text = "".join(part.text)
                if text or part.redacted or part.signature:
                    out.append(ReasoningPart(text, "".join(part.signature), part.redacted))
            elif type(part) is _Call:
                out.append(ToolCallPart(part.id, part.name, "".join(part.arguments)))
        return out

    @property
    def text(self) -> str:
        """The answer's text alone: what search, previews and exports read."""
        return "".join(p.text for p in self.parts() if type(p) is TextPart)
