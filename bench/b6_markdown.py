"""B6's cost explained: mounting a page of replies as Textual's Markdown widgets against the
same text as one Static each, in a bare Textual app, same process, interleaved rounds.

    python bench/b6_markdown.py [--replies 4] [--rounds 6]

Each reply is a paragraph with bold, a two-item list and a fenced code block, like the B6
database's. A round mounts them all, waits for the app to go idle, and removes them; the
figure is the minimum over the rounds (the first of each kind warms Pygments and the parser).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from common import line  # noqa: E402  (bench/common.py; sets sys.path)

TEXT = "Answer {k}: **bold**, a list\n\n- one\n- two\n\n```python\nprint({k})\n```\n"


async def main(replies: int, rounds: int) -> None:
    from textual.app import App
    from textual.containers import VerticalScroll
    from textual.widgets import Markdown, Static

    class Bare(App[None]):
        def compose(self):
            yield VerticalScroll(id="pane")

    app = Bare()
    times: dict[str, list[float]] = {"markdown": [], "static": []}
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one("#pane")
        for _ in range(rounds):
            for kind in times:
                start = time.perf_counter()
                texts = [TEXT.format(k=k) for k in range(replies)]
                widgets = [Markdown(t) if kind == "markdown" else Static(t, markup=False) for t in texts]
                await pane.mount_all(widgets)
                await pilot.pause()
                times[kind].append(time.perf_counter() - start)
                await pane.remove_children()
    md, st = min(times["markdown"]) * 1000, min(times["static"]) * 1000
    print(line(f"{replies} replies mounted as Markdown", md, st, "(explains B6; no target)", True, "ms"))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--replies", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    asyncio.run(main(args.replies, args.rounds))
