"""Entry points: `chatplex` opens the TUI; subcommands work headless on the same database."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from chatplex import logs
from chatplex.config import Config, ConfigError, load
from chatplex.core.coordinator import Coordinator
from chatplex.core.events import ExternalChange, QueueStatsChanged, ReplyDelta, ReplyFinished
from chatplex.core.models import JobState, MessageState
from chatplex.core.store import StoreError

EXIT_FAIL, EXIT_USAGE = 1, 2


class UsageError(Exception):
    """Bad input from the command line: one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chatplex", description="Many LLM chats at once, in the terminal. "
                                "With no command, opens the full-screen app.")
    p.add_argument("--db", type=Path, help="database file (default: $CHATPLEX_DB or the user data dir)")
    p.add_argument("--config", type=Path, help="config.toml (default: $CHATPLEX_CONFIG or the user config dir)")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING… (default: $CHATPLEX_LOG or INFO)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("send", help="send a message and stream the reply to stdout")
    s.add_argument("text", help="the message, or - to read it from stdin")
    s.add_argument("--session", help="session id or title (default: a new session)")
    s.add_argument("--provider", help="provider name from config.toml (new sessions)")
    s.add_argument("--model", help="model name (new sessions)")
    s.add_argument("--system", help="system prompt (new sessions)")
    s.add_argument("--no-wait", action="store_true", help="queue the message and return at once")
    s.add_argument("--json", action="store_true", help="print the result as JSON")

    w = sub.add_parser("worker", help="run the workers without a UI until Ctrl+C / SIGTERM")
    w.add_argument("--workers", type=int, help="number of workers (default: from config)")
    w.add_argument("--until-idle", action="store_true",
                   help="exit once no job is queued or running (in any process)")

    ls = sub.add_parser("sessions", help="list sessions")
    ls.add_argument("--json", action="store_true")

    j = sub.add_parser("jobs", help="list jobs")
    j.add_argument("--state", choices=[s.value for s in JobState])
    j.add_argument("--json", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load(args.config, args.db)
    except ConfigError as e:
        print(f"chatplex: config: {e}", file=sys.stderr)
        return EXIT_USAGE
    logs.setup(config.log_dir, args.log_level)
    if args.command is None:
        from chatplex.tui.app import run

        return run(config)
    try:
        return asyncio.run(COMMANDS[args.command](config, args))
    except (UsageError, StoreError, ConfigError) as e:
        print(f"chatplex: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


async def _open(config: Config, **kw: object) -> Coordinator:
    return await Coordinator.open(config, **kw)


async def cmd_send(config: Config, args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == "-" else args.text
    if not text.strip():
        raise UsageError("the message is empty")
    coord = await _open(config)
    try:
        if args.session:
            session = await coord.store.find_session(args.session)
            if session is None:
                raise UsageError(f"no session {args.session!r} (see `chatplex sessions`)")
        else:
            if args.provider:
                config.provider(args.provider)
            session = await coord.create_session(provider=args.provider, model=args.model,
                                                 system_prompt=args.system or "")
        if args.no_wait:
            await coord.focus(None)
            _, reply, job = await coord.send(session.id, text)
            print(json.dumps({"session": session.id, "job": job.id, "message": reply.id}) if args.json
                  else f"queued job {job.id} in session {session.id}")
            return 0
        await coord.focus(session.id)
        return await _follow_reply(coord, session.id, text, args.json)
    finally:
        await coord.stop()


async def _follow_reply(coord: Coordinator, session_id: int, text: str, as_json: bool) -> int:
    """Run workers and print the reply as it streams, whichever process generates it."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    printed = 0
    reply_id = -1
    final = None

    def write(chunk: str) -> None:
        nonlocal printed
        printed += len(chunk)
        if not as_json:
            sys.stdout.write(chunk)
            sys.stdout.flush()

    async def reload() -> None:  # another process may be the one streaming our reply
        nonlocal final
        message = await coord.store.get_message(reply_id)
        if message is None:
            return
        if message.state is MessageState.STREAMING and len(message.content) > printed:
            write(message.content[printed:])
        if message.state in (MessageState.COMPLETE, MessageState.ERROR) and not done.done():
            final = message
            done.set_result(None)

    def on_event(event: object) -> None:
        nonlocal final
        if isinstance(event, ReplyDelta) and event.message_id == reply_id:
            write(event.text)
        elif isinstance(event, ReplyFinished) and event.message.id == reply_id:
            if event.message.state in (MessageState.COMPLETE, MessageState.ERROR) and not done.done():
                final = event.message
                done.set_result(None)
        elif isinstance(event, ExternalChange):
            asyncio.ensure_future(reload())

    coord.bus.subscribe(on_event)
    _, reply, _ = await coord.send(session_id, text)
    reply_id = reply.id
    await coord.start()
    await done
    assert final is not None
    if final.state is MessageState.COMPLETE and len(final.content) > printed:
        write(final.content[printed:])
    if as_json:
        print(json.dumps({"session": session_id, "message": final.id, "state": final.state.value,
                          "content": final.content, "error": final.error}))
    elif final.state is MessageState.COMPLETE:
        sys.stdout.write("\n")
    if final.state is MessageState.ERROR:
        print(f"chatplex: {final.error}", file=sys.stderr)
        return EXIT_FAIL
    return 0


async def cmd_worker(config: Config, args: argparse.Namespace) -> int:
    coord = await _open(config, workers=args.workers)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.until_idle:
        def on_event(event: object) -> None:
            if (isinstance(event, QueueStatsChanged) and event.workers_busy == 0
                    and event.stats.count(JobState.QUEUED) + event.stats.count(JobState.RUNNING) == 0):
                stop.set()

        coord.bus.subscribe(on_event)
    await coord.start()
    print(f"chatplex worker: {coord.workers_total} workers on {config.db_path}; Ctrl+C stops",
          file=sys.stderr, flush=True)
    await stop.wait()
    await coord.stop()
    return 0


async def cmd_sessions(config: Config, args: argparse.Namespace) -> int:
    coord = await _open(config)
    try:
        sessions = await coord.sessions()
    finally:
        await coord.store.close()
    if args.json:
        print(json.dumps([{"id": s.id, "title": s.title, "status": s.status.value, "unread": s.unread,
                           "provider": s.provider, "model": s.model, "updated_at": s.updated_at}
                          for s in sessions]))
    else:
        for s in sessions:
            print(f"{s.id:>5}  {s.status.value:<11} {s.unread:>3}  {s.title}")
    return 0


async def cmd_jobs(config: Config, args: argparse.Namespace) -> int:
    coord = await _open(config)
    try:
        jobs = await coord.jobs(JobState(args.state) if args.state else None)
    finally:
        await coord.store.close()
    if args.json:
        print(json.dumps([{"id": j.id, "session": j.session_id, "state": j.state.value,
                           "priority": j.priority.name, "attempts": j.attempts,
                           "max_attempts": j.max_attempts, "last_error": j.last_error} for j in jobs]))
    else:
        for j in jobs:
            print(f"{j.id:>6}  {j.session_id:>5}  {j.priority.name:<4} {j.state.value:<9} "
                  f"{j.attempts}/{j.max_attempts}  {j.last_error or ''}")
    return 0


COMMANDS = {"send": cmd_send, "worker": cmd_worker, "sessions": cmd_sessions, "jobs": cmd_jobs}
