"""Tools from MCP servers (the official `mcp` SDK): server processes and connections, tool
listing and calls, approval policy. No store, no UI: the core decides when a call runs and
keeps what it gives back."""

from chatplex.tools.policy import Decision, decide
from chatplex.tools.results import ImageInfo, ToolOutcome
from chatplex.tools.server import McpServerConfig, ServerState, ToolServer, ToolServerError, ToolSpec
from chatplex.tools.toolbox import Toolbox

__all__ = [
    "Decision",
    "ImageInfo",
    "McpServerConfig",
    "ServerState",
    "ToolOutcome",
    "ToolServer",
    "ToolServerError",
    "ToolSpec",
    "Toolbox",
    "decide",
]
