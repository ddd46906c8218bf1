"""Helpers for CLI tests that need more than `subprocess.run` with pipes: bytes in and out,
a real pseudo-terminal as the child's stdout/stderr, a child left running while another
process acts on the same database, and reads of that database."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakeserver import FakeServer, Scenario
from tests.helpers import env_with_src

Arg = str | bytes


@dataclass
class Done:
    code: int
    out: bytes
    err: bytes

    @property
    def err_lines(self) -> list[str]:
        return self.err.decode("utf-8", "replace").strip().splitlines()


class Running:
    """A chatplex child with piped stdout/stderr, read by threads as it writes."""

    def __init__(self, proc: subprocess.Popen[bytes]):
        self.proc = proc
        self.out = bytearray()
        self.err = bytearray()
        self._threads = [
            threading.Thread(target=self._drain, args=(pipe, buf), daemon=True)
            for pipe, buf in ((proc.stdout, self.out), (proc.stderr, self.err))
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _drain(pipe: Any, buf: bytearray) -> None:
        while chunk := pipe.read1(65536):
            buf.extend(chunk)

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30) -> Done:
        """The exit; a child still running after `timeout` is killed and the test fails."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"chatplex did not exit within {timeout}s; stderr: {bytes(self.err)!r}") from None
        for t in self._threads:
            t.join(10)
        return Done(code, bytes(self.out), bytes(self.err))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Cli:
    """chatplex as a child process against the test's own database and config."""

    def __init__(self, tmp_path: Path, fake: FakeServer):
        self.tmp_path = tmp_path
        self.fake = fake
        self.db_path = tmp_path / "chatplex.db"
        self._children: list[Running] = []

    def provider(self, **scenario: Any) -> Scenario:
        """Point the config's only provider at a new fake-server scenario."""
        s = self.fake.scenario(**scenario)
        (self.tmp_path / "config.toml").write_text(
            f'[providers.fake]\nkind = "openai"\nbase_url = "{s.url}"\nmodel = "fake-small"\napi_key_env = ""\n'
        )
        return s

    def _cmd(self, args: tuple[Arg, ...]) -> list[Arg]:
        return [sys.executable, "-m", "chatplex", *args]

    def run(self, *args: Arg, stdin: bytes | None = None, code: int | None = 0, timeout: float = 60) -> Done:
        """Run to the end with pipes; check the exit code (unless `code` is None). Exit 2 must
        be one line on stderr and no traceback."""
        r = subprocess.run(
            self._cmd(args),
            input=b"" if stdin is None else stdin,
            capture_output=True,
            check=False,
            env=env_with_src(),
            cwd=self.tmp_path,
            timeout=timeout,
        )
        done = Done(r.returncode, r.stdout, r.stderr)
        if code is not None:
            assert done.code == code, (args, done)
        if code == 2:
            assert len(done.err_lines) == 1 and b"Traceback" not in done.err, done
        return done

    def start(self, *args: Arg) -> Running:
        proc = subprocess.Popen(
            self._cmd(args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env_with_src(),
            cwd=self.tmp_path,
        )
        child = Running(proc)
        self._children.append(child)
        return child

    def tty(self, *args: Arg, code: int = 0, timeout: float = 60) -> Done:
        """Run with a real pseudo-terminal as stdout and another as stderr (raw mode: the
        bytes read are the bytes written, no \\n -> \\r\\n)."""
        masters, slaves = [], []
        for _ in range(2):
            master, slave = os.openpty()
            tty.setraw(slave)
            masters.append(master)
            slaves.append(slave)
        bufs = [bytearray(), bytearray()]

        def drain(fd: int, buf: bytearray) -> None:
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: every writer closed its end
                    return
                if not chunk:
                    return
                buf.extend(chunk)

        try:
            proc = subprocess.Popen(
                self._cmd(args),
                stdin=subprocess.DEVNULL,
                stdout=slaves[0],
                stderr=slaves[1],
                env=env_with_src(),
                cwd=self.tmp_path,
            )
        finally:
            for fd in slaves:
                os.close(fd)
        threads = [threading.Thread(target=drain, args=(m, b), daemon=True) for m, b in zip(masters, bufs, strict=True)]
        for t in threads:
            t.start()
        try:
            rc = proc.wait(timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for t in threads:
                t.join(10)
            for fd in masters:
                os.close(fd)
        done = Done(rc, bytes(bufs[0]), bytes(bufs[1]))
        assert done.code == code, (args, done)
        return done

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the database as it is now (read-only: never creates it)."""
        con = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def close(self) -> None:
        for child in self._children:
            child.kill()


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Poll `condition` until it is truthy (a generous deadline, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return value
