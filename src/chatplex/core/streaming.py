"""A reply's parts as they stream: what has arrived, what is stored, what is published.

The provider's events are put back in the model's order as `providers.parts.Assembler`
does (a late Anthropic signature finds its thinking block; tool calls are matched by
index), but each part here also remembers how much of it a periodic write has stored and
how much went out as events, so both only ever send what is new.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from chatplex.providers.base import (
    ChatPart,
    ReasoningDelta,
    ReasoningPart,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
)

TEXT, REASONING, TOOL_CALL = "text", "reasoning", "tool_call"


@dataclass(slots=True, eq=False)
class Piece:
    """One part of a streaming reply. `chunks` hold its growing text: the answer's words,
    the thinking, or a tool call's arguments as streamed."""

    kind: str
    seq: int
    chunks: list[str] = field(default_factory=list)
    signature: list[str] = field(default_factory=list)
    redacted: str = ""
    call_id: str = ""
    name: str = ""
    result: ToolResultPart | None = None  # a stored tool result (kept as it was)
    flushed: int = 0  # chunks a periodic write has stored
    stored_data: str | None = None  # the data JSON as stored (None: never written)
    published: int = 0  # chunks published as events
    published_length: int = 0  # their characters
    began: float | None = None  # a thought's first and latest deltas (monotonic): how long it took
    ended: float | None = None

    def data(self) -> str:
        if self.kind == REASONING:
            d: dict[str, str] = {}
            if self.signature:
                d["signature"] = "".join(self.signature)
            if self.redacted:
                d["redacted"] = self.redacted
            return json.dumps(d) if d else "{}"
        if self.kind == TOOL_CALL:
            return json.dumps({"id": self.call_id, "name": self.name})
        return "{}"

    def part(self) -> ChatPart | None:
        """The part as it stands (None: nothing in it worth keeping)."""
        text = "".join(self.chunks)
        if self.kind == TEXT:
            return TextPart(text) if text else None
        if self.kind == REASONING:
            if text or self.signature or self.redacted:
                took = round(self.ended - self.began, 1) if self.began is not None and self.ended is not None else None
                return ReasoningPart(text, "".join(self.signature), self.redacted, took)
            return None
        if self.kind == TOOL_CALL:
            return ToolCallPart(self.call_id, self.name, text)
        return self.result


Unstored = tuple[Piece, int, str, str | None]  # (piece, chunks up to, new text, new data JSON)


class StreamedParts:
    """The parts of one reply being generated, in the order the model produced them."""

    __slots__ = ("pieces", "_blocks", "_calls")

    def __init__(self, kept: Sequence[ChatPart] = ()) -> None:
        self.pieces: list[Piece] = []
        self._blocks: dict[int, Piece] = {}
        self._calls: dict[int, Piece] = {}
        for part in kept:  # a partial reply being continued: stored and shown already
            piece = self._add(_kind(part))
            if type(part) is TextPart:
                piece.chunks.append(part.text)
            elif type(part) is ReasoningPart:
                piece.chunks.append(part.text)
                if part.signature:
                    piece.signature.append(part.signature)
                piece.redacted = part.redacted
            elif type(part) is ToolCallPart:
                piece.chunks.append(part.arguments)
                piece.call_id, piece.name = part.id, part.name
            else:
                assert type(part) is ToolResultPart
                piece.result = part
            piece.flushed = piece.published = len(piece.chunks)
            piece.published_length = sum(map(len, piece.chunks))
            piece.stored_data = piece.data()

    def _add(self, kind: str) -> Piece:
        piece = Piece(kind, len(self.pieces))
        self.pieces.append(piece)
        return piece

    @property
    def last_kind(self) -> str | None:
        return self.pieces[-1].kind if self.pieces else None

    def text(self, text: str) -> Piece:
        """An answer delta: once per token, so kept lean."""
        pieces = self.pieces
        piece = pieces[-1] if pieces else None
        if piece is None or piece.kind != TEXT:
            piece = self._add(TEXT)
        piece.chunks.append(text)
        return piece

    def reasoning(self, event: ReasoningDelta) -> Piece:
        if event.block is not None:
            piece = self._blocks.get(event.block)
            if piece is None:
                piece = self._blocks[event.block] = self._add(REASONING)
        else:
            last = self.pieces[-1] if self.pieces else None
            piece = last if last is not None and last.kind == REASONING and not last.redacted else self._add(REASONING)
        if event.text:
            piece.chunks.append(event.text)
            piece.ended = time.monotonic()
            if piece.began is None:
                piece.began = piece.ended
        if event.signature:
            piece.signature.append(event.signature)
        if event.redacted:
            piece.redacted += event.redacted
        return piece

    def tool_call(self, event: ToolCallDelta) -> Piece:
        piece = self._calls.get(event.index)
        if piece is None:
            piece = self._calls[event.index] = self._add(TOOL_CALL)
        if event.id:
            piece.call_id = event.id
        if event.name:
            piece.name = event.name
        if event.arguments:
            piece.chunks.append(event.arguments)
        return piece

    def parts(self) -> list[ChatPart]:
        """The reply's parts so far, for the write that ends its run."""
        return [p for p in (piece.part() for piece in self.pieces) if p is not None]

    def tool_names(self) -> list[str]:
        return [p.name for p in self.pieces if p.kind == TOOL_CALL and p.name]

    def has_reasoning(self) -> bool:
        return any(p.kind == REASONING and (p.chunks or p.redacted) for p in self.pieces)

    def unstored(self) -> list[Unstored]:
        """What no write has stored yet: (piece, chunks up to, new text, data JSON or None
        when unchanged). Nothing is marked stored until `stored` is told the write
        succeeded, so a failed write loses nothing."""
        out = []
        for piece in self.pieces:
            upto = len(piece.chunks)
            data = piece.data()
            if upto > piece.flushed or data != piece.stored_data:
                text = "".join(piece.chunks[piece.flushed : upto])
                out.append((piece, upto, text, None if data == piece.stored_data else data))
        return out

    @staticmethod
    def stored(written: Sequence[Unstored]) -> None:
        for piece, upto, _, data in written:
            piece.flushed = max(piece.flushed, upto)
            if data is not None:
                piece.stored_data = data


def _kind(part: ChatPart) -> str:
    if type(part) is TextPart:
        return TEXT
    if type(part) is ReasoningPart:
        return REASONING
    if type(part) is ToolCallPart:
        return TOOL_CALL
    return "tool_result"
