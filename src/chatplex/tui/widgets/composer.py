"""The multi-line message box: Enter sends, Ctrl+J inserts a newline.

Ctrl+J is the newline key that arrives everywhere (it is the LF byte). Shift+Enter and
Alt+Enter work only where the terminal speaks the kitty keyboard protocol (kitty, WezTerm,
foot, Ghostty): xterm, GNOME Terminal, tmux, iTerm2 and Windows Terminal send plain Enter
for Shift+Enter, and ESC+Enter for Alt+Enter, which Textual delivers as Enter (Windows
Terminal even takes Alt+Enter for full screen). So only Ctrl+J is advertised.

A paste arrives as one Paste event where the terminal brackets it. Where it does not (an old
terminal, tmux's paste-buffer, a remote console), the text arrives as one key per character,
each line ending in Enter: a 200 KB paste sent ~3,000 messages. So keys that come faster
than fingers can type them are taken as a paste: they go into the box, Enter among them is a
newline, and nothing is sent until a person presses Enter after a pause. The keys' own time
stamps (taken when the terminal's input was read) decide, not when they are handled, so a
busy app does not turn typing into a paste. The stamps of a paste can still show a gap: the
thread that reads the terminal waits for the interpreter while the app's thread re-wraps a
long text, and a collection of the interpreter's garbage stops both threads: a 200 KB paste's
stamps showed four gaps of 100–250 ms, one per ~47,000 keys. So within a second (TAIL) of a
burst, an Enter is a line break if any key follows it within QUIET, not only BURST (no person
reacts to a paste and types again that fast), and a key of text after a pause stays part of
the paste (a Tab among the first keys after the gap went to TextArea and moved the focus out
of the box). Keys typed within that second go in as text, as typed; a Tab among them is a
tab, not a move. Elsewhere an Enter waits only BURST. That window passes on the clock, but
an Enter is judged only behind the keys queued when it passed: a busy app may handle the keys
stamped right after it long after its window (it sent "Here:" alone, then the paste).

A Tab outside a paste is judged the same way: a key that follows it at a machine's pace makes
it pasted text, else it moves the focus, as a person's Tab does. On a loaded machine the
reading thread can stall for over a second (TAIL): the keys after the gap look typed, and a
Tab among them moved the focus out of the box, with the rest of the paste (a soak of the
suite under two CPU hogs failed so).

Ctrl+J is a binding (priority: it must reach the box before the app's keys) whose action
queues its newline behind the keys read before it (`call_later`), so the order is kept. Enter
is not a binding: its action would not be told its key's time stamp, and an Enter's stamp is
what tells a person's Enter (send) from a pasted line break; Textual's public `on_key`
handler sees it first, with its stamp, and `prevent_default` keeps TextArea from taking it
for a newline. Every other key passes through `on_key` too, for the same paste detection.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import TextArea

from chatplex.tui.errors import guarded

NEWLINE_KEYS = ("ctrl+j", "alt+enter", "shift+enter")  # the last two: kitty-protocol terminals only
BURST = 0.02  # seconds: keys closer together than this come from a machine, not a person
QUIET = 0.1  # a pause this long ends a paste
RUN = 4  # this many such keys in a row are a paste even before its first newline
TAIL = 1.0  # seconds after the last key of a burst in which an Enter is judged with QUIET


class Composer(TextArea):
    # Read the transcript without leaving the message box (these replace TextArea's
    # page-wise cursor moves: the box is a few lines high). Shift+PgUp is the terminal's
    # own scrollback in xterm, GNOME Terminal and Windows Terminal, so it is not used.
    BINDINGS: ClassVar[list[BindingType]] = [
        # Alt+Enter and Shift+Enter arrive only with the kitty protocol: on_key takes them
        Binding("ctrl+j", "newline", "New line", show=False, priority=True),
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
        self._last_key = float("-inf")  # event.time of the previous key
        self._run = 0  # keys in a row that came within BURST of the one before
        self._pasting = False
        self._enter_at: float | None = None  # an Enter (or Tab) that waits to see whether keys follow at once
        self._enter_key = "enter"  # which of the two waits
        self._enter_window = BURST  # how soon a key must follow that Enter to make it a line break
        self._burst_at = float("-inf")  # stamp of the last key taken as part of a paste
        self._pasted: list[str] = []  # text of a paste not yet in the document

    def set_busy(self, busy: bool) -> None:
        """Looks disabled while the session's reply streams; typing still works and Enter queues."""
        self.set_class(busy, "-busy")
        self.placeholder = (
            "A reply is streaming… Enter queues your message" if busy else "Message… (Enter sends, Ctrl+J newline)"
        )

    @guarded
    def action_scroll_chat(self, where: str) -> None:
        self.post_message(self.ScrollChat(where))

    @guarded
    def action_newline(self) -> None:
        self.call_later(self._newline, None)  # behind the keys read before it

    @guarded
    def on_key(self, event: events.Key) -> None:
        """Every key that reaches the box, before TextArea's own handling (which
        `prevent_default` skips): Enter sends or is a pasted line break; a key that is part
        of a paste goes in as text."""
        if event.key == "enter" or event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            if self._resolve(event.time):
                self._pass_on(event)
                return
            (self._enter if event.key == "enter" else self._newline)(event.time)
            return
        if self._resolve(event.time):
            event.stop()
            event.prevent_default()
            self._pass_on(event)
            return
        self._timed(event.time, enter=False)
        if event.key == "tab" and not self._pasting:  # pasted text, or a move? the next key tells
            event.stop()
            event.prevent_default()
            self._wait_for_next("tab", event.time)
            return
        text = _text_of(event)
        if self._pasting and text is not None:
            event.stop()
            event.prevent_default()
            self._paste(text)
            return
        self._flush_paste()  # any other key acts on the text as it is so far

    def _resolve(self, stamp: float | None) -> bool:
        """The Enter (or Tab) before this key (stamped `stamp`; None: a Ctrl+J from its
        binding, which came before the Enter's timer, so with it): typed, or part of a paste?
        True when it was a typed Tab that moved the focus: this key belongs to where it went."""
        if self._enter_at is None:
            return False
        pasted = stamp is None or stamp - self._enter_at < self._enter_window
        self._enter_at = None
        if pasted:
            self._pasting = True
            self._paste("\n" if self._enter_key == "enter" else "\t")
            return False
        self._typed()
        return self._enter_key == "tab"

    def _pass_on(self, event: events.Key) -> None:
        """A key typed after a Tab that moved the focus, handled here because it was queued
        behind it (a busy app): it goes where a person meant it, the newly focused widget."""
        self.app.post_message(events.Key(event.key, event.character))

    def _timed(self, stamp: float, enter: bool) -> None:
        """Update the paste state with a key's time stamp."""
        gap, self._last_key = stamp - self._last_key, stamp
        self._run = self._run + 1 if gap < BURST else 0
        if gap >= QUIET:  # a person's key, or a stall in a paste's stamps: a key of text stays pasted
            self._pasting = self._pasting and not enter and stamp - self._burst_at < TAIL
        elif self._run >= RUN or (enter and gap < BURST):
            self._pasting = True
        if self._pasting and gap < QUIET:
            self._burst_at = stamp

    def _enter(self, stamp: float) -> None:
        self._timed(stamp, enter=True)
        if self._pasting:
            self._paste("\n")
            return
        self._flush_paste()
        self._wait_for_next("enter", stamp)  # sent unless another key follows within the window

    def _wait_for_next(self, key: str, stamp: float) -> None:
        self._enter_at, self._enter_key = stamp, key
        self._enter_window = QUIET if stamp - self._burst_at < TAIL else BURST
        self.set_timer(self._enter_window, partial(self._enter_due, stamp))

    @guarded
    def _newline(self, stamp: float | None) -> None:
        """Ctrl+J (stamp None: from its binding) or a kitty-protocol newline key."""
        if stamp is None and self._resolve(stamp):  # (a key's stamp was resolved in on_key)
            return
        if stamp is not None:
            self._timed(stamp, enter=False)
        if self._pasting:
            self._paste("\n")
        else:
            self._flush_paste()
            self.insert("\n")

    @guarded
    def _enter_due(self, stamp: float) -> None:
        """The Enter's window has passed on the clock. Keys read before now may still wait
        in the app's queue or this box's (a busy app): judge it behind them, by their stamps,
        after a round trip through both queues."""
        if self._enter_at == stamp:
            self.app.call_later(self.call_later, self._enter_judged, stamp)

    @guarded
    def _enter_judged(self, stamp: float) -> None:
        if self._enter_at == stamp:  # no key came right after it: a person pressed it
            self._enter_at = None
            self._typed()

    def _typed(self) -> None:
        """The waiting Enter or Tab was a person's: send, or move the focus on."""
        if self._enter_key == "enter":
            self._send()
        else:
            self._flush_paste()
            self.app.action_focus_next()

    def _send(self) -> None:
        self._flush_paste()
        text = self.text
        if text.strip():
            self.post_message(self.Submitted(text))
            self.clear()

    def _paste(self, text: str) -> None:
        """Collect pasted keys and add them as one edit once the keys queued now are handled:
        one edit per key cost ~0.3 ms each, and re-wrapped a long line every time."""
        if not self._pasted:
            self.call_later(self._flush_paste)
        self._pasted.append(text)

    @guarded
    def _flush_paste(self) -> None:
        if self._pasted:
            text, self._pasted = "".join(self._pasted), []
            self.replace(text, *self.selection, maintain_selection_offset=False)


def _text_of(event: events.Key) -> str | None:
    """What a key adds to a pasted text (None: it is not text, like an arrow)."""
    if event.key == "enter" or event.key in NEWLINE_KEYS:
        return "\n"
    if event.key == "tab":  # in a paste, a tab is text (it would move the focus away)
        return "\t"
    return event.character if event.is_printable else None
