"""B11 — approvals at scale: 20 sessions parked on a tool call that asks; for each, from
`Coordinator.approve` (what the approve key calls) to the next model request of its turn
leaving for the server: the call runs (faulty.py's echo over stdio), its result is stored,
the next model step is claimed and its request is sent (its ReplyStarted, published as the
stream opens). The baseline is the same hop with nothing parked: one session's plain
`send` to its ReplyStarted, in the same run. Target: p95 < 50 ms.

    python bench/b11_approvals.py [--sessions 20]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import tempfile
import time
from pathlib import Path

from common import line, pct  # noqa: E402  (bench/common.py; sets sys.path)

from chatplex.config import Config, ProviderConfig
from chatplex.core.coordinator import Coordinator
from chatplex.core.events import ReplyStarted, SessionChanged
from chatplex.core.models import SessionStatus
from tests.fakeserver import FakeServer
from tests.tools.helpers import faulty_server


async def run(sessions: int, folder: Path) -> tuple[list[float], list[float]]:
    server = FakeServer()
    s = server.scenario(parts=[("tool", "echo", '{"text": "x"}')], after_tool="done")
    plain = server.scenario(reply="done")
    config = Config(
        path=None,
        db_path=folder / "b11.db",
        log_dir=folder,
        default_provider="agent",
        workers=4,
        providers={
            "agent": ProviderConfig(name="agent", kind="openai", base_url=s.url, model="m"),
            "plain": ProviderConfig(name="plain", kind="openai", base_url=plain.url, model="m"),
        },
    )
    config = dataclasses.replace(config, mcp={"faulty": faulty_server(approval="ask")})
    async with await Coordinator.open(config, start=True) as coord:
        parked: set[int] = set()
        started: dict[int, asyncio.Event] = {}

        def on_event(event: object) -> None:
            if isinstance(event, SessionChanged) and event.session.status is SessionStatus.NEEDS_APPROVAL:
                parked.add(event.session.id)
            elif isinstance(event, ReplyStarted) and event.session_id in started:
                started[event.session_id].set()

        coord.bus.subscribe(on_event)
        ids = [(await coord.create_session(f"b11-{n}", provider="agent")).id for n in range(sessions)]
        for sid in ids:
            await coord.send(sid, "echo x")
        while len(parked) < sessions:
            await asyncio.sleep(0.05)
        waiting = {a.session.id: a for a in await coord.approvals()}
        assert len(waiting) == sessions, len(waiting)
        hops = []
        for sid in ids:
            started[sid] = asyncio.Event()
            t0 = time.perf_counter()
            assert await coord.approve(waiting[sid].job.id)
            await started[sid].wait()
            hops.append(time.perf_counter() - t0)
        base = []
        one = (await coord.create_session("b11-plain", provider="plain")).id
        for _ in range(sessions):
            started[one] = asyncio.Event()
            t0 = time.perf_counter()
            await coord.send(one, "hi")
            await started[one].wait()
            base.append(time.perf_counter() - t0)
            while (await coord.store.get_session(one)).status is not SessionStatus.WAITING:
                await asyncio.sleep(0.01)
    server.close()
    return hops, base


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=20)
    args = ap.parse_args()
    logging.getLogger("chatplex").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        hops, base = asyncio.run(run(args.sessions, Path(tmp)))
    p95, b95 = pct(hops, 95) * 1000, pct(base, 95) * 1000
    print(
        line(f"B11 approve → next model request p95, {args.sessions} parked", p95, b95, "p95 < 50 ms", p95 < 50, "ms")
    )
    print(line("B11 approve → next model request p50", pct(hops, 50) * 1000, pct(base, 50) * 1000, "-", True, "ms"))


if __name__ == "__main__":
    main()
