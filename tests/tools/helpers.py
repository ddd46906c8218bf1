"""Real MCP peers: `mcp-server-time` (PyPI, stdio), `@modelcontextprotocol/server-everything`
(npm, streamable HTTP; .ci/run installs it with `npm ci --prefix tests/mcpservers/npm`) and
tests/mcpservers/faulty.py (the SDK's own server side, with tools that misbehave)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from chatplex.tools import McpServerConfig

HERE = Path(__file__).resolve().parent
EVERYTHING = HERE.parent / "mcpservers" / "npm" / "node_modules" / ".bin" / "mcp-server-everything"
FAULTY = HERE.parent / "mcpservers" / "faulty.py"


def time_server(**kw) -> McpServerConfig:
    command = shutil.which("mcp-server-time") or str(Path(sys.executable).parent / "mcp-server-time")
    return McpServerConfig(name=kw.pop("name", "time"), command=command, args=["--local-timezone", "UTC"], **kw)


def faulty_server(name: str = "faulty", **kw) -> McpServerConfig:
    return McpServerConfig(name=name, command=sys.executable, args=[str(FAULTY), "--name", name], **kw)
