"""The process's MCP servers together: which tools a session is offered (under which names),
what a call by the model's name reaches, and whether it may run without asking."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema

from chatplex.redact import redact
from chatplex.tools.policy import Decision, decide
from chatplex.tools.results import ToolOutcome
from chatplex.tools.server import McpServerConfig, ToolServer, ToolServerError, ToolSpec

SEP = "__"  # server__tool, only for names two servers share (function names allow [A-Za-z0-9_-])


class Toolbox:
    def __init__(self, configs: Iterable[McpServerConfig], log_dir: Path | None = None) -> None:
        self.servers = {c.name: ToolServer(c, log_dir) for c in configs}

    def default_servers(self) -> list[str]:
        """The servers a session uses unless it chooses: those config.toml enables."""
        return [name for name, s in self.servers.items() if s.config.enabled]

    async def offered(self, servers: Iterable[str] | None = None) -> tuple[dict[str, ToolSpec], list[str]]:
        """The tools a session's servers offer, by the name the model sees, and one line for
        each server that could not start (the session shows it; the others still work)."""
        chosen = [
            self.servers[n] for n in (self.default_servers() if servers is None else servers) if n in self.servers
        ]
        results = await asyncio.gather(*(s.start() for s in chosen), return_exceptions=True)
        problems: list[str] = []
        specs: list[ToolSpec] = []
        for server, result in zip(chosen, results, strict=True):
            if isinstance(result, ToolServerError):
                problems.append(str(result))
            elif isinstance(result, BaseException):
                problems.append(f"{server.name}: {type(result).__name__}: {result}")
            else:
                specs += result
        counts: dict[str, int] = {}
        for spec in specs:
            counts[spec.name] = counts.get(spec.name, 0) + 1
        named = {(spec.name if counts[spec.name] == 1 else f"{spec.server}{SEP}{spec.name}"): spec for spec in specs}
        return named, problems

    def decision(self, spec: ToolSpec) -> Decision:
        config = self.servers[spec.server].config
        return decide(spec.name, config.approval, config.tools)

    async def call(self, offered: dict[str, ToolSpec], name: str, arguments: str) -> ToolOutcome:
        """Run the model's call `name(arguments)`: an unknown name, arguments that are not a
        JSON object or fail the tool's schema come back as error results the model can act
        on, without reaching the server."""
        spec = offered.get(name)
        if spec is None:
            known = ", ".join(sorted(offered)) or "none"
            return ToolOutcome.error(f"there is no tool named {name!r} (tools: {known})")
        try:
            args: Any = json.loads(arguments) if arguments.strip() else {}
        except ValueError as e:
            return ToolOutcome.error(f"the arguments of {name} are not valid JSON: {e}")
        if not isinstance(args, dict):
            return ToolOutcome.error(f"the arguments of {name} must be a JSON object, got {type(args).__name__}")
        problem = schema_problem(spec.input_schema, args)
        if problem:
            return ToolOutcome.error(f"the arguments of {name} do not fit its schema: {problem}")
        return await self.servers[spec.server].call(spec.name, args)

    async def report(self, secrets: Iterable[str] = ()) -> list[dict[str, object]]:
        """Each server started (as a session would start it), its state and its tools with
        what a call of each needs (ask, allow, deny); errors with `secrets` masked."""
        hidden = list(secrets)
        report: list[dict[str, object]] = []
        for name, server in self.servers.items():
            entry: dict[str, object] = {
                "server": name,
                "transport": "http" if server.config.url else "stdio",
                "enabled": server.config.enabled,
            }
            try:
                tools = await server.start()
            except Exception as e:
                entry.update(state="failed", error=redact(str(e), hidden), tools=[])
            else:
                entry.update(
                    state="ready",
                    tools=[
                        {"name": t.name, "description": t.description, "approval": self.decision(t).value}
                        for t in tools
                    ],
                )
            report.append(entry)
        return report

    async def aclose(self) -> None:
        await asyncio.gather(*(s.aclose() for s in self.servers.values()), return_exceptions=True)


def schema_problem(schema: dict[str, Any], args: dict[str, Any]) -> str:
    if not schema:
        return ""
    try:
        validator = jsonschema.validators.validator_for(schema)(schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(args))
    except jsonschema.exceptions.SchemaError:
        return ""  # the server's schema is broken: let the server judge the call
    if error is None:
        return ""
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where + ': ' if where else ''}{error.message}"
