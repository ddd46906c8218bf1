"""B4 — streaming throughput: 50 sessions streaming at once from the local server through
coordinator + persistence, against a plain httpx client reading the same 50 streams with no
coordinator, in the same run. The server runs in a child process.

    python bench/b4_streaming.py [--sessions 50] [--tokens 1000] [--repeat 3] [--reasoning]

With --reasoning (B4r) each reply is half reasoning deltas, then half text deltas: the
baseline counts both kinds of delta, chatplex stores both as parts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
from pathlib import Path

import httpx
from common import ServerProcess, line  # noqa: E402  (bench/common.py; sets sys.path)

from chatplex.config import Config, ProviderConfig
from chatplex.core.coordinator import Coordinator
from chatplex.core.db import Store
from chatplex.core.events import ReplyFinished


async def plain_httpx(url: str, sessions: int) -> tuple[int, float]:
    """The baseline: read the streams with httpx and parse each data line's JSON. Its clock
    starts before the client is made, as chatplex's includes making its provider's client."""
    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=256)) as client:

        async def one() -> int:
            n = 0
            body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "go"}]}
            async with client.stream("POST", url + "/chat/completions", json=body) as response:
                async for text in response.aiter_lines():
                    if text.startswith("data: {"):
                        chunk = json.loads(text[6:])
                        for c in chunk.get("choices", ()):
                            delta = c.get("delta", {})
                            n += bool(delta.get("content") or delta.get("reasoning_content"))
            return n

        counts = await asyncio.gather(*(one() for _ in range(sessions)))
        return sum(counts), time.perf_counter() - t0


async def through_chatplex(url: str, sessions: int, folder: Path) -> tuple[int, float]:
    config = Config(
        path=None,
        db_path=folder / "b4.db",
        log_dir=folder,
        default_provider="local",
        workers=sessions,
        providers={"local": ProviderConfig(name="local", kind="openai", base_url=url, model="m")},
    )
    coord = Coordinator(config, await Store.open(config.db_path))
    ids = [(await coord.create_session(f"s{i}")).id for i in range(sessions)]
    left = set()
    done = asyncio.Event()

    def on(event: object) -> None:
        if isinstance(event, ReplyFinished) and event.message.id in left:
            left.discard(event.message.id)
            if not left:
                done.set()

    coord.bus.subscribe(on)
    for sid in ids:
        left.add((await coord.send(sid, "go"))[1].id)
    t0 = time.perf_counter()
    await coord.start()
    await done.wait()
    elapsed = time.perf_counter() - t0
    tokens = 0
    for sid in ids:
        tokens += sum(m.completion_tokens or 0 for m in await coord.messages(sid) if m.role.value == "assistant")
    await coord.stop()
    return tokens, elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--tokens", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--reasoning", action="store_true", help="B4r: half reasoning, half text")
    args = ap.parse_args()
    logging.getLogger("chatplex").setLevel(logging.WARNING)
    words = [f"t{i}" for i in range(args.tokens)]
    half = args.tokens // 2
    scenario: dict[str, object] = (
        {"parts": [["reasoning", " ".join(words[:half])], ["text", " ".join(words[half:])]]}
        if args.reasoning
        else {"reply": " ".join(words)}
    )
    server = ServerProcess([scenario])
    url = server.urls[0]
    base_rates, rates = [], []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.repeat):  # interleaved, so drift hits both alike
                n, s = asyncio.run(plain_httpx(url, args.sessions))
                base_rates.append(n / s)
                folder = Path(tmp) / str(r)
                folder.mkdir()
                n2, s2 = asyncio.run(through_chatplex(url, args.sessions, folder))
                assert n2 == n == args.sessions * args.tokens, (n, n2)
                rates.append(n2 / s2)
    finally:
        server.close()
    best, base = max(rates), max(base_rates)
    print(
        line(
            f"B4{'r' if args.reasoning else ''} {args.sessions} streams via coordinator",
            best,
            base,
            ">= 0.95x plain httpx",
            best / base >= 0.95,
            "tok/s",
            ",.0f",
        )
    )


if __name__ == "__main__":
    main()
