"""Bad input is one line on stderr and exit 2: no traceback, no hang, no orphan session, and
nothing deleted or cancelled by a look-alike of an id."""

from __future__ import annotations

import os

import pytest

from chatplex.core.coordinator import MAX_MESSAGE

BIG = str(2**63)  # one past SQLite's largest integer


def sessions(cli) -> list[tuple[int, str]]:
    if not cli.db_path.exists():  # refused before the database was even opened
        return []
    return cli.query("SELECT id, title FROM sessions ORDER BY id")


def test_send_refuses_a_message_over_the_limit_before_making_a_session(cli):
    err = cli.run("send", "-", stdin=b"x" * (MAX_MESSAGE + 1), code=2).err.decode()
    assert "too long" in err
    assert sessions(cli) == []


def test_send_refuses_invalid_utf8_on_stdin(cli):
    err = cli.run("send", "-", stdin=b"caf\xe9 au lait", code=2).err.decode()
    assert "not valid UTF-8" in err and "stdin" in err
    assert sessions(cli) == []


def test_send_refuses_invalid_utf8_in_argv(cli):
    err = cli.run("send", b"caf\xe9", code=2).err.decode()  # arrives as a lone surrogate
    assert "not valid UTF-8" in err
    assert sessions(cli) == []
    cli.run("send", "ok")
    assert "not valid UTF-8" in cli.run("rename", "1", b"bad\xff", code=2).err.decode()
    assert "not valid UTF-8" in cli.run("show", b"\xff", code=2).err.decode()
    assert sessions(cli) == [(1, "ok")]


@pytest.mark.parametrize("ref", ["²", "١"])
def test_a_non_ascii_digit_is_a_title_not_an_id(cli, ref):
    cli.run("send", "first")
    assert f"no session '{ref}'" in cli.run("show", ref, code=2).err.decode()
    assert f"no session '{ref}'" in cli.run("rm", ref, code=2).err.decode()
    assert sessions(cli) == [(1, "first")]  # `rm ١` used to delete session 1
    cli.run("rename", "1", ref)
    assert cli.run("show", ref, "--json").code == 0  # and as a title it is found


def test_huge_ids_are_not_found(cli):
    cli.run("send", "first")
    assert f"no session '{BIG}'" in cli.run("show", BIG, code=2).err.decode()
    assert f"no session '{BIG}'" in cli.run("rm", BIG, code=2).err.decode()
    assert "no session" in cli.run("send", "--session", BIG, "x", code=2).err.decode()
    for action in ("cancel", "retry"):
        assert f"no job {BIG}" in cli.run("jobs", action, BIG, code=2).err.decode()
    assert sessions(cli) == [(1, "first")]


def test_job_ids_must_be_ascii_digits(cli):
    cli.run("send", "--no-wait", "queued")
    for action in ("cancel", "retry"):
        assert "bad job id '١'" in cli.run("jobs", action, "١", code=2).err.decode()
        assert "bad job id 'x'" in cli.run("jobs", action, "x", code=2).err.decode()
    assert cli.query("SELECT id, state FROM jobs") == [(1, "queued")]  # not cancelled as job 1


def test_db_that_is_not_a_regular_file_is_refused_without_hanging(cli, tmp_path):
    fifo = tmp_path / "fifo.db"
    os.mkfifo(fifo)
    err = cli.run("--db", str(fifo), "sessions", code=2, timeout=30).err.decode()
    assert "not a regular file" in err
    err = cli.run("--db", "/dev/null", "sessions", code=2, timeout=30).err.decode()
    assert "not a regular file" in err
