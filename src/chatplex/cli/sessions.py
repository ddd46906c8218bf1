"""Looking at and tidying sessions: `sessions`, `show`, `rm`, `rename`, `fork`, `archive`."""

from __future__ import annotations

import argparse

from chatplex.cli.output import UsageError, ago, emit, table
from chatplex.cli.refs import find_session
from chatplex.config import Config
from chatplex.core.coordinator import Coordinator
from chatplex.core.export import message_record, session_record, to_text
from chatplex.core.text import visible


async def cmd_sessions(config: Config, args: argparse.Namespace) -> int:
    async with await Coordinator.open(config) as coord:
        sessions = await coord.sessions(archived=args.archived)
    if args.json:
        return emit(True, [session_record(s) for s in sessions], "")
    table(
        ["id", "status", "unread", "last activity", "provider · model", "title"],
        [
            [
                str(s.id),
                s.status.value,
                str(s.unread or ""),
                ago(s.updated_at),
                f"{s.provider} · {s.model}",
                s.title,
            ]
            for s in sessions
        ],
        empty="no archived session" if args.archived else "no sessions yet — `chatplex send TEXT` starts one",
    )
    return 0


async def cmd_show(config: Config, args: argparse.Namespace) -> int:
    async with await Coordinator.open(config) as coord:
        session = await find_session(coord.store, args.session)
        messages = await coord.messages(session.id)
    if args.json:
        records = [message_record(m) for m in messages]
        return emit(True, {"session": session_record(session), "messages": records}, "")
    print(to_text(session, messages), end="")
    return 0


async def cmd_rm(config: Config, args: argparse.Namespace) -> int:
    async with await Coordinator.open(config) as coord:
        session = await find_session(coord.store, args.session)
        await coord.delete_session(session.id)
    human = f"deleted session {session.id} ({visible(session.title)})"
    return emit(args.json, {"deleted": session.id}, human)


async def cmd_archive(config: Config, args: argparse.Namespace) -> int:
    async with await Coordinator.open(config) as coord:
        found = await find_session(coord.store, args.session)
        session = await coord.update_session(found.id, archived=not args.undo)
    done = "back from the archive" if args.undo else "archived (`chatplex archive S --undo` brings it back)"
    return emit(args.json, session_record(session), f"session {session.id} ({visible(session.title)}) {done}")


async def cmd_rename(config: Config, args: argparse.Namespace) -> int:
    if not args.title.strip():
        raise UsageError("the new title is empty")
    async with await Coordinator.open(config) as coord:
        found = await find_session(coord.store, args.session)
        session = await coord.rename(found.id, args.title.strip())
    human = f"session {session.id} is now {visible(session.title)!r}"
    return emit(args.json, session_record(session), human)


async def cmd_fork(config: Config, args: argparse.Namespace) -> int:
    """A new session with S's history up to message --at (all of it without); S is untouched."""
    at = None
    if args.at is not None:
        if not (args.at.isascii() and args.at.isdigit()):
            raise UsageError(f"bad message id {args.at!r}: use an id from `chatplex show S --json`")
        at = int(args.at)
    async with await Coordinator.open(config) as coord:
        found = await find_session(coord.store, args.session)
        try:
            fork = await coord.fork(found.id, at)
        except KeyError as e:
            message = f"session {found.id} has no message {args.at} (see `chatplex show {found.id} --json`)"
            raise UsageError(message) from e
        copied = len(await coord.messages(fork.id))
    human = f"session {fork.id} {visible(fork.title)!r}: {copied} messages of session {found.id}" + (
        f" up to message {at}" if at is not None else ""
    )
    return emit(args.json, session_record(fork), human)


COMMANDS = {
    "sessions": cmd_sessions,
    "show": cmd_show,
    "rm": cmd_rm,
    "rename": cmd_rename,
    "fork": cmd_fork,
    "archive": cmd_archive,
}
