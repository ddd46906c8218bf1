"""Entry points: `chatplex` opens the TUI; subcommands work headless on the same database.

This module reads the command line and dispatches; each command lives with its kind:
send.py (send, worker; follow.py prints a reply as it comes), sessions.py, jobs.py,
transfer.py (export, import), admin.py (prune, vacuum, backup, doctor, config), tools.py
(the MCP servers and their tools); output.py
is what any of them writes to a terminal, a pipe or a file."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from chatplex import logs
from chatplex.cli import admin, approvals, jobs, send, sessions, tools, transfer
from chatplex.cli.output import UsageError, say
from chatplex.cli.refs import SESSION_REF
from chatplex.config import Config, ConfigError, load
from chatplex.core.db import StoreError
from chatplex.core.models import JobState

EXIT_USAGE = 2

Command = Callable[[Config, argparse.Namespace], Coroutine[Any, Any, int]]
COMMANDS: dict[str, Command] = {
    **send.COMMANDS,
    **sessions.COMMANDS,
    **jobs.COMMANDS,
    **transfer.COMMANDS,
    **admin.COMMANDS,
    **tools.COMMANDS,
    **approvals.COMMANDS,
}


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
    s.add_argument(
        "--models",
        metavar="A,B,…",
        help="ask several models at once, a session each: provider names from config.toml or provider:model",
    )
    s.add_argument(
        "--approve-all",
        action="store_true",
        help="run the tool calls whose policy asks without asking (trusted scripts; deny stays deny)",
    )
    s.add_argument("--json", action="store_true", help="print the result as JSON")

    w = sub.add_parser("worker", help="run the workers without a UI until Ctrl+C / SIGTERM")
    w.add_argument("--workers", type=int, help="number of workers (default: from config)")
    w.add_argument("--until-idle", action="store_true", help="exit once no job is queued or running (in any process)")
    w.add_argument("--json", action="store_true", help="print a JSON summary of the replies done on exit")

    ls = sub.add_parser("sessions", help="list sessions with status, unread count and last activity")
    ls.add_argument("--archived", action="store_true", help="the archived sessions instead")
    ls.add_argument("--json", action="store_true", help="print JSON for scripts")

    sh = sub.add_parser("show", help="print a session's transcript")
    sh.add_argument("session", help=SESSION_REF)
    sh.add_argument("--json", action="store_true")

    rm = sub.add_parser("rm", help="delete a session with its messages and jobs")
    rm.add_argument("session", help=SESSION_REF)
    rm.add_argument("--json", action="store_true")

    fk = sub.add_parser("fork", help="a new session with a session's history (up to a message); the original stays")
    fk.add_argument("session", help=SESSION_REF)
    fk.add_argument("--at", metavar="MESSAGE", help="the last message copied (an id from `show S --json`)")
    fk.add_argument("--json", action="store_true")

    ar = sub.add_parser("archive", help="put a session away: out of the app's sidebar, still searchable")
    ar.add_argument("session", help=SESSION_REF)
    ar.add_argument("--undo", action="store_true", help="bring it back (a new message does too)")
    ar.add_argument("--json", action="store_true")

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

    _add_admin_parsers(sub)
    return p


def _add_admin_parsers(sub: Any) -> None:  # argparse names its subparsers type only privately
    p = sub.add_parser("prune", help="delete finished jobs older than a duration (messages stay)")
    p.add_argument("--older-than", required=True, metavar="DURATION", help="e.g. 30d, 12h, 15m")
    p.add_argument(
        "--messages", action="store_true", help="also delete sessions (with their messages) idle for that long"
    )
    p.add_argument("--json", action="store_true")

    v = sub.add_parser("vacuum", help="compact the database file")
    v.add_argument("--json", action="store_true")

    b = sub.add_parser("backup", help="copy the database safely, even while chatplex runs")
    b.add_argument("path", help="target file, or a folder for a dated file")
    b.add_argument("--force", action="store_true", help="replace an existing file")
    b.add_argument("--json", action="store_true")

    ap = sub.add_parser("approvals", help="the tool calls waiting for your yes or no, in every session")
    ap.add_argument("--json", action="store_true")
    ok = sub.add_parser("approve", help="let a waiting tool call run (job id from `chatplex approvals`)")
    ok.add_argument("id")
    ok.add_argument(
        "--always", action="store_true", help="and run that tool without asking in that session (undo: ask-again)"
    )
    ok.add_argument("--json", action="store_true")
    again = sub.add_parser("ask-again", help="take back `approve --always`: the tool asks before it runs again")
    again.add_argument("tool", help="the tool's name, as `chatplex approvals` lists it")
    again.add_argument("session", nargs="?", help=SESSION_REF + " (default: every session)")
    again.add_argument("--json", action="store_true")
    no = sub.add_parser("deny", help="refuse a waiting tool call: the model gets an error result")
    no.add_argument("id")
    no.add_argument("--reason", help="told to the model with the refusal")
    no.add_argument("--json", action="store_true")

    t = sub.add_parser("tools", help="the MCP servers in config.toml: do they start, which tools, ask/allow/deny")
    t.add_argument("--json", action="store_true")
    t.add_argument("--session", help=SESSION_REF + ": show (or with --use set) the servers it uses")
    t.add_argument(
        "--use", metavar="NAMES", help="the servers the session uses: a,b · none · default (those config.toml enables)"
    )

    d = sub.add_parser("doctor", help="check config, database and every provider, one line each")
    d.add_argument("--json", action="store_true")

    e = sub.add_parser("export", help="a session as Markdown (readable on GitHub) or JSON (re-importable)")
    e.add_argument("session", help=SESSION_REF)
    e.add_argument("--format", choices=["md", "json"], default="md")
    e.add_argument("-o", "--output", help="file to write (default: stdout)")

    i = sub.add_parser("import", help="import a session exported with --format json")
    i.add_argument("file")
    i.add_argument("--json", action="store_true")

    c = sub.add_parser("config", help="config path | show (keys masked) | init (a commented starter)")
    c.add_argument("config_command", nargs="?", choices=["path", "show", "init"], metavar="path|show|init")
    c.add_argument("--force", action="store_true", help="init: replace an existing file")
    c.add_argument("--json", action="store_true")


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
