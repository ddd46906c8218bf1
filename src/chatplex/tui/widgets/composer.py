"""The multi-line message box: Enter sends, Ctrl+J inserts a newline.

Ctrl+J is the newline key that arrives everywhere (it is the LF byte). Shift+Enter and
Alt+Enter work only where the terminal speaks the kitty keyboard protocol (kitty, WezTerm,
foot, Ghostty): xterm, GNOME Terminal, tmux, iTerm2 and Windows Terminal send plain Enter
for Shift+Enter, and ESC+Enter for Alt+Enter, which Textual delivers as Enter (Windows
Terminal even takes Alt+Enter for full screen). So only Ctrl+J is advertised.
"""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import TextArea

from chatplex.tui.errors import guarded

NEWLINE_KEYS = ("ctrl+j", "alt+enter", "shift+enter")  # the last two: kitty-protocol terminals only


class Composer(TextArea):
    # Read the transcript without leaving the message box (these replace TextArea's
    # page-wise cursor moves: the box is a few lines high). Shift+PgUp is the terminal's
    # own scrollback in xterm, GNOME Terminal and Windows Terminal, so it is not used.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("pageup", "scroll_chat('page_up')", "Scroll up", show=False),
        Binding("pagedown", "scroll_chat('page_down')", "Scroll down", show=False),
        Binding("ctrl+home", "scroll_chat('home')", "Chat top", show=False),
        Binding("ctrl+end", "scroll_chat('end')", "Chat end", show=False),
    ]

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class ScrollChat(Message):
        """Scroll the transcript: `where` is page_up, page_down, home or end."""

        def __init__(self, where: str) -> None:
            super().__init__()
            self.where = where

    def __init__(self, **kwargs: object) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kwargs)  # type: ignore[arg-type]
        self.placeholder = "Message… (Enter sends, Ctrl+J newline)"

    def set_busy(self, busy: bool) -> None:
        """Looks disabled while the session's reply streams; typing still works and Enter queues."""
        self.set_class(busy, "-busy")
        self.placeholder = ("A reply is streaming… Enter queues your message" if busy
                            else "Message… (Enter sends, Ctrl+J newline)")

    @guarded
    def action_scroll_chat(self, where: str) -> None:
        self.post_message(self.ScrollChat(where))

    @guarded
    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            text = self.text
            if text.strip():
                self.post_message(self.Submitted(text))
                self.clear()
            return
        if event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        await super()._on_key(event)
