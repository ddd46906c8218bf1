"""`chatplex tools [--json] [--session S [--use NAMES]]`: the MCP servers config.toml names,
whether each starts, the tools it offers with what each call needs (ask, allow or deny), and
which of them a session uses (`--use` chooses: a,b · none · default)."""

from __future__ import annotations

import argparse
import contextlib
import json

from chatplex.cli.output import UsageError, emit, for_stream, table
from chatplex.cli.refs import find_session
from chatplex.config import Config
from chatplex.core.coordinator import Coordinator
from chatplex.core.models import Session


async def server_report(config: Config) -> list[dict[str, object]]:
    """Each server started (as a session would), its state and tools, then stopped."""
    from chatplex.tools.toolbox import Toolbox  # the MCP SDK: only for this command (a second to import)

    async with contextlib.aclosing(Toolbox(config.mcp.values(), config.log_dir)) as box:
        return await box.report(config.secrets())


def servers_of(config: Config, session: Session) -> list[str]:
    return config.default_servers() if session.servers is None else list(session.servers)


async def cmd_tools(config: Config, args: argparse.Namespace) -> int:
    """Start each server as a session would, list its tools and what a call of each needs."""
    if args.use is not None:
        return await _use(config, args)
    if not config.mcp:
        print("no MCP servers in config.toml — add one as [mcp.NAME] with command (stdio) or url (HTTP)")
        return 0
    session = None
    if args.session:
        async with await Coordinator.open(config) as coord:
            session = await find_session(coord.store, args.session)
    report = await server_report(config)
    if session is not None:
        used = servers_of(config, session)
        for entry in report:
            entry["session"] = {
                "id": session.id,
                "uses": entry["server"] in used,
                "chosen": session.servers is not None,
            }
    if args.json:
        print(for_stream(json.dumps(report, ensure_ascii=False), is_json=True))
    else:
        rows = []
        for entry in report:
            on = "on" if entry["enabled"] else "off (not offered)"
            if session is not None:
                here = "used" if entry["server"] in used else "not used"
                on = f"{here} in session {session.id} ({'chosen' if session.servers is not None else 'default'})"
            if entry["state"] != "ready":
                rows.append([str(entry["server"]), on, "failed", "", str(entry.get("error", ""))])
                continue
            for tool in entry["tools"]:  # type: ignore[attr-defined]
                rows.append([str(entry["server"]), on, "ready", tool["name"], tool["approval"]])
        table(["server", "enabled", "state", "tool", "approval / error"], rows, "no tools")
    return 0 if all(e["state"] == "ready" for e in report) else 1


async def _use(config: Config, args: argparse.Namespace) -> int:
    """`--use`: set the session's servers (none: no tools; default: config.toml's)."""
    if not args.session:
        raise UsageError("--use needs --session: which session's servers to set")
    spec = args.use.strip()
    chosen = None if spec == "default" else [] if spec == "none" else [n.strip() for n in spec.split(",") if n.strip()]
    async with await Coordinator.open(config) as coord:
        session = await find_session(coord.store, args.session)
        try:
            session = await coord.use_servers(session.id, chosen)
        except ValueError as e:
            raise UsageError(str(e)) from e
    used = servers_of(config, session)
    how = "config.toml's default" if session.servers is None else "chosen"
    human = f"session {session.id} uses {', '.join(used) or 'no MCP servers'} ({how})"
    return emit(args.json, {"session": session.id, "servers": used, "chosen": session.servers is not None}, human)


COMMANDS = {"tools": cmd_tools}
