"""Whether a tool call may run without asking: per server, then per tool with globs."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from fnmatch import fnmatchcase


class Decision(StrEnum):
    ASK = "ask"  # the default: a call waits, held, until the user says yes or no
    ALLOW = "allow"
    DENY = "deny"


def decide(tool: str, server_default: str = "ask", per_tool: Mapping[str, str] | None = None) -> Decision:
    """The first glob in `per_tool` (in the order config.toml lists them) that matches the
    tool's own name wins; otherwise the server's default. Tools have side effects, so
    anything unknown asks."""
    for pattern, value in (per_tool or {}).items():
        if fnmatchcase(tool, pattern):
            return Decision(value) if value in Decision._value2member_map_ else Decision.ASK
    return Decision(server_default) if server_default in Decision._value2member_map_ else Decision.ASK
