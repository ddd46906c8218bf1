"""The chat pane: the focused session's transcript, replies streamed as Markdown.

Only the newest page of messages is mounted; older pages are added when the user scrolls
to the top, so a 5,000-message session opens as fast as a short one. A streaming reply
appends through Textual's MarkdownStream, which batches fragments instead of re-parsing
the whole reply per token.

A runaway reply (past LIMIT characters) is shown as plain text instead, and only its end:
Markdown re-parses the last block on every append (a reply with no blank line is one
block), so its cost grows with the reply, and a 5 MB one froze the app for seconds at a time
(B12). The tail window costs the same at any size; the whole text is in the export.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Mapping

from textual import on
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message as TextualMessage
from textual.widget import Widget
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from chatplex.config import Price
from chatplex.core.events import PartDelta
from chatplex.core.models import Message, MessageState, Role, Session, SessionStatus
from chatplex.core.text import duration, time_of
from chatplex.core.usage import reply_line
from chatplex.providers.base import TextPart, ToolCallPart, ToolResultPart
from chatplex.tui import feed
from chatplex.tui.errors import guarded
from chatplex.tui.safe import plain, visible
from chatplex.tui.widgets.parts import ReplyParts, done_text
from chatplex.tui.widgets.tool_step import ToolStep

# above the first message a session's requests send, when older turns were dropped to fit
DROPPED = (
    "⋯ the turns above are no longer sent to the model (dropped to fit its context; "
    "the palette's “Send every turn again” undoes it) ⋯"
)
PAGE = 16  # messages read per page: the first one and each scroll-up's (B6)
FILL = 1.5  # a session opens with the newest messages that fill this many panes (B6, B5)


def rows_of(message: Message, width: int) -> int:
    """About how many rows `message` takes at `width` columns: its lines, wrapped, and a
    box's frame. An estimate, erring low (Markdown adds margins), to mount no more of a
    page than fills the pane when a session opens."""
    width = max(width, 10)
    return 3 + sum(max(1, -(-len(line) // width)) for line in message.content.split("\n"))


def newest_that_fill(messages: list[Message], width: int, rows: int) -> list[Message]:
    """The newest of `messages` whose estimated rows reach `rows` (all of them if fewer)."""
    total = 0
    for i in range(len(messages) - 1, -1, -1):
        total += rows_of(messages[i], width)
        if total >= rows:
            return messages[i:]
    return messages


# Characters of Markdown per reply. Measured (2-core VM, one paragraph of 200-character lines,
# the worst case): a stream append costs ~26 ms of loop time at 32 K characters, ~40 ms at
# 64 K, ~50-70 ms at 128 K; replies with paragraphs cost far less. Past this: plain text.
LIMIT = 50_000
TAIL_CHARS = 8_000  # at most this much of a long reply's end is shown (~5 ms to lay out)…
TAIL_LINES = 200  # …and at most this many lines of it
TAIL_EVERY = 0.2  # seconds between re-renders of a long reply's tail while it streams (5 a second)


# A reply cut by the token limit (OpenAI-style, Anthropic) …
TRUNCATED = ("length", "max_tokens")
# …and a request the model's context cannot hold: llama.cpp "exceeds the available context
# size", OpenAI/vLLM "maximum context length", Anthropic "prompt is too long". Retrying it
# fails the same way, so the reply box says what helps instead.
CONTEXT_FULL = re.compile(r"context (size|length|window)|context_length_exceeded|prompt is too long", re.IGNORECASE)


def _size(text: str) -> int:
    """UTF-8 bytes, without encoding the common ASCII case."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _human(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1_000_000 else f"{size / 1e3:.0f} KB"


def clip(chunks: list[str], length: int, *, head: bool = False) -> tuple[str, str]:
    """The part of a long text that is shown — its end, or its start if `head` — in whole
    lines where it can, and what that part is ("last 43 lines"). Copies only that part."""
    taken, n = [], 0
    for chunk in chunks if head else reversed(chunks):
        need = TAIL_CHARS - n
        piece = chunk if len(chunk) <= need else (chunk[:need] if head else chunk[-need:])
        taken.append(piece)
        n += len(piece)
        if n >= TAIL_CHARS:
            break
    text = "".join(taken if head else reversed(taken))
    lines = text.split("\n")
    cut = len(text) < length
    if len(lines) > TAIL_LINES:
        lines = lines[:TAIL_LINES] if head else lines[-TAIL_LINES:]
    elif cut and len(lines) > 1:  # the line at the cut is partial: leave it out
        lines = lines[:-1] if head else lines[1:]
    shown = "\n".join(lines)
    side = "first" if head else "last"
    if len(lines) > 1 or not cut:
        return shown, f"{side} {len(lines):,} lines"
    # one line longer than the window
    return (shown + "…" if head else "…" + shown), f"{side} {len(shown):,} characters"


def clip_note(what: str, size: int, kind: str, key: str) -> str:
    return f"⋯ showing the {what} of a {_human(size)} {kind} — export it ({key}) to read it all"


class UserMessage(Static):
    def __init__(self, message: Message, export_key: str = "ctrl+s") -> None:
        text = message.content
        if len(text) > LIMIT:  # a huge paste: its start, like a long reply's end
            shown, what = clip([text], len(text), head=True)
            note = clip_note(what, _size(text), "message", export_key)
            content = Content.assemble(plain(shown), "\n", plain(note, "italic $text-muted"))
        else:
            content = plain(text)
        super().__init__(content, classes="message user")
        self.message = message
        self.border_title = "You"


class ReplyMessage(Vertical):
    """An assistant reply: its parts in order — thinking (ReasoningBlock), the answer as a
    Markdown body (or, past LIMIT characters, a plain-text tail window and a note), tool calls
    (ToolCard) — plus a state line for streaming/failed/interrupted.

    The body shows the reply's last text part (`text`, `length` and the stream are its); the
    other parts are in `parts` (widgets/parts.py). A text part that another part followed is
    frozen into a Markdown of its own when the next text part begins."""

    def __init__(
        self,
        message: Message,
        model: str,
        retry_key: str = "ctrl+r",
        export_key: str = "ctrl+s",
        *,
        provider: str = "",
        new_key: str = "ctrl+n",
        setup_hint: str = "",
    ) -> None:
        super().__init__(classes="message reply")
        self.message = message
        self.retry_key = retry_key
        self.export_key = export_key
        self.provider = provider  # the config table a "raise max_tokens" hint names
        self.new_key = new_key
        self.setup_hint = setup_hint  # what to do when the built-in default server is not there
        self.border_title = Content(visible(model))
        self.parts = ReplyParts()
        self._set_text(self.parts.lay_out(message, LIMIT, self._clipped))
        self._stream: MarkdownStream | None = None
        self._stream_lock = asyncio.Lock()  # _flush runs in this widget's task, finish in the app's
        self._pending: list[str] = []
        self._tail_due = False  # a tail re-render is scheduled
        # The Markdown body got its text. Not at compose: mounting a page of replies (a switch
        # of session) would parse them all before the app reads its next key (B5).
        self._rendered = False
        self.long = self.length > LIMIT  # shown as a plain-text tail (decided again on restart)
        self.started_at: float | None = None  # time.monotonic() when a worker took it

    def _set_text(self, text: str) -> None:
        self._text: list[str] = [text]
        self._joined = 0  # leading entries of _text that are already joined blocks
        self.length = len(text)
        self.utf8_size = _size(text)

    def compose(self):
        self.parts.expanded = shown = bool(getattr(self.app, "show_reasoning", False))
        for block in self.parts.blocks():
            block.expanded = shown
        before, after = self.parts.ordered()
        yield from before
        if self.long:
            yield from self._tail_widgets()
        else:  # its text is parsed after the first frame (see _write_pending)
            yield Markdown("", classes="body", open_links=False)
        yield from after
        yield Static(self._state_line(), classes="state")

    def _clipped(self, text: str) -> tuple[str, str]:
        """What an earlier text part past LIMIT shows of itself, and the note saying so."""
        shown, what = clip([text], len(text))
        return shown, clip_note(what, _size(text), "part of the reply", self.export_key)

    def _tail_widgets(self) -> list[Widget]:
        """The note goes below the tail: the chat pane follows the end, where the user looks."""
        body, note = self._tail_content()
        return [Static(body, classes="body tail", markup=False), Static(note, classes="tail-note", markup=False)]

    def _tail_content(self) -> tuple[Content, Content]:
        shown, note = self.tail()
        return (
            Content.assemble(("⋯ earlier text not shown\n", "$text-muted"), plain(shown)),
            plain(note, "italic $text-muted"),
        )

    @property
    def text(self) -> str:
        """The reply's whole text (its content): the earlier text parts and the body's."""
        body = self.body_text
        return "".join(self.parts.earlier) + body if self.parts.earlier else body

    @property
    def body_text(self) -> str:
        return "".join(self._text)

    @property
    def has_reasoning(self) -> bool:
        return bool(self.parts.blocks())

    def show_reasoning(self, shown: bool | None = None) -> None:
        """Open (True) or fold (False) every thought of this reply; None: the opposite of
        now (open them all if any is folded)."""
        blocks = self.parts.blocks()
        if shown is None:
            shown = not all(b.expanded for b in blocks)
        for block in blocks:
            block.set_expanded(shown)

    def tail(self) -> tuple[str, str]:
        """What a long reply shows: the end of its text, and the note saying so."""
        shown, what = clip(self._text, self.length)
        return shown, clip_note(what, self.utf8_size, "reply", self.export_key)

    def _state_line(self) -> Content:
        m = self.message
        if m.state is MessageState.STREAMING:
            if self.length or self.parts.widgets:  # the thinking says it is alive
                return Content("")
            if self.started_at is None:
                return plain("queued — waiting its turn", "$text-muted")
            waited = time.monotonic() - self.started_at
            # a server busy with other requests may take a while to start: show it is alive
            return plain("waiting for the model…" + (f" {duration(waited)}" if waited >= 1 else ""), "$text-muted")
        if m.state is MessageState.ERROR:
            error = m.error or "failed"
            if CONTEXT_FULL.search(error):  # the error in red, what to do in plain words
                return Content.assemble(
                    plain(f"⚠ {error}", "$error"),
                    "\n",
                    plain(
                        f"The conversation no longer fits in the model's context, so retrying fails the same "
                        f"way. What helps: a new session ({self.new_key}), a shorter message, or a model or "
                        "server with a bigger context."
                    ),
                )
            if self.setup_hint and "cannot connect to" in error:
                return Content.assemble(
                    plain(f"⚠ {error}", "$error"),
                    "\n\n",
                    plain(f"{self.setup_hint}\n\nThen press {self.retry_key} to retry."),
                )
            return plain(f"⚠ {error} — press {self.retry_key} to retry", "$error")
        if m.state is MessageState.INTERRUPTED:
            why = m.error or "interrupted"
            if why == "cancelled":
                return plain(f"⏹ cancelled — press {self.retry_key} to generate it again", "$warning")
            return plain(f"‖ {why}", "$warning")
        # a reply that ended well may still say something of itself: a tool server that did
        # not start (its tools were not offered; the line says why, with its stderr's tail)
        notice = plain(f"⚠ {m.error}", "$warning") if m.error else Content("")
        if m.finish_reason in TRUNCATED:
            where = f" in [providers.{self.provider}] of config.toml" if self.provider else ""
            cut = plain(
                f"✂ cut at the token limit (finish: {m.finish_reason}) — raise max_tokens{where} "
                f"for longer replies; {self.retry_key} generates it again",
                "$warning",
            )
            return Content.assemble(notice, "\n", cut) if m.error else cut
        return notice

    @property
    def _body(self) -> Widget | None:
        """The Markdown or the tail; None until composed (events can arrive between mount()
        and compose)."""
        found = self.query(".body")
        return found.first() if found else None

    @property
    def _markdown(self) -> Markdown | None:
        body = self._body
        return body if isinstance(body, Markdown) else None

    def _show_state(self) -> None:
        states = self.query(".state")
        if not states:
            return  # on_mount shows it
        line = self._state_line()
        state = states.first(Static)
        state.update(line)
        state.display = bool(line.plain)
        self.set_class(self.message.state is MessageState.ERROR, "-error")
        self.set_class(self.message.state is MessageState.STREAMING, "-streaming")

    @guarded
    def on_mount(self) -> None:
        self._show_state()
        if not self.long and self.length:
            self.call_after_refresh(self._flush)

    @guarded
    async def on_unmount(self) -> None:
        """Switching sessions removes this widget mid-stream: end its stream task too
        (it would wait forever otherwise, one leaked task per switch)."""
        if self._stream is not None:
            stream, self._stream = self._stream, None
            with contextlib.suppress(Exception):
                await _stop(stream)

    def tick(self) -> None:
        """Once a second: keep the 'waiting for the model… Ns' and 'thinking Ns' counts going."""
        if self.message.state is MessageState.STREAMING and not self.length and self.started_at is not None:
            self._show_state()
        if (block := self.parts.thinking) is not None:
            if self.started_at is not None and self.started_at < block.started and block.tokens is None:
                block.started = self.started_at  # loaded half-way: it has thought since the run began
            block.tick()

    async def restart(self, kept: str = "") -> None:
        """The reply is being generated (again): from empty, or from `kept`, the partial
        text a continuing run goes on from."""
        await self._stop_stream()
        self.started_at = time.monotonic()
        self._pending = []
        self.message.content = kept
        self.message.state = MessageState.STREAMING
        self.message.error = None
        async with self._stream_lock:
            if not kept:  # from the start: every part goes (kept: the parts stay, the text goes on)
                await self._drop_parts()
            kept = kept[self.parts.base :]
            self._set_text(kept)
            long = len(kept) > LIMIT
            was_long = self.long
            await self._become(long=long)
            if self._markdown is not None:
                self._rendered = True
                await self._markdown.update(visible(kept))
            elif long and was_long:  # the tail window stays: show the kept text's end
                await self._show_tail()
        self._show_state()

    async def _drop_parts(self) -> None:
        widgets = [w for w in self.parts.widgets.values() if w.parent is self]
        self.parts.reset()
        if widgets:
            await self.remove_children(widgets)

    def append_part(self, event: PartDelta) -> None:
        """A piece of thinking or of a tool call, shown at the next refresh (as text is)."""
        if self.parts.piece(event):  # a new part: mounted at the next flush, in its place
            if len(self.parts.unplaced) == 1:
                self.call_after_refresh(self._flush)
            if self.message.state is not MessageState.STREAMING or len(self.parts.widgets) == 1:
                self.message.state = MessageState.STREAMING
                self._show_state()

    def append(
        self, text: str, offset: int, seq: int | None = None, source: Callable[[int], str | None] | None = None
    ) -> None:
        """Add a delta at `offset` of the reply's text, to its text part `seq`; the part
        before our length is already shown (snapshot overlap). A delta beyond our length
        (the ones between took place before this box was shown, or before a restart) is
        preceded by the missing text, taken from `source` (the whole text so far of a reply, by id). Cheap per
        call whatever the reply's size: rendering happens later, batched."""
        parts = self.parts
        if seq is not None and seq != parts.text_seq and parts.text_part(seq, self.body_text):
            self._set_text("")  # the body's part ended: frozen at the next flush, the body starts again
            self._pending, self._rendered = [], False
            self.call_after_refresh(self._flush)
        offset -= parts.base
        if offset > self.length and source is not None:
            whole = source(self.message.id) or ""
            start = parts.base + self.length
            if len(whole) >= parts.base + offset:
                text, offset = whole[start : parts.base + offset] + text, self.length
        if offset + len(text) <= self.length:
            return
        if offset < self.length:
            text = text[self.length - offset :]
        was_empty = self.length == 0
        self.length += len(text)
        self.utf8_size += _size(text)
        chunks = self._text
        chunks.append(text)
        if len(chunks) - self._joined >= 1024:  # 400,000 tokens would be 400,000 small strings
            chunks[self._joined :] = ["".join(chunks[self._joined :])]
            self._joined += 1
        if self.message.state is not MessageState.STREAMING or was_empty:
            self.message.state = MessageState.STREAMING
            self._show_state()
        if self.long or self.length > LIMIT:
            self._pending = []
            if not self._tail_due:
                self._tail_due = True
                if self.long:
                    self.set_timer(TAIL_EVERY, self._flush)
                else:  # crossing LIMIT: swap the body at once
                    self.call_later(self._flush)
            return
        first = not self._pending
        self._pending.append(visible(text))
        if first:  # once per frame: the deltas until the screen is painted go in together
            self.call_after_refresh(self._flush)

    @guarded
    async def _flush(self) -> None:
        async with self._stream_lock:
            self._tail_due = False
            if self._body is None:  # not composed yet
                self.call_after_refresh(self._flush)
                return
            await self._catch_up()
            if self.long or self.length > LIMIT:
                await self._show_tail()
            else:
                await self._write_pending()

    async def _catch_up(self) -> None:
        """Show the parts streamed since the last flush (with the stream lock held)."""
        # placing awaits: a text part may end meanwhile, and its freeze must come before the write
        while self._body is not None and (self.parts.freezes or self.parts.unplaced):
            if self.parts.freezes:
                await self._freeze()
            if self.parts.unplaced:
                await self._place()

    async def _place(self) -> None:
        """Mount the parts streamed since the last flush, each in its place."""
        parts = self.parts
        unplaced, parts.unplaced = parts.unplaced, []
        for seq in sorted(unplaced):
            widget = parts.widgets.get(seq)
            if widget is not None and widget.parent is None:
                await self.mount(widget, before=parts.anchor(self.children, seq, self.query_one(".state")))

    async def _freeze(self) -> None:
        """Text parts another part followed: each becomes a Markdown of its own in its place,
        and the body starts again for the text going on (with the stream lock held)."""
        parts = self.parts
        freezes, parts.freezes = parts.freezes, []
        old = list(self.query(".body, .tail-note"))
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await _stop(stream)
        state = self.query_one(".state")
        for seq, text in freezes:
            widget = done_text(text, LIMIT, self._clipped)
            parts.widgets[seq] = widget
            await self.mount(widget, before=parts.anchor(self.children, seq, state))
        await self.remove_children(old)
        self.long = False
        body = Markdown("", classes="body", open_links=False)
        await self.mount(body, before=parts.anchor(self.children, parts.text_seq or 0, state))
        # the new body is empty: its next write is the live part's whole text, whatever the old
        # body was given after the part ended (a write while a part was being placed)
        self._pending, self._rendered = [], False

    async def _write_pending(self) -> None:
        if self.long or (self._rendered and not self._pending):
            return
        if self._markdown is None:
            self.call_after_refresh(self._flush)
            return
        if not self._rendered:  # the body's first text: all of its part so far, pending deltas included
            self._rendered, self._pending = True, []
            await self._markdown.update(visible(self.body_text))
            return
        text, self._pending = "".join(self._pending), []
        if self._stream is None:
            self._stream = Markdown.get_stream(self._markdown)
        await self._stream.write(text)

    async def _become(self, *, long: bool) -> None:
        """Swap the body between Markdown and the tail window (with the stream lock held)."""
        if long == self.long or self._body is None:
            self.long = long
            return
        self.long = long
        old = list(self.query(".body, .tail-note"))  # the new body goes in their place
        if long:
            self._pending = []
            if self._stream is not None:
                stream, self._stream = self._stream, None
                await _stop(stream)
            await self.mount_all(self._tail_widgets(), before=old[0])
        else:
            await self.mount(Markdown("", classes="body", open_links=False), before=old[0])
        await self.remove_children(old)

    async def _show_tail(self) -> None:
        if not self.long:
            await self._become(long=True)  # shows the tail as it is now
            return
        body, note = self._tail_content()
        self.query_one(".body", Static).update(body)
        self.query_one(".tail-note", Static).update(note)

    async def _stop_stream(self) -> bool:
        """Write what is pending and end the stream; False if the stream lost text."""
        async with self._stream_lock:  # never stop the stream between its creation and first run
            await self._catch_up()
            await self._write_pending()
            stream, self._stream = self._stream, None
            return stream is None or await _stop(stream)

    async def finish(self, message: Message) -> None:
        if self._body is None:  # not composed yet: compose will show the final message
            self._pending, self.message = [], message
            self._set_text(self.parts.lay_out(message, LIMIT, self._clipped))
            self.long = self.length > LIMIT
            return
        async with self._stream_lock:
            await self._catch_up()
            text = await self._settle_parts(message)  # the body's part as it ended
        if self.long or len(text) > LIMIT:
            async with self._stream_lock:
                self.message = message
                if self.length != len(text) or self.body_text != text:
                    self._set_text(text)
                if self.length > LIMIT:
                    await self._show_tail()
                else:  # regenerated shorter than it was: Markdown again
                    await self._become(long=False)
                    self._rendered = True
                    await self._markdown.update(visible(text))  # type: ignore[union-attr]
            self._show_state()
            return
        shown_all = await self._stop_stream()
        self.message = message
        if not shown_all or self.body_text != text:
            self._set_text(text)
            self._rendered = True
            await self._markdown.update(visible(text))  # type: ignore[union-attr]
        self._show_state()

    async def _settle_parts(self, message: Message) -> str:
        """Every part but the body as the reply ended (with the stream lock held); returns
        the text of the body's part. Shown parts that differ from the stored ones (pieces
        this view missed) are laid out again; the body keeps its place and is updated after."""
        parts = self.parts
        if parts.matches(message):
            parts.settle(message)
            final = message.all_parts()
            last = final[parts.text_seq] if parts.text_seq is not None else None
            return last.text if type(last) is TextPart else ""
        old = [w for w in parts.widgets.values() if w.parent is self]
        text = parts.lay_out(message, LIMIT, self._clipped)
        if old:
            await self.remove_children(old)
        state = self.query_one(".state")
        for seq in sorted(parts.widgets):
            await self.mount(parts.widgets[seq], before=parts.anchor(self.children, seq, state))
        return text


async def _stop(stream: MarkdownStream) -> bool:
    """`MarkdownStream.stop()`, except that a stream task cancelled before it first ran
    re-raises its CancelledError into the caller — which would end the app's message loop
    if the caller is a handler. Returns False in that case (its pending text was not shown)."""
    try:
        await stream.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():  # we are the one being cancelled
            raise
        return False
    return True


class SystemPrompt(Static):
    """The session's system prompt above its messages: what the model is told first, shown
    literally and dim, and folded past FOLD_LINES lines (the prompt editor shows it all)."""

    FOLD_LINES = 3
    FOLD_CHARS = 400

    def __init__(self) -> None:
        super().__init__("", classes="system-prompt", markup=False)
        self.border_title = "System prompt"
        self.prompt = ""

    def set_prompt(self, text: str, edit_key: str) -> None:
        self.prompt = text
        lines = text.strip("\n").split("\n")
        shown = "\n".join(lines[: self.FOLD_LINES])
        if len(shown) > self.FOLD_CHARS:
            shown = shown[: self.FOLD_CHARS] + "…"
        content = plain(shown)
        if shown != text.strip("\n"):
            more = len(lines) - self.FOLD_LINES
            what = f"{more:,} more line{'s' * (more != 1)}" if more > 0 else "the rest"
            content = Content.assemble(content, "\n", plain(f"⋯ {what} — {edit_key} shows it all", "italic"))
        self.update(content)


class ChatView(VerticalScroll):
    """Shows one session, from the core events the app's feed posts here (KINDS).

    Every core event the main screen shows comes here first and goes on to the app (the
    sidebar, the status line) once shown here: a reply is on screen before the sidebar says
    it ended. Handed straight to the app, not bubbled through the three containers between
    (a hop per container: the sidebar would lag behind the database by as many turns of the
    loop)."""

    KINDS = (
        feed.SessionChanged,
        feed.SessionDeleted,
        feed.MessageAdded,
        feed.ReplyStarted,
        feed.ReplyDeltas,
        feed.PartDeltas,
        feed.ReplyFinished,
        feed.Notification,
        feed.ExternalChange,
    )

    class NeedOlder(TextualMessage):
        """Scrolled to the top and older messages exist."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.session: Session | None = None
        self.replies: dict[int, ReplyMessage] = {}
        self.tool_steps: dict[int, ToolStep] = {}  # an agent turn's tool calls, by their message
        self.approve_key = "f6"
        self.oldest_id: int | None = None
        self.has_older = False
        self._loading_older = False
        self.times = False  # each message's time on its box (show_times)
        self.prices: Mapping[str, Price] = {}  # config's [prices]: a reply's cost on its box
        self.retry_key = "ctrl+r"
        self.export_key = "ctrl+s"
        self.new_key = "ctrl+n"
        self.prompt_key = "f4"  # edits the system prompt
        self.setup_hint = ""  # set by the app when it runs on the built-in default provider
        # the text so far of a reply being generated here (the coordinator's live_text)
        self.live_text: Callable[[int], str | None] = lambda message_id: None
        # show/prepend run in the app's task, the event handlers in this widget's: one at a
        # time, so an event is applied to the transcript it belongs to, after it is loaded
        self._busy = asyncio.Lock()

    def _shown(self, session_id: int) -> bool:
        return self.session is not None and self.session.id == session_id

    @on(feed.CoreMessage)
    @guarded
    def _hand_on(self, message: feed.CoreMessage) -> None:
        """After this widget's own handler of the message (Textual calls a handler of the
        message's base class after that of the class itself)."""
        self.app.post_message(message)

    @on(feed.SessionChanged)
    @guarded
    def _session_changed(self, message: feed.SessionChanged) -> None:
        session = message.event.session
        if self._shown(session.id):
            self.session = session
            self.show_system_prompt(session.system_prompt)
            for step in self.tool_steps.values():
                step.set_needs_you(self._needs_you(session))

    @on(feed.MessageAdded)
    @guarded
    async def _message_added(self, message: feed.MessageAdded) -> None:
        async with self._busy:
            if self._shown(message.event.message.session_id):
                await self._add(message.event.message)

    @on(feed.ReplyStarted)
    @guarded
    async def _reply_started(self, message: feed.ReplyStarted) -> None:
        event = message.event
        async with self._busy:
            if self._shown(event.session_id) and (reply := self.replies.get(event.message_id)):
                kept = (self.live_text(event.message_id) or "")[: event.kept] if event.kept else ""
                await reply.restart(kept)
                self.label(reply)  # its old counts went with its old text

    @on(feed.ReplyDeltas)
    @guarded
    async def _reply_deltas(self, message: feed.ReplyDeltas) -> None:
        async with self._busy:
            replies = self.replies
            for event in message.take():
                if self._shown(event.session_id) and (reply := replies.get(event.message_id)):
                    reply.append(event.text, event.offset, event.seq, self.live_text)

    @on(feed.PartDeltas)
    @guarded
    async def _part_deltas(self, message: feed.PartDeltas) -> None:
        async with self._busy:
            replies = self.replies
            for event in message.take():
                if self._shown(event.session_id) and (reply := replies.get(event.message_id)):
                    reply.append_part(event)

    @on(feed.ReplyFinished)
    @guarded
    async def _reply_finished(self, message: feed.ReplyFinished) -> None:
        done = message.event.message
        async with self._busy:
            if self._shown(done.session_id) and (reply := self.replies.get(done.id)):
                await reply.finish(done)  # a refused first contact: the box says what to do
                self.label(reply)
            elif self._shown(done.session_id) and (step := self.tool_steps.get(done.id)):
                step.finish(done)

    @guarded
    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new <= 0 < old and self.has_older and not self._loading_older:
            self.post_message(self.NeedOlder())

    def show_system_prompt(self, text: str) -> None:
        """Show `text` as the system prompt above the messages (none: no header)."""
        found = self.query(SystemPrompt)
        header = found.first() if found else None
        if not text.strip():
            if header is not None:
                header.remove()
            return
        if header is None:
            header = SystemPrompt()
            header.set_prompt(text, self.prompt_key)
            self.mount(header, before=self.children[0] if self.children else None)
        elif header.prompt != text:
            header.set_prompt(text, self.prompt_key)

    def scroll_to_message(self, message_id: int) -> bool:
        """Bring a mounted message to the top of the pane, marked as found (search)."""
        widget = next(
            (w for w in self.children if isinstance(w, (UserMessage, ReplyMessage)) and w.message.id == message_id),
            None,
        )
        if widget is None:
            return False
        self.query(".-found").remove_class("-found")
        widget.add_class("-found")
        self.call_after_refresh(self._scroll_to_found, widget)  # after prepend's _keep_place
        return True

    @guarded
    def _scroll_to_found(self, widget: Widget) -> None:
        self.scroll_to_widget(widget, animate=False, top=True)

    def show_times(self, shown: bool) -> None:
        """Each message's time on its box's bottom edge, or not."""
        self.times = shown
        for child in self.children:
            if isinstance(child, UserMessage | ReplyMessage):
                self.label(child)

    def label(self, widget: UserMessage | ReplyMessage) -> None:
        """The box's bottom edge: a finished reply's tokens, speed and cost (dim), and the
        message's time when times are shown."""
        said = []
        if isinstance(widget, ReplyMessage) and widget.message.state is not MessageState.STREAMING:
            said.append(reply_line(widget.message, self.prices, self.session.model if self.session else ""))
        if self.times:
            said.append(time_of(widget.message.created_at))
        widget.border_subtitle = " · ".join(s for s in said if s)

    def _widgets(self, messages: list[Message], session: Session | None) -> list[Widget]:
        """The messages' widgets, and the line above the first one the session's requests
        send when older turns were dropped to fit the model's context."""
        first = session.context_from if session is not None else None
        widgets: list[Widget] = []
        for m in messages:
            if m.id == first:
                widgets.append(Static(plain(DROPPED, "$text-muted"), classes="dropped"))
            if (widget := self._widget(m, session)) is not None:
                widgets.append(widget)
        return widgets

    def _widget(self, message: Message, session: Session | None = None) -> Static | ReplyMessage | None:
        widget = self._make(message, session)
        if isinstance(widget, UserMessage | ReplyMessage):
            self.label(widget)
        return widget

    def _make(self, message: Message, session: Session | None = None) -> Static | ReplyMessage | None:
        session = session or self.session
        if message.role is Role.USER:
            return UserMessage(message, self.export_key)
        if message.role is Role.ASSISTANT:
            model = message.model or (session.model if session else "")  # who wrote it
            widget = ReplyMessage(
                message,
                model,
                self.retry_key,
                self.export_key,
                provider=session.provider if session else "",
                new_key=self.new_key,
                setup_hint=self.setup_hint,
            )
            self.replies[message.id] = widget
            return widget
        if message.role is Role.TOOL:
            step = ToolStep(message, self._call_for(message), self.approve_key)
            step.needs_you = self._needs_you(session)
            self.tool_steps[message.id] = step
            return step
        return None

    def _call_for(self, message: Message) -> ToolCallPart | None:
        """The call a tool step answers, from the replies on screen (newest first)."""
        call_id = next((p.call_id for p in message.parts if type(p) is ToolResultPart), None)
        for reply in reversed(self.replies.values()):
            for part in reply.message.parts:
                if type(part) is ToolCallPart and part.id == call_id:
                    return part
        return None

    def update_tool_steps(self, messages: list[Message]) -> None:
        """Tool steps as `messages` (read again) say they are now: another process stored a
        call's result, or its denial."""
        for message in messages:
            step = self.tool_steps.get(message.id)
            if step is not None and (step.message.state, step.message.content) != (message.state, message.content):
                step.finish(message)

    @staticmethod
    def _needs_you(session: Session | None) -> bool:
        return session is not None and session.status is SessionStatus.NEEDS_APPROVAL

    async def show(self, session: Session | None, messages: list[Message]) -> None:
        """Replace the transcript (the newest page of `session`)."""
        async with self._busy:
            await self._show(session, messages)

    async def _show(self, session: Session | None, messages: list[Message]) -> None:
        """`session` becomes ours once it is on screen (mounted), not before."""
        self.replies = {}
        self.tool_steps = {}
        try:
            await self._mount_page(session, messages)
        finally:
            self.session = session

    async def _mount_page(self, session: Session | None, messages: list[Message]) -> None:
        await self.remove_children()
        # what fills the pane, not the whole page: each reply's Markdown costs ~25 ms to lay
        # out, and the rest of the page is mounted when the user scrolls up (or below, when
        # it did not fill the pane)
        width, height = self.size if self.size.height else self.app.size
        shown = newest_that_fill(messages, width - 6, int(height * FILL))
        self.oldest_id = shown[0].id if shown else None
        self.has_older = len(shown) < len(messages) or len(messages) >= PAGE
        messages = shown
        hint = f"\n\n{self.setup_hint}" if self.setup_hint else ""
        if session is None:
            await self.mount(
                Static(
                    plain(f"No session yet. Type a message below to start one (or press {self.new_key}).{hint}"),
                    classes="empty",
                )
            )
            return
        self.show_system_prompt(session.system_prompt)
        if not messages:
            await self.mount(
                Static(
                    plain(
                        f"{session.title}\n{session.provider} · {session.model}\n\n"
                        f"Type a message below and press Enter.{hint}"
                    ),
                    classes="empty",
                )
            )
        widgets = self._widgets(messages, session)
        if widgets:
            await self.mount_all(widgets)
        self.anchor()
        self.scroll_end(animate=False, immediate=True)
        self.call_after_refresh(self._fill)

    @guarded
    def _fill(self) -> None:
        """Older messages exist but the pane is not full, so no scroll-up can ask for them:
        ask now (again after each page, until the pane scrolls or nothing older is left)."""
        laid_out = self.size.height > 0 and self.virtual_size.height > 0  # a hidden pane asks for nothing
        if self.has_older and laid_out and self.max_scroll_y == 0 and self.session is not None:
            self.post_message(self.NeedOlder())

    async def prepend(self, messages: list[Message], session_id: int, before_id: int | None) -> bool:
        """Older messages above the first one shown, keeping the view where it was.
        `messages` were read for `session_id` before `before_id`: if the pane has moved on
        since (another session, or that page already added), they are dropped (False)."""
        async with self._busy:
            if not self._shown(session_id) or self.oldest_id != before_id:
                return False
            await self._prepend(messages)
            return True

    async def _prepend(self, messages: list[Message]) -> None:
        if not messages:
            self.has_older = False
            return
        self.oldest_id = messages[0].id
        self.has_older = len(messages) >= PAGE
        widgets = self._widgets(messages, self.session)
        before = self.virtual_size.height
        first = next((c for c in self.children if not isinstance(c, SystemPrompt)), None)
        await self.mount_all(widgets, before=first)
        self.refresh(layout=True)
        self.call_after_refresh(self._keep_place, before)
        self.call_after_refresh(self._fill)

    @guarded
    def _keep_place(self, height_before: float) -> None:
        self.scroll_to(y=self.virtual_size.height - height_before, animate=False)

    async def add(self, message: Message) -> None:
        async with self._busy:
            await self._add(message)

    async def _add(self, message: Message) -> None:
        if (
            message.id in self.replies
            or message.id in self.tool_steps
            or any(isinstance(w, UserMessage) and w.message.id == message.id for w in self.children)
        ):
            return  # in the page loaded already
        for empty in self.query(".empty"):
            await empty.remove()
        widgets = self._widgets([message], self.session)
        if widgets:
            await self.mount_all(widgets)
            self.anchor()
