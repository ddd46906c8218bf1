"""Sessions in and out of the database: `export` (Markdown or re-importable JSON) and
`import`, which checks the whole file before it writes anything."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from chatplex.cli.output import UsageError, for_stream
from chatplex.cli.refs import NAME_LIMIT, find_session
from chatplex.config import Config
from chatplex.core.coordinator import MAX_MESSAGE, checked_settings
from chatplex.core.db import Store
from chatplex.core.export import FORMAT, part_from_record, render, save
from chatplex.core.models import MessageState
from chatplex.core.text import visible


async def cmd_export(config: Config, args: argparse.Namespace) -> int:
    async with await Store.open(config.db_path) as store:
        session = await find_session(store, args.session)
        messages = await store.messages(session.id)
    if args.output and args.output != "-":
        path = Path(args.output).expanduser()
        try:
            save(path, session, messages, args.format)  # as the app's Ctrl+S writes it
        except OSError as e:
            raise UsageError(f"cannot write {path}: {e.strerror or e}") from e
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(for_stream(render(session, messages, args.format), is_json=args.format == "json"))
    return 0


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


def _seconds(value: Any, where: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 10**7:  # NaN too
        raise UsageError(f"{where} must be a number of seconds (0 to 10,000,000), got {_kind(value)}")


def _count(value: Any, where: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise UsageError(f"{where} must be a whole number of tokens, got {_kind(value)}")


# each kind of part: its fields that must be strings (the rest are optional strings or flags)
PART_FIELDS = {
    "text": ("text",),
    "reasoning": (),
    "tool_call": ("id", "name", "arguments"),
    "tool_result": ("call_id", "content"),
}


def _parts(parts: Any, content: str, where: str) -> list[Any]:
    """An export's parts, checked: known kinds, string fields within the limits, and text
    parts that agree with the message's content (what search and previews read)."""
    if not isinstance(parts, list):
        raise UsageError(f"{where}.parts must be a list, got {_kind(parts)}")
    if len(parts) > 10_000:
        raise UsageError(f"{where}.parts has too many parts ({len(parts):,}; at most 10,000)")
    out = []
    for j, part in enumerate(parts):
        at = f"{where}.parts[{j}]"
        if not isinstance(part, dict) or part.get("kind") not in PART_FIELDS:
            raise UsageError(f"{at} needs a kind: one of {', '.join(PART_FIELDS)}")
        for key in PART_FIELDS[part["kind"]]:
            _text(part.get(key), f"{at}.{key}", MAX_MESSAGE)
        for key in ("text", "signature", "redacted"):
            _text(part.get(key), f"{at}.{key}", MAX_MESSAGE, optional=True)
        if not isinstance(part.get("is_error", False), bool):
            raise UsageError(f"{at}.is_error must be true or false")
        out.append(part_from_record(part))
    text = "".join(p["text"] for p in parts if p["kind"] == "text")
    if text != content:
        raise UsageError(f"{where}: its text parts do not add up to its content")
    return out


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
    settings = session.get("settings", {})
    if not isinstance(settings, dict):
        raise UsageError(f"{path}: session.settings must be an object, got {_kind(settings)}")
    try:
        session["settings"] = checked_settings(settings)
    except ValueError as e:
        raise UsageError(f"{path}: session.settings: {e}") from None
    states = {s.value for s in MessageState}
    for i, m in enumerate(messages):
        where = f"{path}: messages[{i}]"
        if (
            not isinstance(m, dict)
            or m.get("role") not in ("user", "assistant", "system", "tool")
            or not isinstance(m.get("content"), str)
        ):
            raise UsageError(f"{where} needs a role (user/assistant/system/tool) and a content string")
        _text(m["content"], f"{where}.content", MAX_MESSAGE)
        state = m.get("state", "complete")
        if not isinstance(state, str) or state not in states:
            raise UsageError(f"{where}.state must be complete, interrupted or error")
        _text(m.get("error"), f"{where}.error", MAX_MESSAGE, optional=True)
        _text(m.get("model"), f"{where}.model", NAME_LIMIT, optional=True)
        _timestamp(m.get("created_at"), f"{where}.created_at")
        for key in ("prompt_tokens", "completion_tokens", "reasoning_tokens"):
            _count(m.get(key), f"{where}.{key}")
        _seconds(m.get("seconds"), f"{where}.seconds")
        _text(m.get("finish_reason"), f"{where}.finish_reason", NAME_LIMIT, optional=True)
        if "parts" in m:
            m["parts"] = _parts(m["parts"], m["content"], where)
        if state == "streaming":  # exported mid-reply: nothing is generating it here
            m["state"], m["error"] = "interrupted", "was still being generated when it was exported"
    return session, messages


async def cmd_import(config: Config, args: argparse.Namespace) -> int:
    session, messages = _parse_import(Path(args.file).expanduser())
    async with await Store.open(config.db_path) as store:
        created = await store.import_session(session, messages)
    print(
        json.dumps({"session": created.id, "messages": len(messages)})
        if args.json
        else f"imported session {created.id} ({visible(created.title)}) with {len(messages)} messages"
    )
    return 0


COMMANDS = {"export": cmd_export, "import": cmd_import}
