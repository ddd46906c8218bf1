"""`chatplex approvals`, `approve ID [--always]`, `deny ID [--reason …]`: the tool calls that
wait for the user, answered from any shell; `ask-again TOOL [SESSION]` takes an "always" back.
The app or a `chatplex worker` on the same database runs an approved call at once (it
notices the change)."""

from __future__ import annotations

import argparse
import time

from chatplex.cli.jobs import parse_job_id
from chatplex.cli.output import UsageError, emit, table
from chatplex.cli.refs import find_session
from chatplex.config import Config
from chatplex.core.coordinator import Coordinator
from chatplex.core.db.steps import Approval
from chatplex.core.text import duration, preview_of


def approval_record(a: Approval) -> dict[str, object]:
    return {
        "job": a.job.id,
        "session": a.session.id,
        "title": a.session.title,
        "tool": a.call.name,
        "arguments": a.call.arguments,
        "call_id": a.call.id,
        "reason": a.reason,
        "waiting_since": a.job.updated_at,
    }


async def cmd_approvals(config: Config, args: argparse.Namespace) -> int:
    async with await Coordinator.open(config) as coord:
        waiting = await coord.approvals()
        sessions = await coord.store.list_sessions()
    if args.json:
        return emit(True, [approval_record(a) for a in waiting], "")
    now = time.time()
    table(
        ["job", "session", "tool", "arguments", "waiting", "why"],
        [
            [
                str(a.job.id),
                f"{a.session.id} {preview_of(a.session.title, 24)}",
                a.call.name,
                preview_of(" ".join(a.call.arguments.split()), 50),
                duration(now - a.job.updated_at),
                preview_of(a.reason, 50),
            ]
            for a in waiting
        ],
        empty="no tool call waits for approval",
    )
    always = [(s, ", ".join(s.allowed_tools)) for s in sessions if s.allowed_tools]
    if always:
        print("\nrun without asking (approved always; `chatplex ask-again TOOL [SESSION]` takes it back):")
        table(["session", "tools"], [[f"{s.id} {preview_of(s.title, 24)}", tools] for s, tools in always], empty="")
    return 0


async def cmd_ask_again(config: Config, args: argparse.Namespace) -> int:
    async with await Coordinator.open(config) as coord:
        session = await find_session(coord.store, args.session) if args.session else None
        changed = await coord.forget_always(args.tool, session.id if session else None)
    where = f"session {session.id}" if session else "every session"
    if not changed:
        raise UsageError(f"{args.tool} was not approved always in {where} (see `chatplex approvals`)")
    ids = [s.id for s in changed]
    human = f"{args.tool} asks again before it runs in session{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))}"
    return emit(args.json, {"tool": args.tool, "sessions": ids}, human)


async def cmd_approve(config: Config, args: argparse.Namespace) -> int:
    job_id = parse_job_id(args.id)
    async with await Coordinator.open(config) as coord:
        waiting = {a.job.id: a for a in await coord.approvals()}
        if job_id not in waiting:
            raise UsageError(f"job {args.id} is not a tool call waiting for approval (see `chatplex approvals`)")
        a = waiting[job_id]
        if args.command == "approve":
            await coord.approve(job_id, always=args.always)
            more = f"; {a.call.name} runs without asking in session {a.session.id} from now on" if args.always else ""
            return emit(
                args.json, {"approved": job_id, "always": args.always}, f"approved job {job_id} ({a.call.name}){more}"
            )
        await coord.deny(job_id, args.reason or "")
        return emit(args.json, {"denied": job_id}, f"denied job {job_id} ({a.call.name}); the model is told")


COMMANDS = {"approvals": cmd_approvals, "approve": cmd_approve, "deny": cmd_approve, "ask-again": cmd_ask_again}
