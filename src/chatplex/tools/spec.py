"""What config.toml says of MCP servers and what they offer, with no MCP client behind it:
reading the configuration (every command's start) must not import the `mcp` SDK, which
costs more than a second."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ToolServerError(Exception):
    """The server cannot be used now; `str()` is one line fit for the session."""


class ServerState(StrEnum):
    STOPPED = "stopped"  # not started yet (servers start on first use)
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"  # would not start, or died; restarts on a later use, after a backoff


@dataclass(slots=True)
class McpServerConfig:
    """`[mcp.NAME]` in config.toml: a stdio server (`command`, `args`, `env`, `cwd`) or a
    streamable-HTTP one (`url`, `headers`). `env` and `headers` values may name environment
    variables as `${VAR}`: their values are read at start and never stored or logged."""

    name: str
    command: str = ""
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = ""
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    enabled: bool = True  # offered to sessions that do not choose their servers
    timeout: float = 60.0  # seconds one call may take; then the model gets an error result
    approval: str = "ask"  # the server's default: ask, allow or deny
    tools: dict[str, str] = field(default_factory=dict)  # per-tool globs -> ask/allow/deny
    max_parallel: int = 4  # calls at once on this server

    def resolve(self, values: dict[str, str]) -> dict[str, str]:
        """`values` with each `${VAR}` replaced from the environment; a variable that is not
        set is a clear error rather than an empty secret sent to the server."""
        out = {}
        for key, value in values.items():
            for name in _VAR.findall(value):
                if name not in os.environ:
                    raise ToolServerError(f"{self.name}: the environment variable {name} is not set (named by {key})")
            out[key] = _VAR.sub(lambda m: os.environ[m.group(1)], value)
        return out

    def secrets(self) -> list[str]:
        """The values `${VAR}`s stand for, as they are set now: what logs must never show."""
        names = {m.group(1) for v in [*self.env.values(), *self.headers.values()] for m in _VAR.finditer(v)}
        return [os.environ[n] for n in sorted(names) if os.environ.get(n)]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    server: str
    name: str  # the server's own name for it
    description: str
    input_schema: dict[str, Any]


__all__ = ["McpServerConfig", "ServerState", "ToolServerError", "ToolSpec"]
