"""The chat pane: the focused session's transcript, replies streamed as Markdown.

Only the newest page of messages is mounted; older pages are added when the user scrolls
to the top, so a 5,000-message session opens as fast as a short one. A streaming reply
appends through Textual's MarkdownStream, which batches fragments instead of re-parsing
the whole reply per token.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message as TextualMessage
from textual.widgets import Markdown, Static
from textual.widgets._markdown import MarkdownStream

from chatplex.core.models import Message, MessageState, Role, Session
from chatplex.tui.errors import guarded
from chatplex.tui.safe import plain, visible

PAGE = 16  # messages mounted at first and per scroll-up page: a screenful or two (B6)


class UserMessage(Static):
    def __init__(self, message: Message) -> None:
        super().__init__(plain(message.content), classes="message user")
        self.message = message
        self.border_title = "You"


class ReplyMessage(Vertical):
    """An assistant reply: Markdown body plus a state line for streaming/failed/interrupted."""

    def __init__(self, message: Message, model: str, retry_key: str = "ctrl+r") -> None:
        super().__init__(classes="message reply")
        self.message = message
        self.retry_key = retry_key
        self.border_title = Content(visible(model))
        self._text: list[str] = [message.content]
        self.length = len(message.content)
        self._stream: MarkdownStream | None = None
        self._stream_lock = asyncio.Lock()  # _flush runs in this widget's task, finish in the app's
        self._pending: list[str] = []
        self.started_at: float | None = None  # time.monotonic() when a worker took it

    def compose(self):
        yield Markdown(visible(self.message.content), classes="body", open_links=False)
        yield Static(self._state_line(), classes="state")

    @property
    def text(self) -> str:
        return "".join(self._text)

    def _state_line(self) -> Content:
        m = self.message
        if m.state is MessageState.STREAMING:
            if self.length:
                return Content("")
            if self.started_at is None:
                return plain("queued — waiting its turn", "$text-muted")
            waited = int(time.monotonic() - self.started_at)
            # a server busy with other requests may take a while to start: show it is alive
            return plain("waiting for the model…" + (f" {waited}s" if waited >= 1 else ""), "$text-muted")
        if m.state is MessageState.ERROR:
            return plain(f"⚠ {m.error or 'failed'} — press {self.retry_key} to retry", "$error")
        if m.state is MessageState.INTERRUPTED:
            why = m.error or "interrupted"
            if why == "cancelled":
                return plain(f"⏹ cancelled — press {self.retry_key} to generate it again", "$warning")
            return plain(f"‖ {why}", "$warning")
        return Content("")

    @property
    def _markdown(self) -> Markdown | None:
        """None until composed (events can arrive between mount() and compose)."""
        found = self.query(Markdown)
        return found.first() if found else None

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

    @guarded
    async def on_unmount(self) -> None:
        """Switching sessions removes this widget mid-stream: end its stream task too
        (it would wait forever otherwise, one leaked task per switch)."""
        if self._stream is not None:
            stream, self._stream = self._stream, None
            with contextlib.suppress(Exception):
                await _stop(stream)

    def tick(self) -> None:
        """Once a second: keep the 'waiting for the model… Ns' count going."""
        if self.message.state is MessageState.STREAMING and not self.length and self.started_at is not None:
            self._show_state()

    async def restart(self) -> None:
        """The reply is being generated (again): start from empty."""
        await self._stop_stream()
        self.started_at = time.monotonic()
        self._text, self.length, self._pending = [], 0, []
        self.message.content = ""
        self.message.state = MessageState.STREAMING
        self.message.error = None
        if self._markdown is not None:
            await self._markdown.update("")
        self._show_state()

    def append(self, text: str, offset: int) -> None:
        """Add a delta; the part before our length is already shown (snapshot overlap)."""
        if offset + len(text) <= self.length:
            return
        if offset < self.length:
            text = text[self.length - offset:]
        was_empty = self.length == 0
        self.length += len(text)
        self._text.append(text)
        if self.message.state is not MessageState.STREAMING or was_empty:
            self.message.state = MessageState.STREAMING
            self._show_state()
        first = not self._pending
        self._pending.append(visible(text))
        if first:
            self.call_later(self._flush)

    @guarded
    async def _flush(self) -> None:
        async with self._stream_lock:
            await self._write_pending()

    async def _write_pending(self) -> None:
        if not self._pending:
            return
        if self._markdown is None:
            self.call_after_refresh(self._flush)
            return
        text, self._pending = "".join(self._pending), []
        if self._stream is None:
            self._stream = Markdown.get_stream(self._markdown)
        await self._stream.write(text)

    async def _stop_stream(self) -> bool:
        """Write what is pending and end the stream; False if the stream lost text."""
        async with self._stream_lock:  # never stop the stream between its creation and first run
            await self._write_pending()
            stream, self._stream = self._stream, None
            return stream is None or await _stop(stream)

    async def finish(self, message: Message) -> None:
        if self._markdown is None:  # not composed yet: compose will show the final text
            self._pending, self.message = [], message
            self._text, self.length = [message.content], len(message.content)
            return
        shown_all = await self._stop_stream()
        self.message = message
        if not shown_all or self.text != message.content:
            self._text, self.length = [message.content], len(message.content)
            await self._markdown.update(visible(message.content))
        self._show_state()


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


class ChatView(VerticalScroll):
    """Shows one session; the app feeds it the coordinator's events for that session."""

    class NeedOlder(TextualMessage):
        """Scrolled to the top and older messages exist."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.session: Session | None = None
        self.replies: dict[int, ReplyMessage] = {}
        self.oldest_id: int | None = None
        self.has_older = False
        self._loading_older = False
        self.retry_key = "ctrl+r"

    @guarded
    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new <= 0 < old and self.has_older and not self._loading_older:
            self.post_message(self.NeedOlder())

    def _widget(self, message: Message) -> Static | ReplyMessage | None:
        if message.role is Role.USER:
            return UserMessage(message)
        if message.role is Role.ASSISTANT:
            widget = ReplyMessage(message, self.session.model if self.session else "", self.retry_key)
            self.replies[message.id] = widget
            return widget
        return None

    async def show(self, session: Session | None, messages: list[Message]) -> None:
        """Replace the transcript (the newest page of `session`)."""
        self.session = session
        self.replies = {}
        await self.remove_children()
        self.oldest_id = messages[0].id if messages else None
        self.has_older = len(messages) >= PAGE
        if session is None:
            await self.mount(Static(Content("No session yet. Press ctrl+n for a new one."), classes="empty"))
            return
        if not messages:
            await self.mount(Static(plain(f"{session.title}\n{session.provider} · {session.model}\n\n"
                                          "Type a message below and press Enter."), classes="empty"))
        widgets = [w for m in messages if (w := self._widget(m)) is not None]
        if widgets:
            await self.mount_all(widgets)
        self.anchor()
        self.scroll_end(animate=False, immediate=True)

    async def prepend(self, messages: list[Message]) -> None:
        """Older messages above the first one shown, keeping the view where it was."""
        if not messages:
            self.has_older = False
            return
        self.oldest_id = messages[0].id
        self.has_older = len(messages) >= PAGE
        widgets = [w for m in messages if (w := self._widget(m)) is not None]
        before = self.virtual_size.height
        first = self.children[0] if self.children else None
        await self.mount_all(widgets, before=first)
        self.refresh(layout=True)
        self.call_after_refresh(self._keep_place, before)

    @guarded
    def _keep_place(self, height_before: float) -> None:
        self.scroll_to(y=self.virtual_size.height - height_before, animate=False)

    async def add(self, message: Message) -> None:
        if message.role is Role.ASSISTANT and message.id in self.replies:
            return
        for empty in self.query(".empty"):
            await empty.remove()
        widget = self._widget(message)
        if widget is not None:
            await self.mount(widget)
            self.anchor()
