"""Dashboard smoothness (issue 7): the dashboard open over 50 sessions, 20 of them streaming
(1,000 tokens/s in total), while the selection moves: event-loop lag p95/max, against the
same dashboard with nothing streaming, in the same run.

    python bench/b9_dashboard.py [--sessions 50] [--streaming 20] [--rate 1000] [--seconds 6] [--parked 0]

With --parked N (B11's second figure), N more sessions wait on a tool call that asks for
approval (faulty.py's echo over stdio) while the others stream: the loudest marks, on the
dashboard and in the sidebar (measured on the main screen too).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import tempfile
import time
from pathlib import Path

from common import ServerProcess, line, loop_lag, pct  # noqa: E402  (bench/common.py; sets sys.path)

from chatplex.config import Config, ProviderConfig
from chatplex.tui.app import ChatplexApp
from chatplex.tui.screens.dashboard import DashboardScreen
from tests.tools.helpers import faulty_server


async def measure(
    url: str,
    sessions: int,
    streaming: int,
    seconds: float,
    folder: Path,
    parked: int = 0,
    agent_url: str = "",
    dashboard: bool = True,
) -> list[float]:
    providers = {"local": ProviderConfig(name="local", kind="openai", base_url=url, model="m")}
    if parked:
        providers["agent"] = ProviderConfig(name="agent", kind="openai", base_url=agent_url, model="m")
    config = Config(
        path=None,
        db_path=folder / "b9.db",
        log_dir=folder,
        default_provider="local",
        workers=max(streaming, 1),
        providers=providers,
    )
    if parked:
        config = dataclasses.replace(config, mcp={"faulty": faulty_server(approval="ask")})
    app = ChatplexApp(config)
    lags: list[float] = []
    async with app.run_test(size=(160, 50)):
        waiting = []
        for i in range(parked):
            session = await app.coord.create_session(f"agent {i}", provider="agent")
            await app.coord.send(session.id, "echo x")
            waiting.append(session.id)
        while parked and len(await app.coord.approvals()) < parked:
            await asyncio.sleep(0.05)
        for i in range(sessions):
            session = await app.coord.create_session(f"session {i}")
            if i < streaming:
                await app.coord.send(session.id, "stream please")
        if dashboard:
            app.action_dashboard()
            while not isinstance(app.screen, DashboardScreen) or not app.screen.tiles:
                await asyncio.sleep(0.01)
        stop = time.perf_counter() + seconds

        async def mover() -> None:
            keys = ["right", "right", "down", "left", "up"] if dashboard else ["ctrl+down", "ctrl+down", "ctrl+up"]
            n = 0
            while time.perf_counter() < stop:
                app.simulate_key(keys[n % len(keys)])
                n += 1
                await asyncio.sleep(0.1)

        await asyncio.gather(loop_lag(stop, lags), mover())
    return lags


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--streaming", type=int, default=20)
    ap.add_argument("--rate", type=float, default=1000, help="tokens/s over all streaming sessions")
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--parked", type=int, default=0, help="sessions waiting on an approval meanwhile (B11)")
    args = ap.parse_args()
    logging.getLogger("chatplex").setLevel(logging.WARNING)
    if args.parked:
        return parked_figures(args)
    server = ServerProcess([{"reply": "token", "forever": True, "token_delay": args.streaming / args.rate}])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "idle").mkdir()
            (Path(tmp) / "busy").mkdir()
            idle = asyncio.run(measure(server.urls[0], args.sessions, 0, args.seconds, Path(tmp) / "idle"))
            busy = asyncio.run(measure(server.urls[0], args.sessions, args.streaming, args.seconds, Path(tmp) / "busy"))
    finally:
        server.close()
    p95 = pct(busy, 95) * 1000
    print(
        line(
            f"B9 dashboard lag p95, {args.streaming}/{args.sessions} streaming",
            p95,
            pct(idle, 95) * 1000,
            "p95 < 50 ms",
            p95 < 50,
            "ms",
            ".1f",
        )
    )
    print(line("B9 dashboard lag max", max(busy) * 1000, max(idle) * 1000, "-", True, "ms", ".1f"))


def parked_figures(args: argparse.Namespace) -> None:
    """B11: loop lag with `parked` sessions waiting for approval and `streaming` streaming,
    on the dashboard and on the main screen (the sidebar), against neither in the same run."""
    specs = [
        {"reply": "token", "forever": True, "token_delay": args.streaming / args.rate},
        {"parts": [["tool", "echo", '{"text": "x"}']], "after_tool": "done"},
    ]
    server = ServerProcess(specs)
    url, agent = server.urls
    try:
        for dashboard in (True, False):
            with tempfile.TemporaryDirectory() as tmp:
                idle = asyncio.run(measure(url, args.sessions, 0, args.seconds, Path(tmp) / "i", dashboard=dashboard))
                busy = asyncio.run(
                    measure(
                        url, args.sessions, args.streaming, args.seconds, Path(tmp) / "b", args.parked, agent, dashboard
                    )
                )
            where = "dashboard" if dashboard else "sidebar"
            p95 = pct(busy, 95) * 1000
            name = f"B11 {where} lag p95, {args.parked} parked + {args.streaming} streaming"
            print(line(name, p95, pct(idle, 95) * 1000, "p95 < 50 ms", p95 < 50, "ms", ".1f"))
    finally:
        server.close()


if __name__ == "__main__":
    main()
