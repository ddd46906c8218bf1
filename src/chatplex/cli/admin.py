"""Looking after the database and the set-up: `prune`, `vacuum`, `backup`, `doctor`,
`config`. Each prints a human line or table by default and JSON with --json; bad input is
one line on stderr and exit code 2, and nothing is half-written."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import Any

from chatplex.cli.output import UsageError, save_file, say
from chatplex.cli.tools import server_report
from chatplex.config import Config, api_key, config_path, load
from chatplex.core.db import SCHEMA_VERSION, Store, StoreError
from chatplex.core.text import visible
from chatplex.providers.base import ProviderError
from chatplex.redact import redact


def parse_duration(text: str) -> float:
    """'30d', '12h', '15m', '90s', '2w' -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not match:
        raise UsageError(f"bad duration {text!r}: use a number and a unit, e.g. 30d, 12h, 15m, 90s, 2w")
    return float(match[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match[2]]


async def cmd_prune(config: Config, args: argparse.Namespace) -> int:
    seconds = parse_duration(args.older_than)
    async with await Store.open(config.db_path) as store:
        jobs = await store.prune(seconds)
        sessions = await store.prune_sessions(seconds) if args.messages else 0
    human = f"deleted {jobs} finished job{'s' * (jobs != 1)} older than {args.older_than}"
    if args.messages:
        human += f" and {sessions} session{'s' * (sessions != 1)} (with their messages) idle that long"
    print(json.dumps({"jobs": jobs, "sessions": sessions}) if args.json else human)
    return 0


async def cmd_vacuum(config: Config, args: argparse.Namespace) -> int:
    async with await Store.open(config.db_path) as store:
        before, after = await store.vacuum()
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
    async with await Store.open(config.db_path) as store:
        await store.backup(target)
    print(
        json.dumps({"backup": str(target), "bytes": target.stat().st_size})
        if args.json
        else f"backed up {config.db_path} to {target} ({target.stat().st_size / 1e6:.2f} MB)"
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
    async with contextlib.aclosing(config.make_provider(name)) as provider:
        try:
            models = await asyncio.wait_for(provider.list_models(), timeout=pc.connect_timeout + 5)
        except ProviderError as e:
            return False, str(e)
        except TimeoutError:
            return False, f"{pc.base_url} did not answer in time — is the server running?"
        except Exception as e:  # e.g. a models list of an unexpected shape: a check, not a crash
            return False, f"unexpected answer from {pc.base_url}: {type(e).__name__}: {e}"
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
        store = await Store.open(config.db_path)
    except StoreError as e:
        checks.append(("database", False, str(e)))
    else:
        async with store:
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
    results = await asyncio.gather(*(_check_provider(config, name) for name in config.providers))
    for name, (ok, text) in zip(config.providers, results, strict=True):
        checks.append((f"provider {name}", ok, text))
    for entry in await server_report(config):  # each MCP server started once, as a session would
        tools = entry["tools"]
        assert isinstance(tools, list)
        if entry["state"] == "ready":
            detail = f"{len(tools)} tool{'s' * (len(tools) != 1)}: {', '.join(t['name'] for t in tools)}"
            checks.append((f"mcp {entry['server']}", True, detail))
        else:
            checks.append((f"mcp {entry['server']}", False, str(entry.get("error", ""))))
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
notifications = "auto" # desktop notifications while the terminal is not focused ("off", or a
                       # way: osc777, osc9, osc99, notify-send, osascript)
show_reasoning = false # show models' thinking open in every reply (else folded to one line)
show_times = false     # each message's time on its box (the palette's "Show message times")

# Prices in dollars per million tokens, for each reply's cost and the session's total
# (a model takes the price of its exact name, else of the longest name it starts with):
# [prices."claude-sonnet-4-5"]
# input = 3.0
# output = 15.0

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
# new_session = "ctrl+g"
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
        save_file(path, STARTER)
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
        "notifications": config.notifications,
        "show_reasoning": config.show_reasoning,
        "show_times": config.show_times,
        "keys": config.keys,
        "providers": providers,
    }
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"# effective configuration ({data['config'] or 'no file: built-in defaults'})")
    keys = ("database", "default_provider", "workers", "max_attempts", "bell", "notifications")
    for key in (*keys, "show_reasoning", "show_times"):
        print(f"{key} = {json.dumps(data[key])}")
    for name, entry in providers.items():
        print(f"\n[providers.{name}]")
        for key, value in entry.items():
            if value not in (None, {}, 0) or key == "max_concurrency":
                print(f"{key} = {json.dumps(value)}")
    return 0


COMMANDS = {"prune": cmd_prune, "vacuum": cmd_vacuum, "backup": cmd_backup, "doctor": cmd_doctor}
