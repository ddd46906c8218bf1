"""`chatplex tools [--json]`: the MCP servers config.toml names, whether each starts, and the
tools it offers with what each call needs (ask, allow or deny)."""

from __future__ import annotations

import argparse
import contextlib
import json

from chatplex.cli.output import for_stream, table
from chatplex.config import Config


async def server_report(config: Config) -> list[dict[str, object]]:
    """Each server started (as a session would), its state and tools, then stopped."""
    from chatplex.tools.toolbox import Toolbox  # the MCP SDK: only for this command (a second to import)

    async with contextlib.aclosing(Toolbox(config.mcp.values(), config.log_dir)) as box:
        return await box.report(config.secrets())


async def cmd_tools(config: Config, args: argparse.Namespace) -> int:
    """Start each server as a session would, list its tools and what a call of each needs."""
    if not config.mcp:
        print("no MCP servers in config.toml — add one as [mcp.NAME] with command (stdio) or url (HTTP)")
        return 0
    report = await server_report(config)
    if args.json:
        print(for_stream(json.dumps(report, ensure_ascii=False), is_json=True))
    else:
        rows = []
        for entry in report:
            on = "on" if entry["enabled"] else "off (not offered)"
            if entry["state"] != "ready":
                rows.append([str(entry["server"]), on, "failed", "", str(entry.get("error", ""))])
                continue
            for tool in entry["tools"]:  # type: ignore[attr-defined]
                rows.append([str(entry["server"]), on, "ready", tool["name"], tool["approval"]])
        table(["server", "enabled", "state", "tool", "approval / error"], rows, "no tools")
    return 0 if all(e["state"] == "ready" for e in report) else 1


COMMANDS = {"tools": cmd_tools}
