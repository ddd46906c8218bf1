"""B5 — TUI responsiveness: 20 sessions streaming 1,000 tokens/s in total while keys are
pressed (headless pilot): event-loop lag p95/max and keypress -> updated widget latency
p95, against the same app idle, in the same run. The server runs in a child process.

    python bench/b5_tui.py [--sessions 20] [--rate 1000] [--seconds 6]

Lag: a 10 ms ticker's lateness. Keypress latency: Ctrl+Down (next session) until the chat
pane shows the new session, and a typed character until it is in the composer.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path

from common import ServerProcess, line, loop_lag, pct  # noqa: E402  (bench/common.py; sets sys.path)

from chatplex.config import Config, ProviderConfig
from chatplex.tui.app import ChatplexApp


async def measure(url: str, sessions: int, seconds: float, folder: Path, streaming: bool) -> dict[str, list[float]]:
    config = Config(
        path=None,
        db_path=folder / "b5.db",
        log_dir=folder,
        default_provider="local",
        workers=sessions,
        providers={"local": ProviderConfig(name="local", kind="openai", base_url=url, model="m")},
    )
    app = ChatplexApp(config)
    lags: list[float] = []
    keys: list[float] = []
    typing: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        ids = []
        for i in range(sessions):
            session = await app.coord.create_session(f"session {i}")
            ids.append(session.id)
            if streaming:
                await app.coord.send(session.id, "stream please")
        await app.focus_session(ids[0])
        await pilot.pause()
        stop = time.perf_counter() + seconds

        async def presser() -> None:
            while time.perf_counter() < stop:
                before = app.current
                t = time.perf_counter()
                app.simulate_key("ctrl+down")
                while app.chat.session is None or app.chat.session.id == before:
                    await asyncio.sleep(0)
                keys.append(time.perf_counter() - t)
                text = app.composer.text
                t = time.perf_counter()
                app.composer.focus()
                app.simulate_key("x")
                while app.composer.text == text:
                    await asyncio.sleep(0)
                typing.append(time.perf_counter() - t)
                await asyncio.sleep(0.1)

        await asyncio.gather(loop_lag(stop, lags), presser())
    return {"lag": lags, "key": keys, "type": typing}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--rate", type=float, default=1000, help="tokens/s over all sessions")
    ap.add_argument("--seconds", type=float, default=6)
    args = ap.parse_args()
    logging.getLogger("chatplex").setLevel(logging.WARNING)
    delay = args.sessions / args.rate
    server = ServerProcess([{"reply": "token", "forever": True, "token_delay": delay}])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "idle").mkdir()
            (Path(tmp) / "busy").mkdir()
            idle = asyncio.run(measure(server.urls[0], args.sessions, args.seconds, Path(tmp) / "idle", False))
            busy = asyncio.run(measure(server.urls[0], args.sessions, args.seconds, Path(tmp) / "busy", True))
    finally:
        server.close()
    ms = lambda xs, p: pct(xs, p) * 1000  # noqa: E731
    print(
        line(
            "B5 event-loop lag p95, streaming",
            ms(busy["lag"], 95),
            ms(idle["lag"], 95),
            "p95 < 50 ms",
            ms(busy["lag"], 95) < 50,
            "ms",
            ".1f",
        )
    )
    print(
        line(
            "B5 event-loop lag max, streaming", max(busy["lag"]) * 1000, max(idle["lag"]) * 1000, "-", True, "ms", ".1f"
        )
    )
    print(
        line(
            "B5 key -> next session shown p95",
            ms(busy["key"], 95),
            ms(idle["key"], 95),
            "p95 < 50 ms",
            ms(busy["key"], 95) < 50,
            "ms",
            ".1f",
        )
    )
    print(
        line(
            "B5 key -> character in composer p95",
            ms(busy["type"], 95),
            ms(idle["type"], 95),
            "p95 < 50 ms",
            ms(busy["type"], 95) < 50,
            "ms",
            ".1f",
        )
    )


if __name__ == "__main__":
    main()
