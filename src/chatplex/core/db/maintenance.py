"""Keeping the file healthy: pruning old rows, VACUUM, online backup, integrity check.

The statements are here; `Store` runs them in the writer thread (`off_loop`): they touch
many pages, and must never stall the event loop.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from chatplex.core.db.jobs import JOB
from chatplex.core.db.sessions import Conn


def prune_jobs(db: Conn, older_than: float) -> int:
    """Delete finished jobs that ended more than `older_than` seconds ago; messages stay."""
    return db.execute(
        "DELETE FROM jobs WHERE state IN (:succeeded, :failed, :cancelled) AND finished_at < :cutoff",
        {**JOB, "cutoff": time.time() - older_than},
    ).rowcount


def prune_sessions(db: Conn, older_than: float) -> int:
    """Delete sessions (with their messages) untouched for `older_than` seconds and with no
    unfinished job."""
    return db.execute(
        "DELETE FROM sessions WHERE updated_at < :cutoff AND NOT EXISTS (SELECT 1 FROM jobs"
        " WHERE jobs.session_id=sessions.id AND state IN (:queued, :running))",
        {**JOB, "cutoff": time.time() - older_than},
    ).rowcount


def vacuum(db: Conn, busy_timeout_ms: int) -> None:
    """VACUUM between two truncating checkpoints, so the file really shrinks; outside a
    transaction, waiting up to `busy_timeout_ms` for other processes."""
    db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.execute("PRAGMA busy_timeout=0")


def backup(db: Conn, target: Path) -> None:
    """SQLite's online backup API into `target`: a consistent copy while others write."""
    dest = sqlite3.connect(target)
    try:
        db.backup(dest, pages=1024)
    finally:
        dest.close()


def integrity_check(db: Conn) -> list[str]:
    return [r[0] for r in db.execute("PRAGMA integrity_check")]


def schema_version(db: Conn) -> int:
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    return version
