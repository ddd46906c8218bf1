"""Tools from MCP servers (the official `mcp` SDK): server processes and connections, tool
listing and calls, approval policy. No store, no UI: the core decides when a call runs and
keeps what it gives back.

The package's names here are the light ones: importing `chatplex.tools` (config.toml's
reading does) must not import the `mcp` SDK. The client side is `tools.server.ToolServer`
and `tools.toolbox.Toolbox`."""

from chatplex.tools.policy import Decision, decide
from chatplex.tools.results import ImageInfo, ToolOutcome
from chatplex.tools.spec import McpServerConfig, ServerState, ToolServerError, ToolSpec

__all__ = [
    "Decision",
    "ImageInfo",
    "McpServerConfig",
    "ServerState",
    "ToolOutcome",
    "ToolServerError",
    "ToolSpec",
    "decide",
]
