"""What the benchmark scripts share: the output line, percentiles, a fake server process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "src"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def line(
    name: str, value: float, baseline: float | None, target: str, ok: bool, unit: str = "", fmt: str = ",.1f"
) -> str:
    """name, value, baseline, ratio, target, ok/short — one figure per line."""
    ratio = f"{value / baseline:6.2f}x" if baseline else "      -"
    base = f"{baseline:>10{fmt}}" if baseline is not None else f"{'-':>10}"
    return f"{name:<44} {value:>10{fmt}} {unit:<5} {base} {ratio}  target {target:<26} {'ok' if ok else 'short'}"


async def loop_lag(until: float, into: list[float], period: float = 0.01) -> None:
    """Event-loop lag: how late a `period` sleep wakes up, until time.perf_counter() >= until."""
    import asyncio
    import time

    while time.perf_counter() < until:
        t = time.perf_counter()
        await asyncio.sleep(period)
        into.append(max(0.0, time.perf_counter() - t - period))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class ServerProcess:
    """tests/fakeserver.py in a child process, so its CPU is not the measured process's."""

    def __init__(self, specs: list[dict]) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakeserver", json.dumps(specs)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        self.urls: list[str] = json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)
