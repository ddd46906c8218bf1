"""`chatplex send` waiting for its reply: what it prints, and when it is over."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from chatplex.cli.output import is_terminal, say
from chatplex.core.coordinator import Coordinator
from chatplex.core.events import (
    ExternalChange,
    JobChanged,
    MessageAdded,
    ReplyDelta,
    ReplyFinished,
    ReplyStarted,
    SessionDeleted,
)
from chatplex.core.models import JobState, Message, MessageState, Role
from chatplex.core.text import visible

EXIT_FAIL = 1
EXIT_APPROVAL = 3  # the turn waits for the user's approval of a tool call


class Follow:
    """Prints one reply as it is generated, by this process's workers or another's, and
    knows when it is over: done, failed, cancelled or deleted elsewhere, or a signal.

    On a terminal the reply streams, and a retry starts it again on a new line; to a pipe
    or a file it is held and the stored reply is printed once, exactly. The database rows
    decide how it ended: a job cancelled elsewhere while this process streams it ends with
    no ReplyFinished (its worker only finds the lease lost)."""

    def __init__(self, coord: Coordinator, session_id: int, as_json: bool):
        self.coord = coord
        self.session_id = session_id
        self.as_json = as_json
        self.live = not as_json and is_terminal(sys.stdout)
        self.shown: list[str] = []  # the current attempt's text on the terminal
        self.shown_length = 0
        self.reply_id = self.job_id = -1
        self.said: str | None = None  # the last retry reason printed
        self.signalled = 0  # the exit code a signal asked for
        self.wake = asyncio.Event()
        self.steps_told: set[int] = set()  # model steps whose tool calls were announced

    async def run(self, text: str) -> int:
        loop = asyncio.get_running_loop()
        for sig, exit_code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
            loop.add_signal_handler(sig, self._on_signal, exit_code)
        self.coord.bus.subscribe(self._on_event)
        _, reply, job = await self.coord.send(self.session_id, text)
        self.reply_id, self.job_id = reply.id, job.id
        await self.coord.start()
        while True:
            await self.wake.wait()
            self.wake.clear()
            if self.signalled:
                self._end_line()
                return self.signalled
            result = await self._check()
            if result is not None:
                return result

    def _on_signal(self, code: int) -> None:
        self.signalled = self.signalled or code
        self.wake.set()

    def _on_event(self, event: object) -> None:
        if isinstance(event, ReplyDelta) and event.message_id == self.reply_id:
            skip = self.shown_length - event.offset  # offsets restart at 0 with each attempt
            if self.live and skip < 0:  # text before it is not shown yet (a continued reply)
                self.wake.set()
            elif self.live and skip < len(event.text):
                self._write(event.text[skip:])
        elif isinstance(event, ReplyStarted) and event.message_id == self.reply_id:
            if self.shown_length:  # a new attempt no retry reason announced
                self._restart(None)
            if event.kept:  # it continues a partial reply: show that first
                self.wake.set()
        elif isinstance(event, ReplyFinished) and event.message.id == self.reply_id:
            message = event.message
            if message.state is MessageState.INTERRUPTED and message.error and not self.signalled:
                self._retrying(message.error)  # now: the row is reset when the retry starts
            self.wake.set()
        elif isinstance(event, ExternalChange | SessionDeleted):
            self.wake.set()
        elif isinstance(event, MessageAdded | JobChanged) and self.session_id in (
            getattr(getattr(event, "message", None), "session_id", None),
            getattr(getattr(event, "job", None), "session_id", None),
        ):  # an agent turn's next step, or a call held for approval
            self.wake.set()

    async def _check(self) -> int | None:
        """Look at the rows: the exit code once the reply is over, else None."""
        store = self.coord.store
        message = await store.get_message(self.reply_id)
        job = await store.get_job(message.job_id or self.job_id) if message else None
        if message is None or job is None:
            self._end_line()
            say(f"session {self.session_id} was deleted; its reply is gone")
            return EXIT_FAIL
        if message.state is MessageState.COMPLETE and message.tool_calls:
            return await self._agent_step(message)
        if message.state in (MessageState.COMPLETE, MessageState.ERROR):
            return self._finish(message)
        if job.state is JobState.CANCELLED:
            self._end_line()
            say(f"the reply was cancelled (job {job.id})")
            return EXIT_FAIL
        waiting = job.state is JobState.QUEUED and message.state is MessageState.INTERRUPTED
        if waiting and message.error:
            self._retrying(message.error)  # scheduled by another process
        elif self.live and job.state is JobState.RUNNING:
            live = self.coord.live_text(self.reply_id)  # None: another process streams it
            self._catch_up(message.content if live is None else live)
        return None

    async def _agent_step(self, message: Message) -> int | None:
        """The reply was a model step that called tools: say which, then follow the turn's
        next model step; a call that waits for approval ends the wait (exit code 3), saying
        how to answer it."""
        if message.id not in self.steps_told:
            self.steps_told.add(message.id)
            self._end_line()
            for call in message.tool_calls:
                say(f"⚙ {visible(call.name)}({visible(' '.join(call.arguments.split()))[:200]})")
        waiting = await self.coord.approvals(self.session_id)
        if waiting:
            for a in waiting:
                say(
                    f"job {a.job.id}: {visible(a.call.name)} waits for approval ({visible(a.reason)}): "
                    f"chatplex approve {a.job.id} [--always] | chatplex deny {a.job.id} [--reason …]; "
                    "then the app or `chatplex worker --until-idle` goes on with the turn"
                )
            return EXIT_APPROVAL
        later = [
            m
            for m in await self.coord.store.messages(self.session_id, limit=20)
            if m.id > message.id and m.role is Role.ASSISTANT
        ]
        if later:  # the next model step: follow it as the reply
            self.reply_id, self.job_id = later[0].id, later[0].job_id or -1
            self.wake.set()
        return None

    def _finish(self, message: Message) -> int:
        if self.as_json:
            print(
                json.dumps(
                    {
                        "session": self.session_id,
                        "message": message.id,
                        "state": message.state.value,
                        "content": message.content,
                        "error": message.error,
                    }
                )
            )
        elif message.state is MessageState.COMPLETE:
            if self.live:
                self._catch_up(message.content)
                sys.stdout.write("\n")
            else:
                sys.stdout.write(message.content + "\n")  # the stored bytes, once
            sys.stdout.flush()
            if message.error:  # it ended well, and says something of itself (a tool server missing)
                say(message.error)
        if message.state is MessageState.ERROR:
            self._end_line()
            say(message.error or "the reply failed")
            return EXIT_FAIL
        return 0

    def _write(self, text: str) -> None:
        sys.stdout.write(visible(text))
        sys.stdout.flush()
        self.shown.append(text)
        self.shown_length += len(text)

    def _catch_up(self, content: str) -> None:
        """Show `content`, the attempt's text so far: the rest of it, or all of it again.

        A row read before the deltas already shown were stored is a prefix of them: stale,
        not a new attempt (those announce themselves with ReplyStarted or a retry reason)."""
        shown = "".join(self.shown)
        if shown.startswith(content):
            return
        if not content.startswith(shown):
            self._restart(None)
        if len(content) > self.shown_length:
            self._write(content[self.shown_length :])

    def _end_line(self) -> None:
        if self.live and self.shown_length:
            sys.stdout.write("\n")
            sys.stdout.flush()
        self.shown, self.shown_length = [], 0

    def _restart(self, reason: str | None) -> None:
        self._end_line()
        if self.live:
            say(f"{reason}; the reply starts again" if reason else "the reply starts again")

    def _retrying(self, reason: str) -> None:
        """Say why the reply is tried again, once per retry, as soon as it is scheduled."""
        if reason == self.said:
            return
        self.said = reason
        if self.live:
            self._restart(reason)
        else:
            say(reason)
