"""B12 — a runaway reply: 10 MB streamed as fast as the fake server can send it into the
session on screen, while characters are typed into the composer (headless pilot): event-loop
lag p95/max, key -> character in the composer p95/max, and the time until the reply's last
words are on screen; against the same app idle, in the same run. The server runs in a child
process.

    python bench/b12_big_reply.py [--mb 10] [--timeout 180]

Lag: a 10 ms ticker's lateness, from the send until the reply's end is shown (or the timeout).
Then: away to another session and back, until the reply's end is on screen again (the idle
run: back to its empty session).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, line, loop_lag, pct  # bench/common.py; it sets sys.path

from chatplex.config import Config, ProviderConfig
from chatplex.tui.app import ChatplexApp

END = "THE-END-OF-THE-RUNAWAY"
# One scenario whose reply is `words` tokens of 23 characters, a newline every 8 (lines of
# ~200 characters, no blank line: one endless Markdown paragraph, the worst case). Built in
# the child: 10 MB would not fit in a command-line argument.
SERVER = """
import json, sys
from tests.fakeserver import FakeServer
words = int(sys.argv[1])
tokens = [f"runaway-{i:08d}-lorem" + ("\\n" if i % 8 == 7 else "") for i in range(words)]
server = FakeServer()
url = server.scenario(reply=" ".join(tokens) + " " + sys.argv[2]).url
print(json.dumps([url]), flush=True)
sys.stdin.read()
server.close()
"""


class BigReplyServer:
    def __init__(self, megabytes: float) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
        words = int(megabytes * 1_000_000 / 23.125)  # 22 characters, a space, a newline per 8
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(words), END],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        self.url: str = json.loads(self.proc.stdout.readline())[0]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)


def on_screen(app: ChatplexApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def reopen(app: ChatplexApp, session_id: int, shown: str) -> tuple[float, list[float]]:
    """Away to a new session (ctrl+n) and back (ctrl+down): the time until `shown` is on
    screen again, and the loop lag meanwhile."""
    app.simulate_key("ctrl+n")
    while app.current == session_id or app.chat.session is None or app.chat.session.id != app.current:
        await asyncio.sleep(0.01)
    lags: list[float] = []
    done = asyncio.Event()

    async def lag() -> None:
        while not done.is_set():
            await loop_lag(time.perf_counter() + 0.05, lags)

    async def back() -> float:
        t = time.perf_counter()
        app.simulate_key("ctrl+down")
        while app.current != session_id or shown not in on_screen(app):
            await asyncio.sleep(0.01)
        done.set()
        return time.perf_counter() - t

    took, _ = await asyncio.gather(back(), lag())
    return took, lags


async def measure(url: str, folder: Path, streaming: bool, seconds: float, timeout: float) -> dict[str, object]:
    config = Config(
        path=None,
        db_path=folder / "b12.db",
        log_dir=folder,
        default_provider="local",
        workers=1,
        providers={"local": ProviderConfig(name="local", kind="openai", base_url=url, model="m")},
    )
    app = ChatplexApp(config)
    lags: list[float] = []
    typing: list[float] = []
    result: dict[str, object] = {"lag": lags, "type": typing, "shown": None}
    async with app.run_test(size=(120, 40)) as pilot:
        await app.ready.wait()
        session = await app.coord.create_session("runaway")
        await app.focus_session(session.id)
        await pilot.pause()
        start = time.perf_counter()
        if streaming:
            await app.coord.send(session.id, "write forever")
        stop = start + (timeout if streaming else seconds)
        done = asyncio.Event()

        async def typist() -> None:
            while not done.is_set() and time.perf_counter() < stop:
                text = app.composer.text
                t = time.perf_counter()
                app.composer.focus()
                app.simulate_key("x")
                while app.composer.text == text and time.perf_counter() < stop:
                    await asyncio.sleep(0)
                typing.append(time.perf_counter() - t)
                await asyncio.sleep(0.05)

        async def watcher() -> None:
            while time.perf_counter() < stop:
                await asyncio.sleep(0.25)
                text = on_screen(app)  # in both runs: it costs the loop some time too
                if streaming and END in text:
                    result["shown"] = time.perf_counter() - start
                    break
                if not streaming and time.perf_counter() >= start + seconds:
                    break
            done.set()

        async def lag() -> None:
            while not done.is_set() and time.perf_counter() < stop:
                await loop_lag(min(stop, time.perf_counter() + 0.5), lags)

        await asyncio.gather(lag(), typist(), watcher())
        if streaming and result["shown"] is not None:
            result["length"] = sum(r.length for r in app.chat.replies.values())
        if not streaming or result["shown"] is not None:
            result["reopen"], result["reopen_lag"] = await reopen(app, session.id, END if streaming else "runaway")
        await app.action_quit()
    return result


def ms(values: list[float], p: float) -> float:
    return pct(values, p) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=10, help="reply size in megabytes")
    ap.add_argument("--seconds", type=float, default=4, help="idle baseline length")
    ap.add_argument("--timeout", type=float, default=180, help="give up on the reply being shown after this")
    args = ap.parse_args()
    logging.getLogger("chatplex").setLevel(logging.WARNING)
    server = BigReplyServer(args.mb)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "idle").mkdir()
            (Path(tmp) / "busy").mkdir()
            idle = asyncio.run(measure(server.url, Path(tmp) / "idle", False, args.seconds, args.timeout))
            busy = asyncio.run(measure(server.url, Path(tmp) / "busy", True, args.seconds, args.timeout))
    finally:
        server.close()
    lag, idle_lag = busy["lag"], idle["lag"]
    typing, idle_typing = busy["type"], idle["type"]
    mb = f"{args.mb:g} MB"
    print(
        line(
            f"B12 event-loop lag p95, {mb} reply streaming",
            ms(lag, 95),
            ms(idle_lag, 95),
            "p95 < 50 ms",
            ms(lag, 95) < 50,
            "ms",
            ".1f",
        )
    )
    print(
        line(
            f"B12 event-loop lag max, {mb} reply streaming",
            max(lag) * 1000,
            max(idle_lag) * 1000,
            "max < 100 ms",
            max(lag) < 0.1,
            "ms",
            ".1f",
        )
    )
    print(
        line(
            "B12 key -> character in composer p95",
            ms(typing, 95),
            ms(idle_typing, 95),
            "p95 < 50 ms",
            ms(typing, 95) < 50,
            "ms",
            ".1f",
        )
    )
    print(
        line(
            "B12 key -> character in composer max",
            max(typing) * 1000,
            max(idle_typing) * 1000,
            "max < 100 ms",
            max(typing) < 0.1,
            "ms",
            ".1f",
        )
    )
    if "reopen" in busy:
        print(
            line(
                f"B12 reopen the session holding the {mb} reply",
                float(busy["reopen"]) * 1000,
                float(idle["reopen"]) * 1000,
                "< 500 ms",
                float(busy["reopen"]) < 0.5,
                "ms",
                ".1f",
            )
        )
        print(
            line(
                "B12 loop lag max while reopening",
                max(busy["reopen_lag"]) * 1000,
                max(idle["reopen_lag"]) * 1000,
                "max < 100 ms",
                max(busy["reopen_lag"]) < 0.1,
                "ms",
                ".1f",
            )
        )
    shown = busy["shown"]
    if shown is None:
        print(line(f"B12 {mb} reply: its end on screen after", args.timeout, None, "shown at all", False, "s"))
    else:
        print(
            line(
                f"B12 {mb} reply: its end on screen after",
                float(shown),
                None,  # type: ignore[arg-type]
                f"shown ({busy['length']:,} chars)",
                True,
                "s",
            )
        )


if __name__ == "__main__":
    main()
