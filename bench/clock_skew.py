"""Run a chatplex command whose wall clock steps forward by STEP seconds on SIGUSR1, as when
NTP steps a clock or a laptop resumes (and starts OFFSET seconds ahead, for the processes
that come after such a step): the clock jump fault of `bench/torture.py --faults`.

    CHATPLEX_CLOCK_STEP=60 python bench/clock_skew.py worker
    CHATPLEX_CLOCK_OFFSET=60 python bench/clock_skew.py worker --until-idle

Only `time.time` moves; the monotonic clock, which asyncio and chatplex's lease timing use,
does not, as on a real machine.
"""

from __future__ import annotations

import os
import signal
import sys
import time

_real = time.time
_offset = float(os.environ.get("CHATPLEX_CLOCK_OFFSET", "0"))
_step_by = float(os.environ.get("CHATPLEX_CLOCK_STEP", "0"))


def _skewed() -> float:
    return _real() + _offset


def _step(signum: int, frame: object) -> None:
    global _offset
    _offset += _step_by


time.time = _skewed
signal.signal(signal.SIGUSR1, _step)

from chatplex.cli import main  # noqa: E402  (after the clock is in place)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
