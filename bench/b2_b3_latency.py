"""B2 — dispatch latency: `send()` → the HTTP request arrives at the local server, idle system.
B3 — preemption: every worker busy with LOW streams, a HIGH `send()` → its first token,
against the same HIGH send on an idle system (measured in the same run).

    python bench/b2_b3_latency.py [--sends 200] [--workers 4]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path

from common import line, pct  # noqa: E402  (bench/common.py; sets sys.path)

from chatplex.config import Config, ProviderConfig
from chatplex.core.coordinator import Coordinator
from chatplex.core.db import Store
from chatplex.core.events import ReplyDelta, ReplyFinished
from tests.fakeserver import FakeServer


def config(folder: Path, workers: int, **urls: str) -> Config:
    providers = {name: ProviderConfig(name=name, kind="openai", base_url=url, model="m") for name, url in urls.items()}
    return Config(
        path=None,
        db_path=folder / "bench.db",
        log_dir=folder,
        providers=providers,
        default_provider=next(iter(providers)),
        workers=workers,
    )


class Waiter:
    def __init__(self, coord: Coordinator) -> None:
        self.futures: dict[tuple[type, int], asyncio.Future] = {}
        coord.bus.subscribe(self._on)

    def _on(self, event: object) -> None:
        key = None
        if isinstance(event, ReplyDelta):
            key = (ReplyDelta, event.message_id)
        elif isinstance(event, ReplyFinished):
            key = (ReplyFinished, event.message.id)
        if key and (fut := self.futures.get(key)) and not fut.done():
            fut.set_result(time.perf_counter())

    def expect(self, kind: type, message_id: int) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self.futures[(kind, message_id)] = fut
        return fut


async def dispatch(server: FakeServer, sends: int, workers: int, folder: Path) -> list[float]:
    s = server.scenario(reply="ok")
    coord = Coordinator(config(folder / "b2", workers, fast=s.url), await Store.open(_db(folder / "b2")))
    waiter = Waiter(coord)
    await coord.start()
    session = await coord.create_session("b2")
    await coord.focus(session.id)
    latencies = []
    for _ in range(sends):
        before = len(s.arrivals)
        t0 = time.perf_counter()
        _, reply, _ = await coord.send(session.id, "hi")
        done = waiter.expect(ReplyFinished, reply.id)
        await done
        latencies.append(s.arrivals[before] - t0)
    await coord.stop()
    return latencies


def _db(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "bench.db"


async def high_first_token(server: FakeServer, sends: int, workers: int, folder: Path, busy: bool) -> list[float]:
    fast = server.scenario(reply="first token then more")
    endless = server.scenario(reply="tok", forever=True, token_delay=0.01)
    name = "busy" if busy else "idle"
    coord = Coordinator(
        config(folder / name, workers, fast=fast.url, endless=endless.url), await Store.open(_db(folder / name))
    )
    waiter = Waiter(coord)
    await coord.start()
    front = await coord.create_session("front", provider="fast")
    await coord.focus(front.id)
    if busy:
        for i in range(workers):
            bg = await coord.create_session(f"bg{i}", provider="endless")
            _, r, _ = await coord.send(bg.id, "go on forever")
            await waiter.expect(ReplyDelta, r.id)
    latencies = []
    for _ in range(sends):
        if busy:  # every worker streams LOW work again before each HIGH send
            while coord.workers_busy < workers:
                await asyncio.sleep(0.005)
        t0 = time.perf_counter()
        _, reply, _ = await coord.send(front.id, "now")
        first, done = waiter.expect(ReplyDelta, reply.id), waiter.expect(ReplyFinished, reply.id)
        latencies.append(await first - t0)
        await done
    await coord.stop()
    return latencies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sends", type=int, default=200)
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
    logging.getLogger("chatplex").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # preempted clients hang up: expected
    server = FakeServer()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        b2 = [x * 1000 for x in asyncio.run(dispatch(server, args.sends, args.workers, folder))]
        print(line("B2 dispatch send()->request p50", pct(b2, 50), None, "-", True, "ms", ".2f"))
        print(line("B2 dispatch send()->request p99", pct(b2, 99), None, "p99 < 20 ms", pct(b2, 99) < 20, "ms", ".2f"))
        n = max(20, args.sends // 4)
        idle = [x * 1000 for x in asyncio.run(high_first_token(server, n, args.workers, folder, busy=False))]
        busy = [x * 1000 for x in asyncio.run(high_first_token(server, n, args.workers, folder, busy=True))]
        for p in (50, 99):
            overhead = pct(busy, p) - pct(idle, p)
            print(
                line(
                    f"B3 HIGH first token, all busy, p{p}",
                    pct(busy, p),
                    pct(idle, p),
                    "p99 overhead < 50 ms" if p == 99 else "-",
                    p != 99 or overhead < 50,
                    "ms",
                    ".2f",
                )
            )
        print(
            line(
                "B3 preemption overhead p99",
                pct(busy, 99) - pct(idle, 99),
                None,
                "< 50 ms",
                pct(busy, 99) - pct(idle, 99) < 50,
                "ms",
                ".2f",
            )
        )
    server.close()


if __name__ == "__main__":
    main()
