"""The Textual app: sidebar, chat pane, composer, status bar, over one Coordinator.

The app never generates anything itself: it calls the coordinator and renders the
coordinator's events, so replies keep streaming whichever screen is shown.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar

from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.signal import Signal
from textual.timer import Timer
from textual.widgets import Footer

from chatplex.config import KINDS as PROVIDER_KINDS
from chatplex.config import Config, config_path
from chatplex.core import export, models, usage
from chatplex.core.coordinator import Approval, Coordinator
from chatplex.core.db import StepOpen, StoreError
from chatplex.core.events import Notification
from chatplex.core.models import MessageState, Role, Session, SessionStatus, preview_of
from chatplex.tui import feed, notify, search
from chatplex.tui.clipboard import copy_with_system_tool
from chatplex.tui.errors import Failures, guarded
from chatplex.tui.screens.approval import ApprovalScreen
from chatplex.tui.screens.copy import CopyScreen
from chatplex.tui.screens.dashboard import DashboardScreen
from chatplex.tui.screens.modals import (
    ChoiceScreen,
    ConfirmScreen,
    ErrorScreen,
    HelpScreen,
    PickerScreen,
    SearchScreen,
    TextScreen,
    confirm_cancel_background,
)
from chatplex.tui.screens.queue import QueueScreen
from chatplex.tui.screens.settings import SettingsScreen, Shown
from chatplex.tui.screens.tools import ToolsScreen
from chatplex.tui.widgets.chat import PAGE, ChatView
from chatplex.tui.widgets.composer import Composer
from chatplex.tui.widgets.sidebar import SessionList
from chatplex.tui.widgets.sidebar import legend as sidebar_legend
from chatplex.tui.widgets.status import LEGEND as STATUS_LEGEND
from chatplex.tui.widgets.status import StatusBar

NOTICE_SECONDS = 15.0  # the status bar's last notice clears after this long
AWAY_WINDOW = 1.5  # desktop notifications: what happens this soon after the first goes in it
AWAY_GAP = 10.0  # and the next one waits this long after it (a burst is one notification)
BUSY = (SessionStatus.STREAMING, SessionStatus.THINKING)  # a reply is being generated


# (id, keys, action, description, shown in footer). Only keys that arrive in ordinary
# terminals (xterm, GNOME/VTE, tmux, iTerm2, Windows Terminal send them without the kitty
# protocol): Alt+digit arrives as a character ("¡"), Ctrl+digit as the digit, Ctrl+B is
# tmux's prefix. tests/tui/test_newcomer.py feeds each key's bytes to Textual's parser.
KEYS: list[tuple[str, str, str, str, bool]] = [
    ("new_session", "ctrl+n", "new_session", "New session", True),
    ("next_session", "ctrl+down", "next_session", "Next session", False),
    ("previous_session", "ctrl+up", "previous_session", "Previous session", False),
    ("rename", "f2", "rename", "Rename", True),
    ("delete", "f8", "delete_session", "Delete", True),
    ("cancel", "escape", "cancel_reply", "Cancel reply", False),
    ("retry", "ctrl+r", "retry", "Retry", True),
    ("model", "ctrl+l", "pick_model", "Model", True),
    ("system_prompt", "f4", "system_prompt", "System prompt", False),
    ("settings", "ctrl+g", "settings", "Settings", False),
    ("search", "ctrl+f", "search", "Search", False),
    ("toggle_reasoning", "ctrl+t", "toggle_reasoning", "Open/fold thinking", False),
    ("export", "ctrl+s", "export", "Export", False),
    ("copy", "f5", "message_mode", "Copy / fork", False),
    ("toggle_sidebar", "ctrl+b,f9", "toggle_sidebar", "Sidebar", False),
    ("dashboard", "ctrl+o", "dashboard", "Dashboard", True),
    ("queue", "f3", "queue", "Queue", True),
    ("approvals", "f6", "approvals", "Approve tool calls", False),
    ("tools", "f7", "tools", "Tools", False),
    ("help", "f1", "help", "Help", True),
    ("quit", "ctrl+q", "quit", "Quit", True),
]

OWN_ACTIONS = {action for _, _, action, _, _ in KEYS}


# What each command does, for the palette's second line (the title is the first).
PALETTE_HELP = {
    "new_session": "Start a new chat session",
    "next_session": "Show the next session in the sidebar",
    "previous_session": "Show the previous session in the sidebar",
    "rename": "Rename the session on screen",
    "delete": "Delete the session on screen and all its messages",
    "cancel": "Stop the reply being generated; its text so far is kept",
    "retry": "Generate the last reply again",
    "model": "Choose the provider and model of this session",
    "system_prompt": "Edit this session's system prompt",
    "settings": "This session's temperature, max tokens, reasoning effort, system prompt, model and tools",
    "search": "Find sessions by title or text",
    "toggle_reasoning": "Open or fold the model's thinking in the last reply on screen",
    "export": "Save this session as a Markdown file",
    "copy": "Pick a message: copy it or a code block, fork there, edit yours into a fork",
    "toggle_sidebar": "Show or hide the session list",
    "dashboard": "Every session at a glance",
    "queue": "Every job: cancel, retry now, raise or lower its priority",
    "approvals": "Go to the next tool call waiting for your approval, and answer it",
    "tools": "The MCP servers, whether they started, their tools and what a call of each needs",
    "help": "Every key, the ids that remap them, what the marks mean",
}


class ChatplexApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "chatplex"
    # Screen.-narrow in app.tcss. No ClassVar: App annotates it as an instance variable.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (90, "-wide")]  # noqa: RUF012
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(key, action, text, show=show, id=bid, priority=bid != "cancel") for bid, key, action, text, show in KEYS
    ]

    def __init__(self, config: Config, coordinator: Coordinator | None = None) -> None:
        super().__init__()
        self.config = config
        self.coordinator: Coordinator | None = coordinator
        self.current: int | None = None
        self._token_counts: collections.deque[tuple[float, int]] = collections.deque()  # (when, tokens so far)
        self._reloading = False
        # the app's one subscriber to the coordinator's bus: it posts each event to the widgets
        # and screens that show it (tui/feed.py)
        self.feed = feed.Feed(lambda: self.current)
        # the sidebar's sessions changed (one id, or None: maybe all): the dashboard and the
        # queue inspector show them too, and need them as the sidebar has them
        self.sessions_changed: Signal[int | None] = Signal(self, "sessions_changed")
        self.failures = Failures()  # every action, handler, timer and worker reports here
        self._arrivals: list[Notification] = []  # background outcomes waiting for the toast to clear
        self._toast_until = 0.0  # time.monotonic() when the last such toast goes away
        self._arrivals_timer: Timer | None = None
        self._notice_timer: Timer | None = None
        self._notice = ""
        # desktop notifications while the terminal has not the focus (tui/notify.py): how,
        # chosen at start from config and the terminal; where escape sequences go (a test
        # catches them)
        self.desktop_method: str | None = None
        self.desktop_write: Callable[[str], None] = self._write_to_terminal
        self._away: list[notify.Happening] = []
        self._away_timer: Timer | None = None
        self._away_next = 0.0  # time.monotonic() before which no other one goes out
        # session id -> (its stored preview, what the sidebar shows instead): a reply cancelled
        # here. The store leaves the preview as it was (blank in a new session), which said
        # nothing of the cancel.
        self._cancels: dict[int, tuple[str, str]] = {}
        # every reply's thinking shown open (config show_reasoning; a palette command flips it);
        # the chat pane's replies read it when they are made
        self.show_reasoning = config.show_reasoning
        # Set once the coordinator runs and the first session is shown. Textual calls a test's
        # pilot (and a snapshot's run_before) before the app's on_mount has finished.
        self.ready = asyncio.Event()

    # ---------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="sidebar"):
                yield SessionList(id="sessions")
            with Vertical(id="chat-pane"):
                yield ChatView(id="chat")
                yield Composer(id="composer")
        yield StatusBar(id="status")
        yield Footer()

    @property
    def _main(self) -> Screen:
        """The chat screen, also while a dialog, the dashboard or the queue is on top
        (App.query_one would look only at the screen in front)."""
        return self.screen_stack[0]

    @property
    def sidebar(self) -> SessionList:
        return self._main.query_one(SessionList)

    @property
    def chat(self) -> ChatView:
        return self._main.query_one(ChatView)

    @property
    def composer(self) -> Composer:
        return self._main.query_one(Composer)

    @property
    def status(self) -> StatusBar:
        return self._main.query_one(StatusBar)

    @property
    def coord(self) -> Coordinator:
        assert self.coordinator is not None
        return self.coordinator

    # ---------------------------------------------------------------- life cycle
    @guarded
    async def on_mount(self) -> None:
        try:
            await self._start()
        finally:
            self.ready.set()

    async def _start(self) -> None:
        if self.config.keys:
            self.set_keymap(self.config.keys)
        self.chat.retry_key = self._key_for("retry")
        self.chat.export_key = self._key_for("export")
        self.chat.new_key = self._key_for("new_session")
        self.chat.prompt_key = self._key_for("system_prompt")
        self.chat.approve_key = self.query_one(StatusBar).approve_key = self._key_for("approvals")
        self.chat.setup_hint = setup_hint(self.config)
        self.chat.times = self.config.show_times
        self.chat.prices = self.config.prices
        self.desktop_method = notify.method_of(self.config.notifications, os.environ)
        if self.coordinator is None:
            try:
                self.coordinator = await Coordinator.open(self.config)
            except StoreError as e:
                await self.push_screen(ErrorScreen("chatplex cannot open its database", str(e)))
                return
        self.chat.live_text = self.coord.live_text
        self.feed.subscribe(self.chat, *ChatView.KINDS)  # and on to the app (see ChatView)
        self.feed.subscribe(self.status, feed.QueueStatsChanged)
        self.coord.bus.subscribe(self.feed)
        await self.coord.start()
        sessions = await self.coord.sessions()
        self.sidebar.set_sessions(sessions)
        self.status.set(workers=(self.coord.workers_busy, self.coord.workers_total))
        await self.focus_session(sessions[0].id if sessions else None)
        self.composer.focus()
        if self.config.warnings:  # unknown keys in config.toml: a typo the user should hear of
            self.notify(
                "\n".join(self.config.warnings), title="config.toml", severity="warning", markup=False, timeout=15
            )
        self.set_interval(1.0, self._tick)

    @guarded
    async def action_quit(self) -> None:
        """Leave; running replies are interrupted, kept, and resume at the next start."""
        try:
            if self.coordinator is not None and not self.coordinator.stopping:
                self.status.set(notice="stopping… running replies will resume next time")
                await self.coordinator.stop()
        finally:
            self.exit()  # even if stopping failed: quitting must always quit

    @guarded
    async def on_unmount(self) -> None:
        """However the app ends, stop the workers so nothing is left half-written."""
        if self.coordinator is not None and not self.coordinator.stopping:
            await self.coordinator.stop()

    def _key_for(self, binding_id: str) -> str:
        return self._keys_for(binding_id)[0]

    def _keys_for(self, binding_id: str) -> list[str]:
        """The keys of one binding, remapped ones ([keys] in config.toml) included."""
        key = self.config.keys.get(binding_id) or next(k for bid, k, *_ in KEYS if bid == binding_id)
        return [k.strip() for k in key.split(",")]

    # ---------------------------------------------------------------- focus and sessions
    async def focus_session(self, session_id: int | None) -> None:
        self.current = session_id
        await self.coord.focus(session_id)
        session = await self.coord.session(session_id) if session_id is not None else None
        if session is None:
            self.current = None
            await self.chat.show(None, [])
        else:
            await self.chat.show(session, await self.coord.messages(session.id, limit=PAGE))
            running = {rj.job.message_id: rj.started for rj in self.coord.running()}
            for reply in self.chat.replies.values():
                if reply.message.id in running:
                    reply.started_at = running[reply.message.id]
                elif session.status in BUSY and reply.message.state is MessageState.STREAMING:
                    reply.started_at = time.monotonic()  # another process runs it
                else:
                    continue
                reply.tick()
        self.sidebar.set_focused(self.current)
        self._session_shown(session)

    def _session_shown(self, session: Session | None) -> None:
        busy = session is not None and session.status in (*BUSY, SessionStatus.QUEUED)
        self.composer.set_busy(busy)
        self.status.set(model=f"{session.provider} · {session.model}" if session else "")
        self.sub_title = session.title if session else ""
        if session is None:
            self.status.set(spent="")
        else:
            self._show_spent(session)

    @work(exclusive=True, group="spent")
    @guarded
    async def _show_spent(self, session: Session) -> None:
        """The status bar's tokens, cost and context fill of the session on screen."""
        totals = await self.coord.totals(session.id)
        known = self.coord.known_window(session.provider, session.model)
        if self.current == session.id:  # at once: the window may take a server's answer
            self.status.set(spent=usage.context_line(totals, known))
        if known is not None or not (totals.prompt or totals.completion):
            return  # nothing counted yet: not worth a provider's client and a request (B6, B7)
        window = await self.coord.context_window(session.provider, session.model)
        if self.current == session.id:
            self.status.set(spent=usage.context_line(totals, window))

    @on(SessionList.Selected)
    @guarded
    async def _selected(self, event: SessionList.Selected) -> None:
        await self.focus_session(event.session_id)
        self.composer.focus()

    @on(Composer.Submitted)
    @guarded
    async def _submitted(self, event: Composer.Submitted) -> None:
        try:
            if self.current is None:
                session = await self.coord.create_session()
                self.sidebar.upsert(session)  # before it is current (its event is still queued)
                await self.focus_session(session.id)
            assert self.current is not None
            if (too_big := await self.coord.overflow(self.current, event.text)) is not None:
                self.composer.text = event.text  # kept while the user chooses (and if they go back)
                self._ask_overflow(self.current, event.text, too_big)
                return
            await self.coord.send(self.current, event.text)
        except (ValueError, KeyError, StoreError) as e:
            self.composer.text = event.text  # nothing is lost
            self.notify(str(e), severity="error", markup=False)
        except Exception:
            self.composer.text = event.text  # nothing is lost; `guarded` reports the failure
            raise

    @work(exclusive=True, group="dialog")
    @guarded
    async def _ask_overflow(self, session_id: int, text: str, too_big: usage.Overflow) -> None:
        """The message would overflow the model's context window: drop the oldest turns from
        what is sent (they stay stored and shown), send it anyway, or go back to editing."""
        window = usage.size(too_big.window)
        if too_big.tokens > too_big.window:
            size = f"about {too_big.tokens:,} tokens, more than the {window} this model's context holds"
        else:
            left = "(too few left for a reply)"
            size = f"about {too_big.tokens:,} of the {window} tokens this model's context holds {left}"
        if too_big.drop_from is None:
            question = f"This message alone makes {size}. Shorten it, or pick a model with a bigger context."
            answers = [("s", "Send anyway")]
        else:
            turns = f"{too_big.turns} oldest turn{'s' if too_big.turns != 1 else ''}"
            question = (
                f"With this session's history, this message makes {size}. Drop the {turns} from what is "
                "sent? They stay here, marked; the palette's “Send every turn again” undoes it."
            )
            answers = [("d", f"Drop the {turns}"), ("s", "Send anyway")]
        answer = await self.push_screen_wait(ChoiceScreen(question, answers))
        if answer is None or session_id != self.current:
            return  # back to editing: the text is still in the box
        if answer == "d" and too_big.drop_from is not None:
            await self.coord.send_from(session_id, too_big.drop_from)
            await self.focus_session(session_id)  # shows where what is sent now begins
        await self.coord.send(session_id, text)
        if self.composer.text == text:
            self.composer.text = ""

    @work(exclusive=True, group="dialog")
    @guarded
    async def action_send_every_turn(self) -> None:
        """Send the whole history again (undo a drop of old turns)."""
        if self.current is not None:
            await self.coord.send_from(self.current, None)
            await self.focus_session(self.current)

    @on(Composer.ScrollChat)
    @guarded
    def _scroll_chat(self, event: Composer.ScrollChat) -> None:
        chat = self.chat
        {
            "page_up": chat.scroll_page_up,
            "page_down": chat.scroll_page_down,
            "home": chat.scroll_home,
            "end": chat.scroll_end,
        }[event.where](animate=False)

    @on(ChatView.NeedOlder)
    @guarded
    async def _older(self) -> None:
        sid, before = self.current, self.chat.oldest_id
        if sid is not None and before is not None:
            await self.chat.prepend(await self.coord.messages(sid, limit=PAGE, before_id=before), sid, before)

    # ---------------------------------------------------------------- coordinator events
    # They reach the app through the chat pane (ChatView.KINDS), in order, once it showed them.
    @on(feed.SessionChanged)
    @guarded
    def _session_changed(self, message: feed.SessionChanged) -> None:
        session = message.event.session
        try:
            if session.archived:  # put away (here, or by `chatplex archive`): out of the sidebar
                self.sidebar.remove_session(session.id)
                self.sessions_changed.publish(session.id)
                return
            before = self.sidebar.sessions.get(session.id)
            waits = session.status is SessionStatus.NEEDS_APPROVAL
            if waits and (before is None or before.status is not session.status):
                self._away_from_terminal(notify.Happening("approval", session.id, session.title, "a tool call waits"))
            self.sidebar.upsert(self._as_listed(session))
            if session.id == self.current:
                self._session_shown(session)
        except (NoMatches, IndexError):  # the main screen is gone (shutting down)
            return
        self.sessions_changed.publish(session.id)

    @on(feed.SessionDeleted)
    @guarded
    def _session_deleted(self, message: feed.SessionDeleted) -> None:
        try:
            self.sidebar.remove_session(message.event.session_id)
        except (NoMatches, IndexError):  # the main screen is gone (shutting down)
            return
        self.sessions_changed.publish(message.event.session_id)

    @on(feed.MessageAdded)
    @guarded
    def _message_added(self, message: feed.MessageAdded) -> None:
        if message.event.message.role is Role.USER:
            self._cancels.pop(message.event.message.session_id, None)

    @on(feed.ReplyStarted)
    @guarded
    def _reply_started(self, message: feed.ReplyStarted) -> None:
        self._cancels.pop(message.event.session_id, None)

    @on(feed.ReplyFinished)
    @guarded
    def _reply_finished(self, message: feed.ReplyFinished) -> None:
        done = message.event.message
        if done.state is MessageState.INTERRUPTED and done.error == "cancelled":
            self._cancelled(done)
            self.sessions_changed.publish(done.session_id)
        if done.role is Role.ASSISTANT and not self.app_focus:
            listed = self.sidebar.sessions.get(done.session_id)
            title = listed.title if listed is not None else f"session {done.session_id}"
            if done.state is MessageState.ERROR:
                self._away_from_terminal(notify.Happening("failed", done.session_id, title, done.error or "failed"))
            elif done.state is MessageState.COMPLETE and not done.tool_calls:  # the turn ended
                said = preview_of(done.content, 120)
                self._away_from_terminal(notify.Happening("reply", done.session_id, title, said))

    # ---------------------------------------------------------------- desktop notifications
    def _away_from_terminal(self, happening: notify.Happening) -> None:
        """Something the user would want to know while the terminal has not the focus: a
        notification says it, with what else happens in the next AWAY_WINDOW seconds."""
        if self.app_focus or self.desktop_method is None:
            return
        self._away.append(happening)
        if self._away_timer is None:
            wait = max(AWAY_WINDOW, self._away_next - time.monotonic())
            self._away_timer = self.set_timer(wait, self._notify_desktop)

    @guarded
    async def _notify_desktop(self) -> None:
        self._away_timer = None
        happened, self._away = self._away, []
        method = self.desktop_method
        if not happened or self.app_focus or method is None:
            return
        self._away_next = time.monotonic() + AWAY_GAP
        title, body = notify.summary(happened)
        if method in notify.OSC:
            self.desktop_write(notify.sequence(method, title, body, tmux=bool(os.environ.get("TMUX"))))
        elif not await asyncio.to_thread(notify.run_tool, notify.command(method, title, body)):
            self.desktop_method = None  # it does not work here: stop trying
            self._set_notice(f"desktop notifications are off: {method} did not work")

    def _write_to_terminal(self, text: str) -> None:
        """An escape sequence to the terminal, in one write on the stream Textual draws on.
        Textual's writer thread writes each frame in one write too, and the buffered stream
        takes a lock per write, so the sequence goes between two of them, not into one (not a
        guarantee Textual documents; a headless app, a test's, has no terminal)."""
        if self.is_headless:
            return
        stream = sys.__stdout__ if sys.platform == "win32" else sys.__stderr__
        if stream is not None:
            stream.write(text)
            stream.flush()

    @on(events.AppFocus)
    @guarded
    def _terminal_focused(self) -> None:
        """Back at the terminal: what waited to be told is on screen now."""
        self._away.clear()
        if self._away_timer is not None:
            self._away_timer.stop()
            self._away_timer = None

    @on(feed.Notification)
    @guarded
    def _notified(self, message: feed.Notification) -> None:
        try:
            self._notification(message.event)
        except (NoMatches, IndexError):  # the main screen is gone (shutting down)
            pass

    @on(feed.ExternalChange)
    @guarded
    async def _external_change(self) -> None:
        await self._reload()
        self.sessions_changed.publish(None)

    def _cancelled(self, message: models.Message) -> None:
        """The sidebar row of a cancelled reply says so, with the partial text if any, until
        the session moves on (a new message, a retry, another preview)."""
        sid = message.session_id
        listed = self.sidebar.sessions.get(sid)
        if listed is None:
            return
        stored = self._cancels[sid][0] if sid in self._cancels else listed.preview
        self._cancels[sid] = (stored, preview_of("⏹ " + (message.content or "cancelled")))
        self.sidebar.upsert(self._as_listed(listed))

    def _as_listed(self, session: Session) -> Session:
        cancel = self._cancels.get(session.id)
        if cancel is None:
            return session
        if session.preview not in cancel:  # a newer preview: the cancel is old news
            del self._cancels[session.id]
            return session
        return dataclasses.replace(session, preview=cancel[1])

    def _notification(self, event: Notification) -> None:
        """A background reply finished or failed: the status bar says so for a while, and one
        toast at a time says so over the chat — those that arrive while it shows are told
        together once it has gone ("3 replies arrived"), not stacked over the chat."""
        self._set_notice(f"{event.title}: {event.text}")
        if event.session_id == self.current:
            return
        self._arrivals.append(event)
        wait = self._toast_until - time.monotonic()
        if wait <= 0:
            self._show_arrivals()
        elif self._arrivals_timer is None:
            self._arrivals_timer = self.set_timer(wait, self._show_arrivals)

    @guarded
    def _show_arrivals(self) -> None:
        self._arrivals_timer = None
        arrived, self._arrivals = self._arrivals, []
        if not arrived:
            return
        failed = sum(1 for e in arrived if e.level == "error")
        if len(arrived) == 1:
            title, text = arrived[0].title, arrived[0].text
        else:
            done = len(arrived) - failed
            said = [f"{done} repl{'y' if done == 1 else 'ies'} arrived"] if done else []
            said += [f"{failed} failed"] if failed else []
            title = ", ".join(said)
            names = list(dict.fromkeys(e.title for e in arrived))
            text = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        self.notify(text, title=title, severity="error" if failed else "information", markup=False)
        self._toast_until = time.monotonic() + self.NOTIFICATION_TIMEOUT
        if self.config.bell:
            self.bell()

    def _set_notice(self, text: str) -> None:
        """The status bar's notice, cleared after NOTICE_SECONDS (it went stale for good)."""
        self.status.set(notice=text)
        self._notice = self.status.notice
        if self._notice_timer is not None:
            self._notice_timer.stop()
        self._notice_timer = self.set_timer(NOTICE_SECONDS, self._clear_notice)

    @guarded
    def _clear_notice(self) -> None:
        self._notice_timer = None
        if self.status.notice == self._notice:  # not one set since (quitting says so to the end)
            self.status.set(notice="")

    async def _reload(self) -> None:
        """Another process wrote to the database: refresh what is shown."""
        if self._reloading:
            return
        self._reloading = True
        try:
            sessions = await self.coord.sessions()
            self.sidebar.set_sessions([self._as_listed(s) for s in sessions])
            current = next((s for s in sessions if s.id == self.current), None)
            local = any(rj.session.id == self.current for rj in self.coord.running())
            if current and not local and self.chat.session and current.updated_at != self.chat.session.updated_at:
                await self.chat.show(current, await self.coord.messages(current.id, limit=PAGE))
                self._session_shown(current)
            elif current and any(step.pending for step in self.chat.tool_steps.values()):
                # a call answered or run by another process: its step here must not stay "running…"
                self.chat.update_tool_steps(await self.coord.messages(current.id, limit=PAGE))
            await self._approval_still_waits()
        finally:
            self._reloading = False

    async def _approval_still_waits(self) -> None:
        """The approval dialog asks about a call another process may have answered: then it
        closes, saying so, rather than offer a choice that no longer exists."""
        screen = self.screen
        if isinstance(screen, ApprovalScreen):
            waiting = {a.job.id for a in await self.coord.approvals(screen.approval.session.id)}
            if screen.approval.job.id not in waiting and self.screen is screen:
                screen.dismiss(None)
                self.notify("That call was answered elsewhere meanwhile.", markup=False, timeout=4)

    @guarded
    def _tick(self) -> None:
        """The once-a-second clock (tokens/s, waiting times); still at animation level "none"."""
        if self.animation_level == "none":
            return
        now, counts = time.monotonic(), self._token_counts
        counts.append((now, self.coord.tokens_streamed))
        while counts[0][0] < now - 3.5:  # a 3-second window
            counts.popleft()
        (then, before), (_, total) = counts[0], counts[-1]
        try:
            self.status.set(
                tokens_per_s=(total - before) / max(now - then, 1.0),
                workers=(self.coord.workers_busy, self.coord.workers_total),
            )
            for reply in self.chat.replies.values():
                reply.tick()
        except NoMatches:  # the main screen is gone (shutting down)
            pass

    # ---------------------------------------------------------------- actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A dialog's own keys win inside it. The app's keys are priority bindings (they must
        reach past the composer), which Textual checks before the dialog's: so while a modal
        screen is in front they step aside — Ctrl+S saves the system prompt instead of
        opening the export dialog, F1 closes help. Quitting always works."""
        modal = isinstance(self.screen, ModalScreen)
        return not (modal and action in OWN_ACTIONS and action != "quit")

    @guarded
    async def action_new_session(self) -> None:
        session = await self.coord.create_session()
        await self.focus_session(session.id)
        self.composer.focus()

    async def _step(self, delta: int) -> None:
        order = self.sidebar.order
        if not order:
            return
        index = order.index(self.current) if self.current in order else -delta
        await self.focus_session(order[(index + delta) % len(order)])

    @guarded
    async def action_next_session(self) -> None:
        await self._step(1)

    @guarded
    async def action_previous_session(self) -> None:
        await self._step(-1)

    def _target(self) -> int | None:
        """The session a key acts on: what is highlighted on the screen in front (a dashboard
        tile, the queue inspector's job), else the one in the chat pane."""
        screen = self.screen
        if isinstance(screen, DashboardScreen):
            return screen.selected
        if isinstance(screen, QueueScreen):
            job = screen.selected_job()
            return job.session_id if job else None
        return self.current

    async def _need_session(self) -> Session | None:
        sid = self._target()
        session = await self.coord.session(sid) if sid is not None else None
        if session is None:
            why = (
                "Highlight a job first."
                if isinstance(self.screen, QueueScreen)
                else "No session: press ctrl+n to start one."
            )
            self.notify(why, severity="warning", markup=False)
        return session

    @work(exclusive=True, group="dialog")
    @guarded
    async def action_rename(self) -> None:
        if (session := await self._need_session()) is None:
            return
        title = await self.push_screen_wait(TextScreen("Rename session", session.title))
        if title is not None and title.strip():
            await self.coord.rename(session.id, title)

    @work(exclusive=True, group="dialog")
    @guarded
    async def action_approvals(self) -> None:
        """The next tool call waiting for the user: the session on screen's first, else the
        next session down the sidebar's (wrapping) — shown, then asked about."""
        waiting = await self.coord.approvals()
        if not waiting:
            self.notify("No tool call waits for your approval.", markup=False, timeout=2)
            return
        order = self.sidebar.order
        start = order.index(self.current) if self.current in order else 0

        def place(a: Approval) -> int:
            at = order.index(a.session.id) if a.session.id in order else len(order)
            return (at - start) % max(len(order), 1)

        chosen = min(waiting, key=lambda a: (place(a), a.job.id))
        if chosen.session.id != self.current and not isinstance(self.screen, DashboardScreen):
            await self.focus_session(chosen.session.id)
        answer = await self.push_screen_wait(ApprovalScreen(chosen, len(waiting)))
        if answer is None:
            return
        what, reason = answer
        if what == "deny":
            done = await self.coord.deny(chosen.job.id, reason)
        else:
            done = await self.coord.approve(chosen.job.id, always=what == "always")
        if not done:
            self.notify("That call was answered elsewhere meanwhile.", markup=False, timeout=3)

    @work(exclusive=True, group="dialog")
    @guarded
    async def action_delete_session(self) -> None:
        if (session := await self._need_session()) is None:
            return
        question = f"Delete “{session.title}” and all its messages?"
        if await self.push_screen_wait(ConfirmScreen(question)):
            instead = self._row_in_place_of(session.id)
            await self.coord.delete_session(session.id)
            if session.id == self.current:  # deleted from the dashboard, the chat pane stays
                await self.focus_session(instead)

    def _row_in_place_of(self, session_id: int) -> int | None:
        """The session whose row takes `session_id`'s when it leaves the sidebar (the one above
        if it was the last): shown instead of it, not the top one."""
        order = self.sidebar.order
        at = order.index(session_id) if session_id in order else 0
        rest = [s for s in order if s != session_id]
        return rest[min(at, len(rest) - 1)] if rest else None

    @guarded
    async def action_cancel_reply(self) -> None:
        if self.current is not None and not await self.coord.cancel(self.current):
            self.notify("Nothing to cancel in this session.", markup=False, timeout=2)

    @work(exclusive=True, group="dialog")
    @guarded
    async def action_retry(self) -> None:
        """Generate the last reply again; a finished one only once the user says so (its text
        is replaced, and it may have taken minutes)."""
        if (session := await self._need_session()) is None:
            return
        recent = await self.coord.messages(session.id, limit=1)
        last = recent[-1] if recent else None
        if (
            last is not None
            and last.role is Role.ASSISTANT
            and last.state is MessageState.COMPLETE
            and not await self.push_screen_wait(
                ConfirmScreen("Generate the last reply again? Its text is replaced by the new one.")
            )
        ):
            return
        try:
            retried = await self.coord.retry(session.id)
        except StepOpen as e:  # Ctrl+R while the last step's tool calls wait or run
            self.notify(str(e), severity="warning", markup=False)
            return
        if retried is None:
            self.notify("Nothing to retry here.", markup=False, timeout=2)

    @work(exclusive=True, group="dialog")
    @guarded
    async def action_pick_model(self) -> None:
        if (session := await self._need_session()) is None:
            return
        choices = [(f"{name}\t{pc.model}", f"{name} · {pc.model}") for name, pc in self.config.providers.items()]

        async def load() -> list[tuple[str, str]]:
            found: list[tuple[str, str]] = []
            for name in self.config.providers:
                try:
                    found += [(f"{name}\t{m}", f"{name} · {m}") for m in await self.coord.list_models(name)]
                except Exception:  # an unreachable server lists nothing; the configured model stays
                    continue
            return found

        current = f"{session.provider}\t{session.model}"  # the target's (a tile's, on the dashboard)
        if current not in dict(choices):  # a model picked from a server's list earlier
            choices.insert(0, (current, current.replace("\t", " · ")))
        chosen = await self.push_screen_wait(PickerScreen("Provider and model", choices, load, current))
        if chosen:
            provider, model = chosen.split("\t", 1)
            await self.coord.update_session(session.id, provider=provider, model=model)

    @work(exclusive=True, group="dialog")
    @guarded
    async def action_system_prompt(self) -> None:
        if (session := await self._need_session()) is None:
            return
        text = await self.push_screen_wait(
            TextScreen("System prompt for this session", session.system_prompt, multiline=True)
        )
        if text is not None:
            await self.coord.update_session(session.id, system_prompt=text)

    @work(exclusive=True, group="dialog")
    @guarded
    async def action_settings(self) -> None:
        """The session's settings dialog; what it saves applies from its next reply."""
        if (session := await self._need_session()) is None:
            return
        pc = self.config.providers.get(session.provider)
        servers = session.servers if session.servers is not None else self.config.default_servers()
        defaults = [] if pc is None else [f"max_tokens {pc.max_tokens}"] if pc.max_tokens else []
        if pc is not None:
            if "temperature" in pc.params:
                defaults.append(f"temperature {pc.params['temperature']}")
            if pc.reasoning_effort:
                defaults.append(f"reasoning effort {pc.reasoning_effort}")
        shown = Shown(
            session.title,
            session.provider,
            session.model,
            ", ".join(servers) or "none",
            session.settings,
            session.system_prompt,
            " · ".join(defaults) or "the server's own",
            self._key_for("model"),
            self._key_for("tools"),
        )
        chosen = await self.push_screen_wait(SettingsScreen(shown))
        if chosen is None:
            return
        prompt = chosen.pop("system_prompt")
        try:
            if prompt != session.system_prompt:
                await self.coord.update_session(session.id, system_prompt=prompt)
            await self.coord.set_settings(session.id, **chosen)
        except ValueError as e:  # the dialog checks first: a change of the rules since
            self.notify(str(e), severity="error", markup=False)
            return
        except KeyError:
            self.notify(f"“{session.title}” was deleted meanwhile: nothing saved.", severity="error", markup=False)
            return
        self.notify("Saved: the session's next reply uses them.", markup=False, timeout=3)

    @work(exclusive=True, group="dialog")
    @guarded
    async def action_search(self) -> None:
        chosen = await self.push_screen_wait(SearchScreen(lambda query: search.find(self.coord, query)))
        if chosen is not None:
            session_id, message_id = chosen
            if (found := await self.coord.session(session_id)) is not None and found.archived:
                self.sidebar.upsert(await self.coord.update_session(session_id, archived=False))
                self.notify(f"“{found.title}” is back from the archive.", markup=False, timeout=3)
            await self.focus_session(session_id)
            if message_id is not None:
                await self._reveal(message_id)

    async def _reveal(self, message_id: int) -> None:
        """Scroll the chat pane to a message, mounting the older ones down to it first."""
        chat = self.chat
        before = chat.oldest_id
        if chat.session and before is not None and message_id < before and chat.has_older:
            older = await self.coord.messages(chat.session.id, before_id=before)
            wanted = [m for m in older if m.id >= message_id]
            if await chat.prepend(wanted, chat.session.id, before):
                chat.has_older = len(wanted) < len(older)
        chat.scroll_to_message(message_id)

    @work(exclusive=True, group="dialog")
    @guarded
    async def action_cancel_background(self) -> None:
        """Every session's work but the one on screen's, after a yes (the palette and F3 X)."""
        await confirm_cancel_background(self, self.coord, self.current)

    @work(exclusive=True, group="dialog")
    @guarded
    async def action_message_mode(self) -> None:
        """Message mode: copy a message or one code block of a reply, fork at a message, edit
        one of yours into a fork, or go to where this fork began."""
        chosen = await self.push_screen_wait(CopyScreen(self.chat))
        if chosen is None or self.current is None:
            return
        what, arg, text = chosen
        if what == "copy":
            await self.copy_out(arg, text)
        elif what in ("fork", "edit"):
            fork = await self.coord.fork(self.current, int(arg), keep_at=what == "fork")
            self.sidebar.upsert(fork)
            await self.focus_session(fork.id)
            if what == "edit":  # sent there when the user presses Enter; the original stays
                self.composer.text = text
                self.composer.move_cursor(self.composer.document.end)
            self.composer.focus()
            self.notify(f"Forked into “{fork.title}”: the original is unchanged.", markup=False, timeout=4)
        elif what == "origin":
            session = await self.coord.session(self.current)
            if session is not None and session.forked_from is not None:
                origin = await self.coord.session(session.forked_from)
                if origin is None:
                    self.notify("The session this was forked from is gone.", severity="warning", markup=False)
                    return
                await self.focus_session(origin.id)
                if session.forked_at is not None:
                    await self._reveal(session.forked_at)

    async def copy_out(self, what: str, text: str) -> None:
        """`text` to the terminal's clipboard (OSC 52) and the system's where a tool for it
        exists; the toast says which, since the app cannot see whether the terminal took it."""
        self.copy_to_clipboard(text)
        tool = await asyncio.to_thread(copy_with_system_tool, text)
        size = f"{len(text):,} character{'s' if len(text) != 1 else ''}"
        if tool:
            self.notify(f"Copied {what} ({size}) to the clipboard ({tool}, and the terminal's).", markup=False)
        else:
            self.notify(
                f"Sent {what} ({size}) to the terminal's clipboard (OSC 52). No wl-copy, xclip, xsel or "
                "pbcopy works here, and a terminal may refuse OSC 52 (in tmux: set -g set-clipboard on).",
                severity="warning",
                markup=False,
                timeout=8,
            )

    @work(exclusive=True, group="dialog")
    @guarded
    async def action_export(self) -> None:
        if (target := await self._need_session()) is None:
            return
        sid = target.id
        slug = re.sub(r"[^A-Za-z0-9]+", "-", target.title).strip("-").lower() or f"session-{sid}"
        path = await self.push_screen_wait(TextScreen("Export as Markdown to", str(Path.cwd() / f"{slug}.md")))
        if not path:
            return
        session, messages = await self.coord.session(sid), await self.coord.messages(sid)
        if session is None:
            self.notify("This session was deleted meanwhile.", severity="warning", markup=False)
            return
        try:  # in a thread: a 10 MB transcript takes a while to build and write (B12)
            await asyncio.to_thread(export.save, Path(path).expanduser(), session, messages)
        except OSError as e:
            self.notify(f"Could not write {path}: {e.strerror}", severity="error", markup=False)
            return
        self.notify(f"Exported to {path}", markup=False)

    @guarded
    def action_dashboard(self) -> None:
        """Every session at a glance; Enter opens one. A callback, not a worker waiting for
        the screen: the dialogs opened from the dashboard would cancel that worker."""
        if self.coordinator is None or isinstance(self.screen, DashboardScreen):
            return  # already there (its key is an app-wide binding)
        screen = DashboardScreen(
            self.coord,
            lambda: [self.sidebar.sessions[sid] for sid in self.sidebar.order],
            self.current,
            self.feed,
            self.sessions_changed,
        )
        screen.retry_key, screen.approve_key = self._key_for("retry"), self._key_for("approvals")
        self.push_screen(screen, self._dashboard_closed)

    @guarded
    async def _dashboard_closed(self, chosen: int | None) -> None:
        if chosen is not None:
            await self.focus_session(chosen)

    @guarded
    def action_queue(self) -> None:
        if self.coordinator is not None and not isinstance(self.screen, QueueScreen):
            self.push_screen(
                QueueScreen(
                    self.coord,
                    lambda: {sid: s.title for sid, s in self.sidebar.sessions.items()},
                    self.feed,
                    self.sessions_changed,
                    lambda: self.current,
                )
            )

    @guarded
    def action_tools(self) -> None:
        if self.coordinator is not None and not isinstance(self.screen, ToolsScreen):
            self.push_screen(ToolsScreen(self.coord, self.current))

    @guarded
    def action_toggle_sidebar(self) -> None:
        sidebar = self.query_one("#sidebar")
        sidebar.display = not sidebar.display

    @guarded
    def action_toggle_reasoning(self) -> None:
        """Open or fold the thinking of the reply the user reads: the last one with thinking
        that is on screen (else the last one with thinking)."""
        chat = self.chat
        thoughtful = [r for r in chat.replies.values() if r.has_reasoning and r.is_mounted]
        top = chat.scroll_offset.y
        bottom = top + chat.scrollable_content_region.height
        in_view = [r for r in thoughtful if r.virtual_region.y < bottom and r.virtual_region.bottom > top]
        reply = max(in_view or thoughtful, key=lambda r: r.message.id, default=None)
        if reply is None:
            self.notify("No reply here has thinking to show.", markup=False, timeout=2)
            return
        reply.show_reasoning()

    @guarded
    async def action_pin(self, pinned: bool) -> None:
        """The session on screen pinned to the top of the sidebar, or not."""
        if self.current is not None:
            self.sidebar.upsert(await self.coord.update_session(self.current, pinned=pinned))

    @guarded
    async def action_archive(self) -> None:
        """Put the session on screen away: out of the sidebar, the row below it shown instead.
        Search still finds it; "Archived sessions…" or a new message brings it back."""
        if self.current is None or (session := await self.coord.session(self.current)) is None:
            return
        instead = self._row_in_place_of(session.id)
        await self.coord.update_session(session.id, archived=True)
        self.sidebar.remove_session(session.id)
        await self.focus_session(instead)
        self.notify(
            f"Archived “{session.title}”: “Archived sessions…” in the palette brings it back.",
            markup=False,
            timeout=4,
        )

    @work(exclusive=True, group="dialog")
    @guarded
    async def action_archived(self) -> None:
        """The archived sessions, newest first: Enter brings one back and shows it."""
        archived = await self.coord.sessions(archived=True)
        if not archived:
            self.notify("No session is archived.", markup=False, timeout=3)
            return
        choices = [(str(s.id), f"{s.title}  ·  {preview_of(s.preview, 60)}") for s in archived]
        chosen = await self.push_screen_wait(PickerScreen("Archived sessions: Enter restores one", choices))
        if chosen is None:
            return
        try:
            self.sidebar.upsert(await self.coord.update_session(int(chosen), archived=False))
        except KeyError:
            self.notify("That session was deleted meanwhile.", severity="error", markup=False, timeout=3)
            return
        await self.focus_session(int(chosen))

    @guarded
    def action_show_times(self, shown: bool) -> None:
        """Each message's time on its box, or not (config show_times; the palette flips it)."""
        self.chat.show_times(shown)

    @guarded
    def action_show_all_reasoning(self, shown: bool) -> None:
        """Every reply's thinking open or folded, now and for the replies shown from now on."""
        self.show_reasoning = shown
        for reply in self.chat.replies.values():
            reply.show_reasoning(shown)

    @guarded
    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.help_rows(), sidebar_legend(), STATUS_LEGEND))

    def help_rows(self) -> list[tuple[str, str, str]]:
        """F1's table (keys, what they do, the id to remap them by): every key there is one
        that arrives in ordinary terminals."""
        rows = [(" / ".join(self._keys_for(bid)), text, bid) for bid, _, _, text, _ in KEYS]
        rows.append(("pageup / pagedown", "Scroll the chat, also while typing", "—"))
        rows.append(("ctrl+home / ctrl+end", "Top / end of the chat", "—"))
        rows.append(("1 … 9", "On the dashboard: open session 1–9", "—"))
        rows.append(("s", "On the dashboard: what needs you first (approvals, failures, unread), or most recent", "—"))
        rows.append(("ctrl+p", "Command palette", "—"))
        return rows

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for bid, _, action, text, _ in KEYS:
            if bid != "quit":  # Textual lists its own Quit; Help is here for terminals that take F1
                yield SystemCommand(
                    text,
                    f"{PALETTE_HELP.get(bid, text)} · {self._key_for(bid)}",
                    lambda action=action: self.run_action(action),
                )
        yield SystemCommand(
            "Cancel all background work",
            "Stop every reply and tool call of the sessions not on screen (partial replies are kept)",
            lambda: self.run_action("cancel_background"),
        )
        if self.current is not None and self.current in self.sidebar.sessions:
            pinned = self.sidebar.sessions[self.current].pinned
            yield SystemCommand(
                "Unpin this session" if pinned else "Pin this session",
                "Keep it at the top of the sidebar" if not pinned else "Back among the others, most recent first",
                lambda: self.run_action(f"pin({not pinned})"),
            )
        if self.current is not None and (listed := self.sidebar.sessions.get(self.current)) is not None:
            if listed.context_from is not None:
                yield SystemCommand(
                    "Send every turn again",
                    "The turns dropped to fit the model's context are sent again from the next message",
                    lambda: self.run_action("send_every_turn"),
                )
        if self.current is not None:
            yield SystemCommand(
                "Archive this session",
                "Out of the sidebar; search finds it, a new message or “Archived sessions…” brings it back",
                lambda: self.run_action("archive"),
            )
        yield SystemCommand(
            "Archived sessions…", "The sessions put away: Enter brings one back", lambda: self.run_action("archived")
        )
        times = self.chat.times
        yield SystemCommand(
            "Hide message times" if times else "Show message times",
            "When each message was written, on its box (config: show_times)",
            lambda: self.run_action(f"show_times({not times})"),
        )
        shown = self.show_reasoning
        yield SystemCommand(
            "Fold thinking in every reply" if shown else "Show thinking in every reply",
            "The models' thinking in one line per reply"
            if shown
            else "The models' thinking open in every reply (config: show_reasoning)",
            lambda: self.run_action(f"show_all_reasoning({not shown})"),
        )


def setup_hint(config: Config) -> str:
    """What to do when the built-in default (no config file: a local Ollama) is not there,
    for the empty chat pane and a reply that could not connect; "" with a config file."""
    provider = config.providers.get(config.default_provider)
    if config.path is not None or provider is None or provider.kind != "ollama":
        return ""
    others = ", ".join(k for k in PROVIDER_KINDS if k not in ("ollama", "llamacpp"))
    return (
        f"No config file, so chatplex uses its built-in default: Ollama at {provider.base_url}, "
        f"model {provider.model}. Start Ollama (ollama serve, then ollama pull {provider.model}), "
        f"or run `chatplex config init` to write {config_path()} and set up another provider "
        f"there: {others}, or llamacpp for a local GGUF file."
    )


def run(config: Config) -> int:
    ChatplexApp(config).run()
    return 0
