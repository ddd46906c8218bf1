"""Many processes opening a new database at once (e.g. 20 scripted `chatplex sessions`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import env_with_src

# the real CLI in each process, held at a gate once its imports (the slow part) are done:
# all 20 then reach the new file at the same moment, which is when the race showed
_GATED_CLI = (
    "import sys; from chatplex import cli; print('ready', flush=True); sys.stdin.read(); "
    "sys.exit(cli.main(sys.argv[1:]))"
)


def test_concurrent_first_commands_on_a_fresh_database_all_succeed(tmp_path: Path):
    for round_ in range(4):
        db = tmp_path / f"round{round_}.db"
        gate_r, gate_w = os.pipe()  # every process reads the same pipe: closing it opens the gate for all
        try:
            procs = [
                subprocess.Popen(
                    [sys.executable, "-c", _GATED_CLI, "--db", str(db), "sessions", "--json"],
                    stdin=gate_r,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=env_with_src(),
                    cwd=tmp_path,
                )
                for _ in range(20)
            ]
        finally:
            os.close(gate_r)
        for p in procs:
            assert p.stdout is not None and p.stdout.readline() == b"ready\n"
        os.close(gate_w)
        results = [(*p.communicate(timeout=120), p.returncode) for p in procs]
        failed = [(code, err.decode()) for out, err, code in results if code != 0 or out.strip() != b"[]"]
        assert failed == [], f"round {round_}: {len(failed)} of 20 failed: {failed[:2]}"


# the set-up of the writer connection alone, at the gate: the tightest timing, where two
# processes switching a new file to WAL at once made SQLite answer one "database is locked"
_GATED_SETUP = (
    "import sqlite3, sys; from chatplex.core.db.connection import configure_writer; "
    "db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5.0); "
    "print('ready', flush=True); sys.stdin.read(); configure_writer(db); "
    "print(db.execute('PRAGMA journal_mode').fetchone()[0])"
)


def test_concurrent_set_up_of_a_fresh_file_switches_it_to_wal_in_every_process(tmp_path: Path):
    for round_ in range(10):
        db = tmp_path / f"setup{round_}.db"
        gate_r, gate_w = os.pipe()
        try:
            procs = [
                subprocess.Popen(
                    [sys.executable, "-c", _GATED_SETUP, str(db)],
                    stdin=gate_r,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=env_with_src(),
                )
                for _ in range(20)
            ]
        finally:
            os.close(gate_r)
        for p in procs:
            assert p.stdout is not None and p.stdout.readline() == b"ready\n"
        os.close(gate_w)
        results = [(*p.communicate(timeout=120), p.returncode) for p in procs]
        failed = [err.decode().strip().splitlines()[-1:] for out, err, code in results if code != 0 or out != b"wal\n"]
        assert failed == [], f"round {round_}: {len(failed)} of 20 failed: {failed[:2]}"
