"""B8 — database writes per streamed reply of 1,000 tokens (target: at most one write per
100 ms of streaming, plus 2: the claim and the completion).

    python bench/b8_writes.py [--tokens 1000] [--token-delay 0.002] [--reasoning]

With --reasoning the reply is half reasoning, then half text (both stored as parts).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import tempfile
import time
from pathlib import Path

from common import line  # noqa: E402  (bench/common.py; sets sys.path)

from chatplex.config import Config, ProviderConfig
from chatplex.core.coordinator import Coordinator
from chatplex.core.db import Store
from chatplex.core.events import ReplyFinished
from tests.fakeserver import FakeServer


async def run(tokens: int, delay: float, folder: Path, reasoning: bool = False) -> tuple[int, float, int]:
    server = FakeServer()
    words = [f"t{i}" for i in range(tokens)]
    if reasoning:
        half = [("reasoning", " ".join(words[: tokens // 2])), ("text", " ".join(words[tokens // 2 :]))]
        s = server.scenario(parts=half, token_delay=delay)
    else:
        s = server.scenario(reply=" ".join(words), token_delay=delay)
    config = Config(
        path=None,
        db_path=folder / "b8.db",
        log_dir=folder,
        default_provider="local",
        workers=1,
        providers={"local": ProviderConfig(name="local", kind="openai", base_url=s.url, model="m")},
    )
    coord = Coordinator(config, await Store.open(config.db_path))
    session = await coord.create_session("b8")
    _, reply, _ = await coord.send(session.id, "go")
    done = asyncio.Event()
    coord.bus.subscribe(lambda e: isinstance(e, ReplyFinished) and e.message.id == reply.id and done.set())
    before = coord.store.writes
    t0 = time.perf_counter()
    await coord.start()
    await done.wait()
    elapsed = time.perf_counter() - t0
    writes = coord.store.writes - before
    streamed = (await coord.store.get_message(reply.id)).completion_tokens or 0
    await coord.stop()
    server.close()
    return writes, elapsed, streamed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=1000)
    ap.add_argument("--token-delay", type=float, default=0.002)
    ap.add_argument("--reasoning", action="store_true", help="half reasoning, half text")
    args = ap.parse_args()
    logging.getLogger("chatplex").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        writes, elapsed, streamed = asyncio.run(run(args.tokens, args.token_delay, Path(tmp), args.reasoning))
    assert streamed == args.tokens
    allowed = math.ceil(elapsed / 0.1) + 2  # one per started 100 ms period, plus claim and completion
    print(
        line(
            f"B8{'r' if args.reasoning else ''} writes for a {args.tokens}-token reply ({elapsed:.1f}s)",
            writes,
            allowed,
            "<= 1 per 100 ms + 2",
            writes <= allowed,
            "write",
            ",.0f",
        )
    )


if __name__ == "__main__":
    main()
