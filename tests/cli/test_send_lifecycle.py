"""A waiting `chatplex send` ends when its job is cancelled or its session deleted by another
process, gives its job back on SIGTERM/SIGINT, and prints a retried reply once."""

from __future__ import annotations

import signal
import sqlite3
import time

import pytest

from chatplex.core.queue import backoff
from tests.cli.helpers import wait_until
from tests.fakeserver import Fault

WORDS = " ".join(f"w{i}" for i in range(20))


def job_row(cli) -> tuple[int, str, int, float] | None:
    try:
        rows = cli.query("SELECT id, state, attempts, run_after FROM jobs ORDER BY id")
    except sqlite3.OperationalError:  # the child has not made the database yet
        return None
    return rows[0] if rows else None


def waiting(cli, phase: str, scenario) -> tuple[int, str, int, float]:
    """Wait until the only job streams (the server has a stream open) or waits for a retry."""
    if phase == "streaming":
        wait_until(lambda: scenario.active == 1, "the reply to stream")
        return wait_until(lambda: (r := job_row(cli)) and r[1] == "running" and r, "the job to run")
    return wait_until(lambda: (r := job_row(cli)) and r[1] == "queued" and r[2] == 1 and r, "the retry to be scheduled")


@pytest.mark.parametrize("phase", ["streaming", "queued"])
@pytest.mark.parametrize("action", ["cancel", "rm"])
def test_send_ends_when_another_process_cancels_or_deletes(cli, action, phase):
    if phase == "streaming":
        s = cli.provider(reply="tok", forever=True, token_delay=0.01)
    else:  # the first try is rate-limited: the job waits (capped at 300 s) for its retry
        s = cli.provider(faults=[Fault(status=429, headers={"retry-after": "3600"})])
    child = cli.start("send", "wait for me")
    job_id = waiting(cli, phase, s)[0]
    if action == "cancel":
        cli.run("jobs", "cancel", str(job_id))
    else:
        cli.run("rm", "1")
    done = child.wait(30)
    assert done.code == 1, done
    last = done.err_lines[-1]
    assert ("cancelled" in last) if action == "cancel" else ("deleted" in last), done
    if phase == "queued":
        assert len(done.err_lines) == 2 and "retrying in 300s" in done.err_lines[0], done
    else:
        assert len(done.err_lines) == 1, done


def test_sigterm_gives_the_streaming_job_back_without_spending_an_attempt(cli):
    s = cli.provider(reply="tok", forever=True, token_delay=0.01)
    child = cli.start("send", "long one")
    waiting(cli, "streaming", s)
    child.signal(signal.SIGTERM)
    done = child.wait(30)
    assert done.code == 143 and len(done.err_lines) == 1, done
    assert "stays queued" in done.err_lines[0], done
    assert cli.query("SELECT state, attempts FROM jobs") == [("queued", 0)]
    assert cli.query("SELECT state FROM messages WHERE role='assistant'") == [("interrupted",)]


def test_long_retry_after_is_capped_said_and_sigint_leaves_the_job_queued(cli):
    cli.provider(faults=[Fault(status=429, headers={"retry-after": "86400"})])
    before = time.time()
    child = cli.start("send", "rate limited")
    wait_until(lambda: b"\n" in child.err, "the retry line on stderr")
    line = child.err.decode().splitlines()[0]
    assert "asked to wait 86400s" in line and "retrying in 300s" in line, line
    _, state, attempts, run_after = job_row(cli)
    assert state == "queued" and attempts == 1 and run_after <= time.time() + 300
    assert run_after >= before + 299  # capped, not dropped: the server did ask us to wait
    child.signal(signal.SIGINT)
    done = child.wait(30)
    assert done.code == 130 and len(done.err_lines) == 2, done
    assert "stays queued" in done.err_lines[1], done
    assert job_row(cli)[1:3] == ("queued", 1)


def test_backoff_caps_retry_after_at_300s():
    assert backoff(1, retry_after=86400) == 300
    assert backoff(1, retry_after=12) == 12


def test_a_retried_reply_is_printed_once_to_a_pipe(cli):
    cli.provider(reply=WORDS, token_delay=0.01, faults=[Fault(reset_after=8)])
    done = cli.run("send", "flaky")
    assert done.out == (WORDS + "\n").encode()
    assert len(done.err_lines) == 1 and "retrying in" in done.err_lines[0], done


def test_a_retried_reply_restarts_on_a_terminal(cli):
    cli.provider(reply=WORDS, token_delay=0.01, faults=[Fault(reset_after=8)])
    done = cli.tty("send", "flaky")
    out = done.out.decode()
    assert out.endswith("\n" + WORDS + "\n"), out
    partial = out[: -len(WORDS) - 1]
    # the failed try, ended with a newline of its own
    assert partial.endswith("\n") and WORDS.startswith(partial[:-1]), out
    err = done.err.decode()
    assert "retrying in" in err and "starts again" in err, err
    assert "w0 w1" in partial  # the first try did stream before it broke


def test_a_row_read_before_the_streamed_text_was_stored_does_not_restart_the_reply(capsys):
    """`send` on a terminal shows deltas as they come and sometimes reads the reply's row too.
    A row read before those deltas were stored is behind what is shown: the reply did not
    start again (CI once printed it twice, with "the reply starts again")."""
    from chatplex.cli.follow import Follow

    follow = Follow(None, 1, as_json=False)  # type: ignore[arg-type]  # no coordinator needed
    follow.live = True
    follow._write("hello")
    follow._catch_up("")  # the row as stored before the stream's first flush
    follow._catch_up("hel")
    follow._catch_up("hello world")  # the row is ahead: the rest is shown
    out, err = capsys.readouterr()
    assert (out, err) == ("hello world", "")
    follow._catch_up("goodbye")  # a different text: a new attempt, shown from its start
    out, err = capsys.readouterr()
    assert out == "\ngoodbye" and "starts again" in err
