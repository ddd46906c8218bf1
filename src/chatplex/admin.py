"""Maintenance and data portability subcommands: prune, vacuum, backup, doctor, export,
import, config. Each prints a human table or line by default and JSON with --json; bad
input is one line on stderr and exit code 2, and nothing is half-written."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from chatplex.config import KINDS, Config, ConfigError, api_key, config_path, load
from chatplex.core.coordinator import MAX_MESSAGE
from chatplex.core.db import SCHEMA_VERSION, Store, StoreError
from chatplex.core.export import FORMAT, to_json, to_markdown
from chatplex.core.models import Job, Message, MessageState, Role, Session
from chatplex.core.text import json_visible, visible
from chatplex.providers.base import ProviderError
from chatplex.redact import redact


class UsageError(Exception):
    """Bad input from the command line: one line, exit code 2."""


# ---------------------------------------------------------------- output helpers
def is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no stream, or a closed one
        return False


def for_stream(text: str, stream: Any = None, *, is_json: bool = False) -> str:
    """`text` as it may be written to `stream` (default stdout): on a terminal, with no
    escape sequence or bidi control (JSON keeps its meaning: they become \\uXXXX escapes);
    pipes and files get the exact text, which scripts and re-imports rely on."""
    if not is_terminal(sys.stdout if stream is None else stream):
        return text
    return json_visible(text) if is_json else visible(text)


def say(text: str) -> None:
    """One line on stderr; it may quote a server or the user, so it is neutralised too."""
    print("chatplex: " + for_stream(text, sys.stderr), file=sys.stderr, flush=True)


def table(columns: list[str], rows: list[list[str]], empty: str) -> None:
    if not rows:
        print(empty)
        return
    t = Table(*columns, box=None, pad_edge=False, header_style="bold")
    for row in rows:
        t.add_row(*(Text(visible(cell)) for cell in row))  # Text: never parsed as markup
    Console(highlight=False).print(t)


def ago(ts: float | None) -> str:
    if not ts:
        return ""
    s = max(0.0, time.time() - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s / size:.0f}{unit} ago"
    return f"{s:.0f}s ago"


def span(start: float | None, end: float | None) -> str:
    if not start:
        return ""
    return f"{(end or time.time()) - start:.1f}s"


def one_line(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def session_json(s: Session) -> dict[str, Any]:
    return {
        "id": s.id,
        "title": s.title,
        "status": s.status.value,
        "unread": s.unread,
        "provider": s.provider,
        "model": s.model,
        "system_prompt": s.system_prompt,
        "preview": s.preview,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }


def message_json(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "role": m.role.value,
        "content": m.content,
        "state": m.state.value,
        "error": m.error,
        "created_at": m.created_at,
        "finish_reason": m.finish_reason,
        "model": m.model,
    }


def job_json(j: Job) -> dict[str, Any]:
    return {
        "id": j.id,
        "session": j.session_id,
        "message": j.message_id,
        "state": j.state.value,
        "priority": j.priority.name,
        "attempts": j.attempts,
        "max_attempts": j.max_attempts,
        "run_after": j.run_after,
        "created_at": j.created_at,
        "started_at": j.started_at,
        "finished_at": j.finished_at,
        "last_error": j.last_error,
    }


def transcript(session: Session, messages: list[Message]) -> str:
    lines = [f"# {visible(session.title)}  ({session.provider} · {session.model})", ""]
    if session.system_prompt:
        lines += ["[system]", visible(session.system_prompt), ""]
    for m in messages:
        who = "you" if m.role is Role.USER else (m.model or session.model) if m.role is Role.ASSISTANT else m.role.value
        lines += [f"[{who}]", visible(m.content)]
        if m.state is MessageState.ERROR:
            lines.append(f"(failed: {visible(m.error or '')})")
        elif m.state is MessageState.INTERRUPTED:
            lines.append(f"(interrupted: {visible(m.error or '')})")
        elif m.state is MessageState.STREAMING:
            lines.append("(still generating)")
        lines.append("")
    return "\n".join(lines)


def parse_duration(text: str) -> float:
    """'30d', '12h', '15m', '90s', '2w' -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not match:
        raise UsageError(f"bad duration {text!r}: use a number and a unit, e.g. 30d, 12h, 15m, 90s, 2w")
    return float(match[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match[2]]


def write_atomically(path: Path, data: str) -> None:
    """Write `data` to `path` via a temporary file: a failure leaves no partial file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(data, encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from e


async def _store(config: Config) -> Store:
    return await Store.open(config.db_path)


def is_id(ref: str) -> bool:
    """Whether a session reference is an id (see Store.find_session)."""
    return ref.isascii() and ref.isdigit()


def only_session(ref: str, found: list[Session]) -> Session:
    """The one session `ref` names; two sessions with its title are an error listing them
    (never a silent pick: `rm notes` must not delete whichever was used last)."""
    if not found:
        hint = f"; title:{ref} names a session with that title" if is_id(ref) else ""
        raise UsageError(f"no session {ref!r} (see `chatplex sessions`{hint})")
    if len(found) > 1:
        shown = ", ".join(f"{s.id} {s.title!r} (last activity {ago(s.updated_at)})" for s in found[:5])
        more = f", and {len(found) - 5} more (see `chatplex sessions`)" if len(found) > 5 else ""
        raise UsageError(
            f"{len(found)} sessions are titled {ref.removeprefix('title:')!r}; name one by its id: {shown}{more}"
        )
    return found[0]


async def find_session(store: Store, ref: str) -> Session:
    return only_session(ref, await store.find_session(ref))


# ---------------------------------------------------------------- commands
async def cmd_prune(config: Config, args: argparse.Namespace) -> int:
    seconds = parse_duration(args.older_than)
    store = await _store(config)
    try:
        jobs = await store.prune(seconds)
        sessions = await store.prune_sessions(seconds) if args.messages else 0
    finally:
        await store.close()
    human = f"deleted {jobs} finished job{'s' * (jobs != 1)} older than {args.older_than}"
    if args.messages:
        human += f" and {sessions} session{'s' * (sessions != 1)} (with their messages) idle that long"
    print(json.dumps({"jobs": jobs, "sessions": sessions}) if args.json else human)
    return 0


async def cmd_vacuum(config: Config, args: argparse.Namespace) -> int:
    store = await _store(config)
    try:
        before, after = await store.vacuum()
    finally:
        await store.close()
    print(
        json.dumps({"before": before, "after": after})
        if args.json
        else f"vacuumed {config.db_path}: {before / 1e6:.2f} MB -> {after / 1e6:.2f} MB"
    )
    return 0


async def cmd_backup(config: Config, args: argparse.Namespace) -> int:
    target = Path(args.path).expanduser()
    if target.is_dir():
        target = target / f"chatplex-{dt.datetime.now():%Y%m%d-%H%M%S}.db"
    if not target.parent.is_dir():
        raise UsageError(f"cannot write {target}: the folder {target.parent} does not exist")
    if target.exists() and not args.force:
        raise UsageError(f"{target} exists; pass --force to replace it")
    store = await _store(config)
    try:
        await store.backup(target)
    finally:
        await store.close()
    print(
        json.dumps({"backup": str(target), "bytes": target.stat().st_size})
        if args.json
        else f"backed up {config.db_path} to {target} ({target.stat().st_size / 1e6:.2f} MB)"
    )
    return 0


async def cmd_export(config: Config, args: argparse.Namespace) -> int:
    store = await _store(config)
    try:
        session = await find_session(store, args.session)
        messages = await store.messages(session.id)
    finally:
        await store.close()
    text = to_json(session, messages) if args.format == "json" else to_markdown(session, messages)
    if args.output and args.output != "-":
        write_atomically(Path(args.output).expanduser(), text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(for_stream(text, is_json=args.format == "json"))
    return 0


NAME_LIMIT = 1_000  # characters in a title, provider or model name: one line on screen
LAST_SECOND = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC).timestamp()  # dates must format


def _text(value: Any, where: str, limit: int, optional: bool = False) -> None:
    """Refuse what the database or the app could not hold: not a string, too long, or a
    lone UTF-16 surrogate (JSON "\\ud800": SQLite cannot store it)."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise UsageError(f"{where} must be a string, got {_kind(value)}")
    if len(value) > limit:
        raise UsageError(f"{where} is too long ({len(value):,} characters; at most {limit:,})")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise UsageError(f"{where} holds an invalid character at {e.start} (a lone UTF-16 surrogate)") from None


def _timestamp(value: Any, where: str) -> None:
    """Seconds since 1970, finite and before year 10000: anything else breaks the dates of
    `show` and `export` later, long after the import."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{where} must be a number of seconds since 1970, got {_kind(value)}")
    if not 0 <= value <= LAST_SECOND:  # also NaN and ±Infinity, which JSON parsing lets through
        small = isinstance(value, float) or abs(value) < 10**15  # a float() of 10**400 overflows
        shown = f"{value:.6g}" if small else "a larger number"
        raise UsageError(f"{where} must be a time between 1970 and the year 9999, got {shown}")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), "a number"
    )


def _parse_import(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The session and messages of an export, checked whole before anything is written."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from e
    except RecursionError:
        raise UsageError(f"{path} is not a chatplex session export (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"{path} is not valid JSON ({e})") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f'{path} is not a chatplex session export (expected "format": "{FORMAT}")')
    session, messages = data.get("session"), data.get("messages")
    if not isinstance(session, dict) or not isinstance(messages, list):
        raise UsageError(f'{path}: needs a "session" object and a "messages" list')
    for key in ("title", "provider", "model"):
        _text(session.get(key), f"{path}: session.{key}", NAME_LIMIT)
    _text(session.get("system_prompt", ""), f"{path}: session.system_prompt", MAX_MESSAGE)
    _timestamp(session.get("created_at"), f"{path}: session.created_at")
    states = {s.value for s in MessageState}
    for i, m in enumerate(messages):
        where = f"{path}: messages[{i}]"
        if (
            not isinstance(m, dict)
            or m.get("role") not in ("user", "assistant", "system")
            or not isinstance(m.get("content"), str)
        ):
            raise UsageError(f"{where} needs a role (user/assistant/system) and a content string")
        _text(m["content"], f"{where}.content", MAX_MESSAGE)
        state = m.get("state", "complete")
        if not isinstance(state, str) or state not in states:
            raise UsageError(f"{where}.state must be complete, interrupted or error")
        _text(m.get("error"), f"{where}.error", MAX_MESSAGE, optional=True)
        _text(m.get("model"), f"{where}.model", NAME_LIMIT, optional=True)
        _timestamp(m.get("created_at"), f"{where}.created_at")
        if state == "streaming":  # exported mid-reply: nothing is generating it here
            m["state"], m["error"] = "interrupted", "was still being generated when it was exported"
    return session, messages


async def cmd_import(config: Config, args: argparse.Namespace) -> int:
    session, messages = _parse_import(Path(args.file).expanduser())
    store = await _store(config)
    try:
        created = await store.import_session(session, messages)
    finally:
        await store.close()
    print(
        json.dumps({"session": created.id, "messages": len(messages)})
        if args.json
        else f"imported session {created.id} ({visible(created.title)}) with {len(messages)} messages"
    )
    return 0


async def _check_provider(config: Config, name: str) -> tuple[bool, str]:
    pc = config.providers[name]
    if pc.kind == "llamacpp":
        import importlib.util

        if not Path(pc.model_path).expanduser().is_file():
            return False, f"model file {pc.model_path} not found — fix model_path"
        if importlib.util.find_spec("xllamacpp") is None:
            return False, "needs the local extra — pip install 'chatplex[local]'"
        return True, f"GGUF {pc.model_path} (started on demand)"
    if pc.api_key_env and not os.environ.get(pc.api_key_env, "").strip():
        return False, f"{pc.api_key_env} is not set — export it with your API key"
    _, problem = api_key(pc.api_key_env)
    if problem:
        return False, problem
    provider = config.make_provider(name)
    try:
        models = await asyncio.wait_for(provider.list_models(), timeout=pc.connect_timeout + 5)
    except ProviderError as e:
        return False, str(e)
    except TimeoutError:
        return False, f"{pc.base_url} did not answer in time — is the server running?"
    except Exception as e:  # e.g. a models list of an unexpected shape: a check, not a crash
        return False, f"unexpected answer from {pc.base_url}: {type(e).__name__}: {e}"
    finally:
        await provider.aclose()
    known = "" if not models or pc.model in models else f"; model {pc.model!r} not in its list ({len(models)} models)"
    return True, f"{pc.base_url} reachable and authorised{known}"


async def cmd_doctor(config: Config, args: argparse.Namespace) -> int:
    checks: list[tuple[str, bool, str]] = []
    n = len(config.providers)
    checks.append(
        (
            "config",
            True,
            f"{config.path} ({n} provider{'s' * (n != 1)})"
            if config.path
            else f"no file at {config_path()}; using a local Ollama — `chatplex config init` writes one",
        )
    )
    warnings = [("config", None, w) for w in config.warnings]  # shown, but never fail the check
    try:
        store = await _store(config)
    except StoreError as e:
        checks.append(("database", False, str(e)))
    else:
        try:
            version = await store.schema_version()
            checks.append(("database", True, f"{config.db_path} (schema {version}/{SCHEMA_VERSION})"))
            problems = await store.integrity_check()
            checks.append(
                (
                    "integrity",
                    problems == ["ok"],
                    "ok"
                    if problems == ["ok"]
                    else f"{'; '.join(problems[:3])} — restore a backup (`chatplex backup` makes them)",
                )
            )
        finally:
            await store.close()
    results = await asyncio.gather(*(_check_provider(config, name) for name in config.providers))
    for name, (ok, text) in zip(config.providers, results, strict=True):
        checks.append((f"provider {name}", ok, text))
    failed = not all(ok for _, ok, _ in checks)
    lines: list[tuple[str, bool | None, str]] = [*checks[:1], *warnings, *checks[1:]]
    secrets = config.secrets()  # the providers scrub their errors; this is the last line of defence
    lines = [(check, ok, redact(detail, secrets)) for check, ok, detail in lines]
    if args.json:
        print(
            json.dumps(
                [
                    {"check": c, "ok": True, "warning": True, "detail": d}
                    if passed is None
                    else {"check": c, "ok": passed, "detail": d}
                    for c, passed, d in lines
                ]
            )
        )
    else:
        for check, passed, detail in lines:
            mark = "⚠" if passed is None else "✓" if passed else "✗"
            print(f"{mark} {check}: {visible(detail)}")
    return 1 if failed else 0


STARTER = """# chatplex configuration. Keys never go in this file: each provider names the
# environment variable that holds its key (api_key_env).

default_provider = "ollama"
workers = 4            # replies generated at once
max_attempts = 5       # tries per reply on transient errors (429, 5xx, timeouts)
bell = false           # ring the terminal bell when a background reply arrives

# A local Ollama (ollama serve; ollama pull llama3.2)
[providers.ollama]
kind = "ollama"
model = "llama3.2"
max_concurrency = 1    # a local server usually serves one request at a time

# OpenAI
# [providers.openai]
# kind = "openai"
# model = "gpt-4o-mini"
# api_key_env = "OPENAI_API_KEY"

# Anthropic
# [providers.claude]
# kind = "anthropic"
# model = "claude-sonnet-4-5"
# api_key_env = "ANTHROPIC_API_KEY"
# max_tokens = 4096

# OpenRouter
# [providers.openrouter]
# kind = "openrouter"
# model = "meta-llama/llama-3.3-70b-instruct"
# api_key_env = "OPENROUTER_API_KEY"

# A vLLM or llama.cpp server (any OpenAI-compatible endpoint)
# [providers.vllm]
# kind = "vllm"                      # or "llamacpp-server"
# base_url = "http://localhost:8000/v1"
# model = "Qwen/Qwen2.5-7B-Instruct"
# [providers.vllm.params]            # extra request fields, sent as they are
# temperature = 0.7

# A GGUF file, run by chatplex itself (pip install 'chatplex[local]')
# [providers.local]
# kind = "llamacpp"
# model_path = "~/models/qwen2.5-0.5b-instruct-q4_k_m.gguf"

# [keys]                 # remap keys by binding id: press F1 in the app for every binding id
# new_session = "ctrl+t"
"""


def cmd_config(args: argparse.Namespace) -> int:
    path = Path(args.config).expanduser() if args.config else config_path()
    action = args.config_command or "path"
    if action == "path":
        print(json.dumps({"path": str(path), "exists": path.exists()}) if args.json else str(path))
        return 0
    if action == "init":
        if path.exists() and not args.force:
            raise UsageError(f"{path} exists; pass --force to replace it")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, STARTER)
        print(json.dumps({"path": str(path)}) if args.json else f"wrote {path}")
        return 0
    config = load(path if path.exists() or args.config else None)
    for warning in config.warnings:
        say(f"warning: {warning}")
    providers = {}
    for name, pc in config.providers.items():
        entry: dict[str, Any] = {"kind": pc.kind, "model": pc.model}
        if pc.kind == "llamacpp":
            entry["model_path"] = pc.model_path
        else:
            entry["base_url"] = pc.base_url
        if pc.api_key_env:  # the variable's name and whether it is set; never its value
            entry["api_key_env"] = pc.api_key_env
            entry["api_key"] = "****** (set)" if os.environ.get(pc.api_key_env) else "(not set)"
        for key in ("max_concurrency", "max_tokens", "connect_timeout", "read_timeout", "params"):
            entry[key] = getattr(pc, key)
        providers[name] = entry
    data = {
        "config": str(config.path) if config.path else None,
        "database": str(config.db_path),
        "default_provider": config.default_provider,
        "workers": config.workers,
        "max_attempts": config.max_attempts,
        "bell": config.bell,
        "keys": config.keys,
        "providers": providers,
    }
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"# effective configuration ({data['config'] or 'no file: built-in defaults'})")
    for key in ("database", "default_provider", "workers", "max_attempts", "bell"):
        print(f"{key} = {json.dumps(data[key])}")
    for name, entry in providers.items():
        print(f"\n[providers.{name}]")
        for key, value in entry.items():
            if value not in (None, {}, 0) or key == "max_concurrency":
                print(f"{key} = {json.dumps(value)}")
    return 0


SESSION_REF = "session id, or title (title:NAME for a title made of digits)"


def add_parsers(sub: Any) -> None:
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


COMMANDS = {
    "prune": cmd_prune,
    "vacuum": cmd_vacuum,
    "backup": cmd_backup,
    "doctor": cmd_doctor,
    "export": cmd_export,
    "import": cmd_import,
}

__all__ = ["COMMANDS", "ConfigError", "KINDS", "UsageError", "add_parsers", "cmd_config"]
