"""The only place chatplex touches aiosqlite's private API.

Why it exists (bench/README.md, B1): a queue transaction is 20–100 µs of SQLite work, and a
hop to aiosqlite's connection thread and back costs ~80 µs on a 2-core machine. Running the
small transactions right on the event loop, with the thread kept for those that may wait
(another process holds the lock) or are big, roughly doubles queue throughput. aiosqlite's
public API offers neither of the two things that needs: the raw `sqlite3.Connection` (to run
on the loop) and running one whole Python function in its thread (a transaction in one hop,
never left half-open by a cancelled await). So both are taken from `Connection._conn` and
`Connection._execute`, here and nowhere else; tests/core/test_db_adapter.py fails with a
clear message when an aiosqlite release changes them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

T = TypeVar("T")


class Thread:
    """One sqlite3 connection living in aiosqlite's thread, which the loop may also use
    directly (`conn`) while it holds the caller's lock."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._a = connection

    @classmethod
    async def connect(cls, path: Path | str, **kwargs: Any) -> Thread:
        """`kwargs` go to `sqlite3.connect`; `check_same_thread=False` is implied, since the
        loop and the thread take turns with the connection."""
        return cls(await aiosqlite.connect(path, check_same_thread=False, **kwargs))

    @property
    def conn(self) -> sqlite3.Connection:
        """The raw connection, for a call on the loop while no thread call is under way."""
        return self._a._conn

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(conn, *args)` in the connection's thread, in one hop."""
        return await self._a._execute(fn, self._a._conn, *args)

    async def close(self) -> None:
        await self._a.close()
