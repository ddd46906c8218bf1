"""Entry points: `chatplex` opens the TUI; subcommands work headless on the same database."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from chatplex import admin, logs
from chatplex.admin import SESSION_REF, UsageError, for_stream, say
from chatplex.config import Config, ConfigError, load
from chatplex.core.coordinator import DEFAULT_TITLE, MAX_MESSAGE, Coordinator
from chatplex.core.db import StoreError
from chatplex.core.events import QueueStatsChanged, ReplyFinished
from chatplex.core.models import JobState, Session
from chatplex.core.text import visible
from chatplex.follow import Follow

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="chatplex",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Many LLM chats at once, in the terminal. With no command, opens the full-screen app.",
        epilog="examples:\n"
        '  chatplex send "summarise RFC 9110 in one line"\n'
        '  echo "translate: bonjour" | chatplex send --session 3 -\n'
        '  chatplex send --session notes "remember this"  # creates "notes" if absent\n'
        '  chatplex send --no-wait "long job" && chatplex worker --until-idle\n'
        "  chatplex export 3 --format json -o chat.json\n"
        "  chatplex doctor\n"
        "every command takes --json (export: --format json); bad input exits with code 2",
    )
    p.add_argument("--db", type=Path, help="database file (default: $CHATPLEX_DB or the user data dir)")
    p.add_argument("--config", type=Path, help="config.toml (default: $CHATPLEX_CONFIG or the user config dir)")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING… (default: $CHATPLEX_LOG or INFO)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("send", help="send a message and stream the reply to stdout")
    s.add_argument("text", help="the message, or - to read it from stdin")
    s.add_argument(
        "--session",
        metavar="REF",
        help="session id or title; a title no session has yet makes a new session "
        "with it (title:NAME when the title is all digits; default: a new session)",
    )
    s.add_argument("--title", help="title of the new session (without --session)")
    s.add_argument("--provider", help="provider name from config.toml (a new session only)")
    s.add_argument("--model", help="model name (a new session only)")
    s.add_argument("--system", help="system prompt (a new session only)")
    s.add_argument("--no-wait", action="store_true", help="queue the message and return at once")
    s.add_argument("--json", action="store_true", help="print the result as JSON")

    w = sub.add_parser("worker", help="run the workers without a UI until Ctrl+C / SIGTERM")
    w.add_argument("--workers", type=int, help="number of workers (default: from config)")
    w.add_argument("--until-idle", action="store_true", help="exit once no job is queued or running (in any process)")
    w.add_argument("--json", action="store_true", help="print a JSON summary of the replies done on exit")

    ls = sub.add_parser("sessions", help="list sessions with status, unread count and last activity")
    ls.add_argument("--json", action="store_true", help="print JSON for scripts")

    sh = sub.add_parser("show", help="print a session's transcript")
    sh.add_argument("session", help=SESSION_REF)
    sh.add_argument("--json", action="store_true")

    rm = sub.add_parser("rm", help="delete a session with its messages and jobs")
    rm.add_argument("session", help=SESSION_REF)
    rm.add_argument("--json", action="store_true")

    rn = sub.add_parser("rename", help="rename a session")
    rn.add_argument("session", help=SESSION_REF)
    rn.add_argument("title", help="the new title")
    rn.add_argument("--json", action="store_true")

    j = sub.add_parser("jobs", help="list jobs; `jobs stats|cancel ID|retry ID`")
    j.add_argument("--state", choices=[s.value for s in JobState], help="only jobs in this state")
    j.add_argument("--json", action="store_true")
    jsub = j.add_subparsers(dest="jobs_command", metavar="ACTION")
    js = jsub.add_parser("stats", help="counts per state and priority")
    js.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    for name, text in (("cancel", "cancel a queued or running job"), ("retry", "run a job's reply again")):
        ja = jsub.add_parser(name, help=text)
        ja.add_argument("id", help="job id (see `chatplex jobs`)")
        ja.add_argument("--json", action="store_true", default=argparse.SUPPRESS)

    admin.add_parsers(sub)
    return p


# arguments that name files: any bytes are a valid file name, so they are not checked
_PATH_ARGS = frozenset({"db", "config", "output", "file", "path"})
_ARG_NAMES = {"text": "the message", "title": "the title", "session": "the session"}


def check_utf8(args: argparse.Namespace) -> None:
    """Refuse text arguments that are not UTF-8. Python hands such argv bytes over as lone
    surrogates, which SQLite cannot store: a traceback, after `send` had made a session."""
    for key, value in vars(args).items():
        if isinstance(value, str) and key not in _PATH_ARGS:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as e:
                what = _ARG_NAMES.get(key, f"--{key.replace('_', '-')}")
                raise UsageError(f"{what} is not valid UTF-8 (at character {e.start + 1})") from e


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_utf8(args)
    except UsageError as e:
        say(str(e))
        return EXIT_USAGE
    if args.command == "config":  # works even when the config file is broken (path, init)
        try:
            return admin.cmd_config(args)
        except (UsageError, ConfigError) as e:
            say(str(e))
            return EXIT_USAGE
    try:
        config = load(args.config, args.db)
    except ConfigError as e:
        say(f"config: {e}")
        return EXIT_USAGE
    logs.setup(config.log_dir, args.log_level, secrets=config.secrets())
    if args.command not in (None, "doctor"):  # doctor lists them as checks; the app shows them
        for warning in config.warnings:
            say(f"warning: {warning}")
    if args.command is None:
        from chatplex.tui.app import run

        return run(config)
    try:
        return asyncio.run(COMMANDS[args.command](config, args))
    except (UsageError, StoreError, ConfigError) as e:
        say(str(e))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


async def _open(config: Config, **kw: object) -> Coordinator:
    return await Coordinator.open(config, **kw)


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
    if args.title is not None:
        if args.session is not None:
            raise UsageError("--title names a new session; with --session, the session is found (or made) by its title")
        new_title(args.title)
    if args.provider:
        config.provider(args.provider)  # unknown: refused before anything is written
    coord = await _open(config)
    follow: Follow | None = None
    try:
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
        follow = Follow(coord, session.id, args.json)
        code = await follow.run(text)
    finally:
        await coord.stop()  # a reply still running goes back to the queue, attempt not spent
    if follow and follow.signalled:
        say(f"stopped; the reply stays queued as job {follow.job_id} (`chatplex worker` or the app will generate it)")
    return code


async def cmd_worker(config: Config, args: argparse.Namespace) -> int:
    coord = await _open(config, workers=args.workers)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    done: dict[str, int] = {}

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
    try:  # whatever happens, close: aiosqlite's threads would keep the process alive
        await coord.start()
        print(
            f"chatplex worker: {coord.workers_total} workers on {config.db_path}; Ctrl+C stops",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()
    finally:
        await coord.stop()
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


def new_title(text: str) -> str:
    """A new session's title as the app keeps titles (whitespace collapsed), checked."""
    title = " ".join(text.split())
    if not title:
        raise UsageError("the session title is empty")
    if len(title) > admin.NAME_LIMIT:
        raise UsageError(f"the session title is too long ({len(title):,} characters; at most {admin.NAME_LIMIT:,})")
    return title


async def _send_target(coord: Coordinator, args: argparse.Namespace) -> Session:
    """The session `send` writes to. A title no session has makes one (so a script can say
    `--session notes` every time, like `tmux new -A`); an id that does not exist is an error,
    never a new session titled "3"."""
    if args.session is None:
        title = DEFAULT_TITLE if args.title is None else new_title(args.title)
    else:
        found = await coord.store.find_session(args.session)
        if found or admin.is_id(args.session):
            return admin.only_session(args.session, found)
        title = new_title(args.session.removeprefix("title:"))
    return await coord.create_session(
        title=title, provider=args.provider, model=args.model, system_prompt=args.system or ""
    )


async def _session(coord: Coordinator, ref: str) -> Session:
    return await admin.find_session(coord.store, ref)


def _out(args: argparse.Namespace, data: object, human: str) -> int:
    print(for_stream(json.dumps(data, ensure_ascii=False), is_json=True) if args.json else human)
    return 0


async def cmd_sessions(config: Config, args: argparse.Namespace) -> int:
    coord = await _open(config)
    try:
        sessions = await coord.sessions()
    finally:
        await coord.store.close()
    if args.json:
        return _out(args, [admin.session_json(s) for s in sessions], "")
    admin.table(
        ["id", "status", "unread", "last activity", "provider · model", "title"],
        [
            [
                str(s.id),
                s.status.value,
                str(s.unread or ""),
                admin.ago(s.updated_at),
                f"{s.provider} · {s.model}",
                s.title,
            ]
            for s in sessions
        ],
        empty="no sessions yet — `chatplex send TEXT` starts one",
    )
    return 0


async def cmd_show(config: Config, args: argparse.Namespace) -> int:
    coord = await _open(config)
    try:
        session = await _session(coord, args.session)
        messages = await coord.messages(session.id)
    finally:
        await coord.store.close()
    if args.json:
        return _out(
            args, {"session": admin.session_json(session), "messages": [admin.message_json(m) for m in messages]}, ""
        )
    print(admin.transcript(session, messages), end="")
    return 0


async def cmd_rm(config: Config, args: argparse.Namespace) -> int:
    coord = await _open(config)
    try:
        session = await _session(coord, args.session)
        await coord.delete_session(session.id)
    finally:
        await coord.store.close()
    return _out(args, {"deleted": session.id}, f"deleted session {session.id} ({visible(session.title)})")


async def cmd_rename(config: Config, args: argparse.Namespace) -> int:
    if not args.title.strip():
        raise UsageError("the new title is empty")
    coord = await _open(config)
    try:
        session = await coord.rename((await _session(coord, args.session)).id, args.title.strip())
    finally:
        await coord.store.close()
    return _out(args, admin.session_json(session), f"session {session.id} is now {visible(session.title)!r}")


def parse_job_id(text: str) -> int:
    """A job id is ASCII digits: int() also reads '١' as 1, which would act on job 1. An id
    past SQLite's integers cannot exist (0 is never used)."""
    if not (text.isascii() and text.isdigit()):
        raise UsageError(f"bad job id {text!r}: use a number from `chatplex jobs`")
    n = int(text)
    return n if n < 2**63 else 0


async def cmd_jobs(config: Config, args: argparse.Namespace) -> int:
    coord = await _open(config)
    try:
        if args.jobs_command == "stats":
            stats = await coord.stats(finished=True)
            rows = {f"{state.value}/{prio.name}": n for (state, prio), n in sorted(stats.counts.items())}
            human = "\n".join(f"{k:<20} {n:>7}" for k, n in rows.items()) or "no jobs"
            if stats.oldest_wait is not None:
                human += f"\noldest runnable job has waited {stats.oldest_wait:.1f}s"
            return _out(args, {"counts": rows, "oldest_wait": stats.oldest_wait}, human)
        if args.jobs_command in ("cancel", "retry"):
            job = await coord.store.get_job(parse_job_id(args.id))
            if job is None:
                raise UsageError(f"no job {args.id} (see `chatplex jobs`)")
            if args.jobs_command == "cancel":
                if job.state not in (JobState.QUEUED, JobState.RUNNING):
                    raise UsageError(f"job {job.id} is {job.state.value}; only queued or running jobs can be cancelled")
                await coord.cancel_job(job.id)
                return _out(args, {"cancelled": job.id}, f"cancelled job {job.id}")
            new = await coord.retry_job(job.id)
            if new is None:
                raise UsageError(f"job {job.id}'s reply is being generated right now")
            return _out(
                args,
                {"job": new.id, "session": new.session_id},
                f"queued job {new.id} to regenerate the reply (session {new.session_id})",
            )
        jobs = await coord.jobs(JobState(args.state) if args.state else None)
    finally:
        await coord.store.close()
    if args.json:
        return _out(args, [admin.job_json(j) for j in jobs], "")
    admin.table(
        ["id", "session", "prio", "state", "tries", "waited", "ran", "error"],
        [
            [
                str(j.id),
                str(j.session_id),
                j.priority.name,
                j.state.value,
                f"{j.attempts}/{j.max_attempts}",
                admin.span(j.created_at, j.started_at),
                admin.span(j.started_at, j.finished_at),
                admin.one_line(j.last_error or ""),
            ]
            for j in jobs
        ],
        empty="no jobs",
    )
    return 0


COMMANDS = {
    "send": cmd_send,
    "worker": cmd_worker,
    "sessions": cmd_sessions,
    "show": cmd_show,
    "rm": cmd_rm,
    "rename": cmd_rename,
    "jobs": cmd_jobs,
    **admin.COMMANDS,
}
