"""`chatplex send --models a,b,c TEXT`: one prompt to several models at once (issue 17,
item 3, from a script). Each model gets a session of its own ("TITLE · MODEL"), and they run
in parallel through the queue; once every turn has ended, each model's reply is printed with
its time to first token, speed, tokens and cost. With --json: one object per model.

An item is a provider name from config.toml (its model) or `provider:model`.

Time to first token comes from stored figures: from the claim of the job (its `started_at`) to
the first piece, that is the run's length less the part it streamed (`messages.seconds`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import dataclass
from typing import Any

from chatplex.cli.output import UsageError, for_stream, table
from chatplex.config import Config, ConfigError
from chatplex.core.coordinator import Coordinator
from chatplex.core.events import SessionChanged
from chatplex.core.models import Message, MessageState, Session, SessionStatus, preview_of
from chatplex.core.usage import cost_of, money

# a turn still going: queued, streaming, thinking, running a tool, or put back in the queue
BUSY = (
    SessionStatus.QUEUED,
    SessionStatus.STREAMING,
    SessionStatus.THINKING,
    SessionStatus.RUNNING_TOOL,
    SessionStatus.INTERRUPTED,
)


@dataclass(frozen=True, slots=True)
class Choice:
    provider: str
    model: str


def choices(config: Config, spec: str) -> list[Choice]:
    """`a,b:m,…` as (provider, model) pairs, each checked against config.toml."""
    out = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        provider, _, model = item.partition(":")
        try:
            pc = config.provider(provider)
        except ConfigError as e:
            raise UsageError(str(e)) from None
        out.append(Choice(provider, model or pc.model))
    if len(out) < 2:
        raise UsageError("--models needs two or more, separated by commas (a provider, or provider:model)")
    if len(set(out)) < len(out):
        raise UsageError("--models names one model twice")
    return out


async def cmd_compare(config: Config, args: argparse.Namespace, text: str) -> int:
    picked = choices(config, args.models)
    title = args.title or preview_of(text, 30)
    async with await Coordinator.open(config) as coord:
        sessions: list[Session] = []
        for c in picked:
            sessions.append(
                await coord.create_session(
                    title=f"{title} · {c.model}", provider=c.provider, model=c.model, system_prompt=args.system or ""
                )
            )
        ids = {s.id for s in sessions}
        ended = asyncio.Event()
        waiting = set(ids)

        def on_event(event: object) -> None:
            if isinstance(event, SessionChanged) and event.session.id in waiting and event.session.status not in BUSY:
                waiting.discard(event.session.id)
                if not waiting:
                    ended.set()

        coord.bus.subscribe(on_event)
        coord.approve_all = args.approve_all
        for s in sessions:
            await coord.send(s.id, text)
        await coord.start()
        await ended.wait()
        results = [await _result(coord, s, c) for s, c in zip(sessions, picked, strict=True)]
    if args.json:
        print(for_stream(json.dumps(results, ensure_ascii=False), is_json=True))
    else:
        for r in results:
            print(f"── {r['provider']}:{r['model']} (session {r['session']})")
            print(r["text"] if r["state"] == "complete" else f"⚠ {r['error']}")
            print()
        table(
            ["model", "first token", "tok/s", "tokens in / out", "cost", "state"],
            [
                [
                    f"{r['provider']}:{r['model']}",
                    "" if r["ttft"] is None else f"{r['ttft']:.2f} s",
                    "" if r["tokens_per_s"] is None else f"{r['tokens_per_s']:,.0f}",
                    f"{r['prompt_tokens'] or '?'} / {r['completion_tokens'] or '?'}",
                    "" if r["cost"] is None else money(r["cost"]),
                    r["state"],
                ]
                for r in results
            ],
            empty="",
        )
    return 0 if all(r["state"] == "complete" for r in results) else 1


async def _result(coord: Coordinator, session: Session, choice: Choice) -> dict[str, Any]:
    messages = await coord.messages(session.id)
    reply: Message | None = next((m for m in reversed(messages) if m.role.value == "assistant"), None)
    now = await coord.session(session.id)
    job = await coord.job(reply.job_id) if reply is not None and reply.job_id is not None else None
    ttft = None
    if reply is not None and job is not None and job.started_at and reply.seconds is not None:
        ttft = max(0.0, reply.updated_at - job.started_at - reply.seconds)
    state = "complete" if reply is not None and reply.state is MessageState.COMPLETE else "error"
    if now is not None and now.status is SessionStatus.NEEDS_APPROVAL:
        state = "needs_approval"
    speed = None
    if reply is not None and reply.completion_tokens and reply.seconds:
        speed = reply.completion_tokens / reply.seconds
    return {
        "provider": choice.provider,
        "model": choice.model,
        "session": session.id,
        "state": state,
        "text": reply.content if reply is not None else "",
        "error": None if reply is None or state == "complete" else reply.error or state,
        "ttft": ttft,
        "seconds": reply.seconds if reply is not None else None,
        "tokens_per_s": speed,
        "prompt_tokens": reply.prompt_tokens if reply is not None else None,
        "completion_tokens": reply.completion_tokens if reply is not None else None,
        "cost": cost_of(reply, coord.config.prices, choice.model) if reply is not None else None,
    }
