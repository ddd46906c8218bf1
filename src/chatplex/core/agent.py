"""The tool side of an agent turn, for the worker: which tools a model step offers, what each
call of a finished step may do (run, wait for the user, be refused), and one tool step's run.

The MCP SDK is imported only by `tools.toolbox`, and only when config.toml names servers:
a process without tools never pays its second of import.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from chatplex.core.models import Session
from chatplex.providers.base import ToolCallPart, ToolDef, ToolResultPart
from chatplex.tools.policy import Decision
from chatplex.tools.spec import ToolSpec

if TYPE_CHECKING:
    from chatplex.tools.toolbox import Toolbox

log = logging.getLogger("chatplex.agent")

Offered = dict[str, ToolSpec]  # by the name the model sees


def tool_defs(offered: Offered) -> tuple[ToolDef, ...]:
    return tuple(
        ToolDef(name, spec.description, spec.input_schema or ToolDef(name).parameters) for name, spec in offered.items()
    )


def decide_calls(
    toolbox: Toolbox, offered: Offered, session: Session, calls: list[ToolCallPart], approve_all: bool = False
) -> list[tuple[ToolCallPart, str, str]]:
    """(call, allow/ask/deny, why) for each call of a model step. A name no server offers is
    allowed: its call gives an error result without reaching any server. Approved "always"
    in the session, or `approve_all` (`chatplex send --approve-all`), turns ask into allow;
    a policy's deny stays."""
    out = []
    for call in calls:
        spec = offered.get(call.name)
        if spec is None:
            out.append((call, Decision.ALLOW.value, ""))
            continue
        decision = toolbox.decision(spec)
        if decision is Decision.ASK and (approve_all or call.name in session.allowed_tools):
            decision = Decision.ALLOW
        why = {
            Decision.ASK: f"{spec.server}'s policy asks before {spec.name} runs",
            Decision.DENY: f"the policy in config.toml denies {spec.name} (server {spec.server}); it was not run",
        }.get(decision, "")
        out.append((call, decision.value, why))
    return out


async def run_call(
    toolbox: Toolbox | None, call: ToolCallPart | None, servers: Sequence[str] | None = None
) -> ToolResultPart:
    """One call's result as stored: the whole text (images described); what a model reads of
    it is cut at config's `tool_result_limit` when the next request is built (running.turn_of)."""
    if call is None:
        return ToolResultPart("", "the tool call this step runs is missing from the reply that asked for it", True)
    if toolbox is None:
        return ToolResultPart(
            call.id, "no MCP servers are configured in this chatplex ([mcp.NAME] in config.toml)", True
        )
    offered, problems = await toolbox.offered(servers)  # the session's servers, as its model step had
    if call.name not in offered and problems:
        known = "; ".join(problems)
        return ToolResultPart(call.id, f"there is no tool named {call.name!r} now: {known}", True)
    outcome = await toolbox.call(offered, call.name, call.arguments)
    log.info("tool %s: %s (%d characters)", call.name, "error" if outcome.is_error else "ok", len(outcome.text))
    return ToolResultPart(call.id, outcome.for_model(limit=None), outcome.is_error)
