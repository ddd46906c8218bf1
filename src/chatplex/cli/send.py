"""Generating replies without the app: `send` (one message, its reply streamed to stdout)
and `worker` (the workers alone, until a signal or until the queue is empty)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from chatplex.cli.compare import cmd_compare
from chatplex.cli.follow import Follow
from chatplex.cli.output import UsageError, say
from chatplex.cli.refs import is_id, new_title, only_session
from chatplex.config import Config
from chatplex.core.coordinator import DEFAULT_TITLE, MAX_MESSAGE, Coordinator
from chatplex.core.events import QueueStatsChanged, ReplyFinished
from chatplex.core.models import JobState, Session


def read_message(arg: str) -> str:
    """The message from argv or stdin, checked before anything is written: a refused message
    must not leave a "New chat" session behind."""
    if arg == "-":
        if sys.stdin is None:
            raise UsageError("no stdin to read the message from")
        limit = 4 * MAX_MESSAGE  # UTF-8 takes at most 4 bytes a character; never read unbounded
        data = sys.stdin.buffer.read(limit + 1)
        if len(data) > limit:
            raise UsageError(f"the message on stdin is too long (at most {MAX_MESSAGE:,} characters)")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UsageError(
                f"the message on stdin is not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})"
            ) from e
    else:
        text = arg
    if not text.strip():
        raise UsageError("the message is empty")
    if len(text) > MAX_MESSAGE:
        raise UsageError(f"the message is too long ({len(text):,} characters; at most {MAX_MESSAGE:,})")
    return text


async def cmd_send(config: Config, args: argparse.Namespace) -> int:
    text = read_message(args.text)
    if args.models is not None:
        if args.session is not None or args.no_wait or args.provider or args.model:
            raise UsageError(
                "--models makes a session per model: it goes with --title and --system, not "
                "--session, --no-wait, --provider or --model"
            )
        return await cmd_compare(config, args, text)
    if args.title is not None:
        if args.session is not None:
            raise UsageError("--title names a new session; with --session, the session is found (or made) by its title")
        new_title(args.title)
    if args.provider:
        config.provider(args.provider)  # unknown: refused before anything is written
    follow: Follow | None = None
    # leaving the block stops the coordinator: a reply still running goes back to the queue,
    # attempt not spent
    async with await Coordinator.open(config) as coord:
        session = await _send_target(coord, args)
        # never coord.focus(): it re-ranks every session's jobs, and the app open on the same
        # database owns that (a send would demote the session the user looks at)
        if args.no_wait:  # queued LOW: nobody here is looking at it
            _, reply, job = await coord.send(session.id, text)
            print(
                json.dumps({"session": session.id, "job": job.id, "message": reply.id})
                if args.json
                else f"queued job {job.id} in session {session.id}"
            )
            return 0
        coord.focused = coord.only_session = session.id  # its reply is HIGH: someone waits for it
        coord.approve_all = args.approve_all
        follow = Follow(coord, session.id, args.json)
        code = await follow.run(text)
    if follow and follow.signalled:
        say(f"stopped; the reply stays queued as job {follow.job_id} (`chatplex worker` or the app will generate it)")
    return code


async def _send_target(coord: Coordinator, args: argparse.Namespace) -> Session:
    """The session `send` writes to. A title no session has makes one (so a script can say
    `--session notes` every time, like `tmux new -A`); an id that does not exist is an error,
    never a new session titled "3"."""
    if args.session is None:
        title = DEFAULT_TITLE if args.title is None else new_title(args.title)
    else:
        found = await coord.store.find_session(args.session)
        if found or is_id(args.session):
            return only_session(args.session, found)
        title = new_title(args.session.removeprefix("title:"))
    return await coord.create_session(
        title=title, provider=args.provider, model=args.model, system_prompt=args.system or ""
    )


async def cmd_worker(config: Config, args: argparse.Namespace) -> int:
    done: dict[str, int] = {}
    # whatever happens, leaving the block closes: aiosqlite's threads would keep the process alive
    async with await Coordinator.open(config, workers=args.workers) as coord:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def on_event(event: object) -> None:
            if isinstance(event, ReplyFinished):  # what this worker got done, for the summary
                done[event.message.state.value] = done.get(event.message.state.value, 0) + 1
            elif (
                args.until_idle
                and isinstance(event, QueueStatsChanged)
                and event.workers_busy == 0
                and event.stats.count(JobState.QUEUED) + event.stats.count(JobState.RUNNING) == 0
            ):
                stop.set()

        coord.bus.subscribe(on_event)
        await coord.start()
        print(
            f"chatplex worker: {coord.workers_total} workers on {config.db_path}; Ctrl+C stops",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()
    summary = {
        "complete": done.get("complete", 0),
        "error": done.get("error", 0),
        "interrupted": done.get("interrupted", 0),
    }
    print(
        json.dumps(summary)
        if args.json
        else f"chatplex worker: {summary['complete']} replies done, {summary['error']} failed, "
        f"{summary['interrupted']} interrupted (resumable)",
        file=sys.stdout if args.json else sys.stderr,
    )
    return 0


COMMANDS = {"send": cmd_send, "worker": cmd_worker}
