"""Which LOW replies to interrupt so that HIGH jobs no worker can take get one: the policy,
apart from the worker loop that carries it out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from chatplex.config import Config
from chatplex.core.running import Running


def victims(
    high: Sequence[tuple[int, int, str]],
    running: Iterable[Running],
    idle: int,
    config: Config,
    focused: int | None,
) -> list[tuple[Running, int]]:
    """For each runnable HIGH job (job, session, provider), oldest first: an idle worker takes
    it, unless its provider is at its `max_concurrency`; else the live LOW reply that started
    last is interrupted (one of that provider's when its limit is what blocks). Never a tool
    call (a running tool is not interrupted), nor the focused session's reply, nor one of the
    HIGH job's own session. Returns (reply to interrupt, the session it makes way for)."""
    live = [rj for rj in running if rj.reason is None and not rj.job.is_tool]
    taken: set[int] = set()
    chosen: list[tuple[Running, int]] = []
    for _job_id, session_id, provider in high:
        pc = config.providers.get(provider)
        limit = pc.max_concurrency if pc else 0
        busy = sum(1 for rj in live if rj.session.provider == provider and rj.job.id not in taken)
        provider_full = 0 < limit <= busy
        if idle > 0 and not provider_full:
            idle -= 1
            continue
        candidates = [
            rj
            for rj in live
            if rj.job.id not in taken
            and rj.job.session_id not in (focused, session_id)
            and (not provider_full or rj.session.provider == provider)
        ]
        if not candidates:
            continue
        victim = max(candidates, key=lambda rj: rj.started)
        taken.add(victim.job.id)
        chosen.append((victim, session_id))
    return chosen
