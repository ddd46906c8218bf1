"""A short run of bench/torture.py: `chatplex worker` killed mid-stream and restarted, with
every invariant checked over the database (the full 100-kill run is the bench script)."""

from __future__ import annotations

import importlib.util
import signal
import sys
from pathlib import Path

spec = importlib.util.spec_from_file_location("torture", Path(__file__).parents[2] / "bench" / "torture.py")
torture = importlib.util.module_from_spec(spec)
sys.modules["torture"] = torture
spec.loader.exec_module(torture)  # type: ignore[union-attr]


def test_sigkill_mid_stream_loses_nothing(tmp_path):
    result = torture.run(rounds=3, sessions=20, sig=signal.SIGKILL, seed=3, workers=8, folder=tmp_path, quiet=True)
    assert result.problems == []
    assert result.rounds == 3 and result.messages == 60
    assert result.streams_cut > 0  # the kills really landed on streaming replies
    # a kill from outside is not the reply's fault: it spends no attempt
    assert dict(result.recovered_attempts) == {1: 60}


def test_sigterm_leaves_everything_resumable_without_spending_attempts(tmp_path):
    result = torture.run(
        rounds=2, sessions=20, sig=signal.SIGTERM, seed=4, workers=8, folder=tmp_path, quiet=True, resume="regenerate"
    )
    assert result.problems == []
    assert result.streams_cut > 0
    assert dict(result.recovered_attempts) == {1: 40}


def test_faults_mode_lock_holds_clock_steps_and_odd_chunks_lose_nothing(tmp_path):
    result = torture.run(
        rounds=3, sessions=12, sig=signal.SIGKILL, seed=5, workers=6, folder=tmp_path, quiet=True, faults=True
    )
    assert result.problems == []
    assert result.rounds == 3 and result.messages == 36
    assert result.lock_holds + result.clock_jumps > 0 and sum(result.odd_chunks.values()) > 0


def test_reasoning_then_answer_cut_at_random_ends_as_both_parts_whole(tmp_path):
    result = torture.run(
        rounds=2, sessions=16, sig=signal.SIGKILL, seed=6, workers=8, folder=tmp_path, quiet=True, reasoning=True
    )
    assert result.problems == []  # each reply: the whole thought, then the whole answer, in order
    assert result.rounds == 2 and result.streams_cut > 0
