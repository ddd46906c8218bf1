"""The connections to the database file and the one transaction helper every write uses.

Why it is shaped like this:
- One writer connection behind an asyncio lock, opened with ``isolation_level=None``; every
  write transaction starts with ``BEGIN IMMEDIATE`` so a competing process waits on
  ``busy_timeout`` instead of failing at the upgrade from a read lock.
- A whole transaction is one function, run in one go: it can never be left half-open by a
  cancelled await.
- Where it runs: the queue's transactions are small (20–100 µs of SQLite work) and a hop to
  a thread and back costs ~80 µs on a 2-core machine, more than the work. So a write first
  tries ``BEGIN IMMEDIATE`` right on the event loop with no busy wait; when the lock is free
  (the usual case: this process is the only writer) it finishes there. When another process
  holds the lock, or the caller says the write is big (a huge paste, an import, a prune)
  or not urgent (the streams' periodic text), it runs in the connection's thread (see
  adapter.py), which waits up to ``busy_timeout`` without freezing the app.
  Checkpoints, which fsync, never run on the loop: autocheckpoint is off, and the writer
  thread checkpoints after every ``CHECKPOINT_EVERY`` commits.
- Reads go through a second connection, so WAL readers never queue behind the writer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from chatplex.core.db.adapter import Thread
from chatplex.core.db.errors import StoreError
from chatplex.core.db.schema import migrate

log = logging.getLogger("chatplex.store")
T = TypeVar("T")
Conn = sqlite3.Connection
D = TypeVar("D", bound="Database")

BUSY_TIMEOUT_MS = 5000  # how long a write waits for another process's transaction
CHECKPOINT_EVERY = 200  # commits (~1,000–2,000 WAL pages) between checkpoints
BIG_TEXT = 256 * 1024  # characters: a write carrying more runs in the writer thread
# what chatplex asks of durability: WAL with synchronous=NORMAL fsyncs at checkpoints only
# (a power cut may lose the last commits, never corrupt); bench/b1_queue.py's floor uses these
WRITER_PRAGMAS = ("synchronous=NORMAL", "journal_size_limit=67108864", "wal_autocheckpoint=0")


class Database:
    """The writer and reader connections, the write lock, and `write`/`read`; build with
    ``await Database.open(path)`` (or a subclass's), use as ``async with``."""

    def __init__(self, path: Path, writer: Thread, reader: Thread, *, inline_writes: bool = True):
        self.path = path
        self._w = writer
        self._r = reader
        self._inline = inline_writes
        self._lock = asyncio.Lock()
        self.writes = 0  # write transactions that changed rows, by this process (benchmarks read it)
        self._checkpointing: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls: type[D], path: Path | str, *, inline_writes: bool = True) -> D:
        """Open (creating and migrating if need be) the database at `path`. `inline_writes=False`
        runs every write in the writer thread: what bench/b1_queue.py compares against."""
        path = Path(path)
        if str(path) != ":memory:":
            _check_file(path)
        try:
            writer = await Thread.connect(path, isolation_level=None, timeout=5.0)
        except sqlite3.Error as e:
            raise StoreError(f"cannot open database {path}: {e}") from e
        try:
            await writer.run(configure_writer)
            reader = await Thread.connect(path, isolation_level=None, timeout=5.0)
            await reader.run(configure_reader)
        except sqlite3.DatabaseError as e:
            await writer.close()
            raise StoreError(_explain(path, e)) from e
        return cls(path, writer, reader, inline_writes=inline_writes)

    async def close(self) -> None:
        if self._checkpointing is not None:
            await asyncio.gather(self._checkpointing, return_exceptions=True)
        async with self._lock:
            try:
                await self._w.run(lambda db: db.execute("PRAGMA optimize"))
            except sqlite3.Error:
                pass
            await self._r.close()
            await self._w.close()

    async def __aenter__(self: D) -> D:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def write(self, fn: Callable[..., T], *args: Any, off_loop: bool = False) -> T:
        """Run `fn(db, *args)` as one BEGIN IMMEDIATE … COMMIT: on the loop when the write
        lock is free and the write is small, else in the writer thread (see the module doc)."""
        async with self._lock:
            conn = self._w.conn
            changes = conn.total_changes
            try:
                try:
                    if off_loop or not self._inline:
                        raise _Busy
                    result = transaction(conn, fn, *args, wait=False)
                except _Busy:
                    result = await self._w.run(transaction, fn, *args)
            except sqlite3.OperationalError as e:
                if any(word in str(e) for word in ("full", "readonly", "disk I/O", "locked")):
                    raise StoreError(_explain(self.path, e)) from e
                raise
            if conn.total_changes == changes:  # e.g. a claim that found nothing: no page written
                return result
            self.writes += 1
            if self.writes % CHECKPOINT_EVERY != 0 or self._checkpointing is not None:
                return result
        # a task of its own (the caller's write is done, whatever becomes of the caller), let
        # start now: a burst of inline writes never yields, and the WAL would grow meanwhile
        self._checkpointing = asyncio.create_task(self.checkpoint())
        await asyncio.sleep(0)
        return result

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(db, *args)` on the reader connection (query_only), in its thread."""
        return await self._r.run(fn, *args)

    async def alone(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(db, *args)` on the writer, in its thread, between transactions and outside any
        (VACUUM and checkpoints cannot run inside one)."""
        async with self._lock:
            try:
                return await self._w.run(fn, *args)
            except sqlite3.OperationalError as e:
                raise StoreError(_explain(self.path, e)) from e

    async def data_version(self) -> int:
        """Changes when another connection (another process) commits: cheap change detection."""
        async with self._lock:
            version: int = self._w.conn.execute("PRAGMA data_version").fetchone()[0]
            return version

    async def checkpoint(self) -> None:
        """In the writer thread, between transactions, so its fsyncs never stall the loop."""
        try:
            async with self._lock:
                await self._w.run(_checkpoint)
        finally:
            if self._checkpointing is asyncio.current_task():
                self._checkpointing = None


def _checkpoint(db: Conn) -> None:
    """Copy the WAL into the database. PASSIVE: never waits for, nor blocks, other processes.
    Run by the writer between its transactions, so the next write can restart the WAL."""
    try:
        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error as e:
        log.warning("checkpoint failed: %s", e)


class _Busy(Exception):
    """BEGIN IMMEDIATE found the write lock taken (no time was waited, nothing was done)."""


def transaction(db: Conn, fn: Callable[..., T], *args: Any, wait: bool = True) -> T:
    """`fn(db, *args)` between BEGIN IMMEDIATE and COMMIT, rolled back if it raises. With
    `wait=False` a taken lock raises _Busy at once (the loop must never wait in SQLite)."""
    if wait:  # the writer connection's busy_timeout is 0 so the loop never waits in SQLite
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as e:
        if not wait and (getattr(e, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_BUSY:
            raise _Busy from e
        raise
    finally:
        if wait:
            db.execute("PRAGMA busy_timeout=0")
    try:
        result = fn(db, *args)
    except BaseException:
        if db.in_transaction:  # SQLite has already rolled back after e.g. SQLITE_FULL
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return result


def configure_writer(db: Conn) -> None:
    """Set up the writer connection and migrate. Safe when many processes open a new file at
    once (20 `chatplex sessions` in parallel): the switch to WAL waits for the others instead
    of failing, and `migrate` reads the version again inside its BEGIN IMMEDIATE."""
    db.row_factory = sqlite3.Row
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    mode = db.execute("PRAGMA journal_mode").fetchone()[0]  # WAL persists: set by the file's first open
    tries = 0
    while mode.lower() != "wal":
        # the switch reads the file, then needs it alone: two processes doing it at once would
        # deadlock, so SQLite answers one SQLITE_BUSY at once, busy_timeout or not. That one
        # waits for the other in BEGIN IMMEDIATE (which honours busy_timeout), then asks again
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            break  # "memory" for ":memory:": no WAL there, and no retry either
        except sqlite3.OperationalError as e:
            tries += 1
            if tries == 20 or (getattr(e, "sqlite_errorcode", 0) & 0xFF) != sqlite3.SQLITE_BUSY:
                raise
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
    if mode.lower() != "wal":
        log.warning("journal_mode is %s, not WAL", mode)
    for pragma in (*WRITER_PRAGMAS, "foreign_keys=OFF"):
        db.execute(f"PRAGMA {pragma}")  # foreign keys on after the migrations (m002 rebuilds tables)
    migrate(db)
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA busy_timeout=0")  # waiting happens in the thread only: see transaction()


def configure_reader(db: Conn) -> None:
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA busy_timeout=5000")
    db.execute("PRAGMA query_only=ON")


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _check_file(path: Path) -> None:
    """Refuse, before SQLite touches it, a file that is not a database; never overwrite it.
    Only a regular file is read: opening a FIFO would block forever, a device is no database."""
    if path.exists():
        if path.is_dir():
            raise StoreError(f"{path} is a directory, not a database file")
        if not path.is_file():
            raise StoreError(
                f"{path} is not a regular file (a FIFO, socket or device?); point CHATPLEX_DB / --db at a database file"
            )
        with path.open("rb") as f:
            head = f.read(16)
        if head and head != _SQLITE_MAGIC:
            raise StoreError(
                f"{path} is not a chatplex database (not SQLite); move it away or "
                "point CHATPLEX_DB / --db at another file"
            )
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the database folder {path.parent}: {e.strerror}") from e
        if not os.access(path.parent, os.W_OK):
            raise StoreError(f"cannot write to {path.parent}: check its permissions or use --db")


def _explain(path: Path, e: sqlite3.DatabaseError) -> str:
    text = str(e)
    if "malformed" in text or "not a database" in text:
        return (
            f"the database {path} is damaged ({text}); it was left untouched. Restore a backup "
            "or move it away to start fresh"
        )
    if "locked" in text:
        return (
            f"the database {path} stayed locked by another process for over 5 s ({text}); that "
            "change was not saved. Try again (a long `chatplex vacuum` holds it, for example)"
        )
    if "full" in text:
        return (
            f"the disk holding {path} is full ({text}); that change was not saved, everything "
            "saved before is intact. Free some space and try again"
        )
    if "readonly" in text or "unable to open" in text:
        return f"cannot write the database {path} ({text}); check permissions or use --db"
    return f"cannot use the database {path}: {text}"
