"""The multi-line message box: Enter sends, Ctrl+J / Alt+Enter / Shift+Enter insert a newline."""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import TextArea

from chatplex.tui.errors import guarded

NEWLINE_KEYS = ("ctrl+j", "alt+enter", "shift+enter")


class Composer(TextArea):
    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, **kwargs: object) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kwargs)  # type: ignore[arg-type]
        self.placeholder = "Message… (Enter sends, Ctrl+J newline)"

    def set_busy(self, busy: bool) -> None:
        """Looks disabled while the session's reply streams; typing still works and Enter queues."""
        self.set_class(busy, "-busy")
        self.placeholder = ("A reply is streaming… Enter queues your message" if busy
                            else "Message… (Enter sends, Ctrl+J newline)")

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
