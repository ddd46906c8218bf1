"""core/db/adapter.py is the only user of aiosqlite's private API (`Connection._conn`,
`Connection._execute`): these tests fail, saying so, when an aiosqlite release changes it."""

from __future__ import annotations

import inspect
import sqlite3
import threading
from pathlib import Path

import aiosqlite
import pytest

from chatplex.core.db import Store
from chatplex.core.db.adapter import Thread
from chatplex.core.models import JobState, MessageState, Priority, SessionStatus

CHANGED = (
    f"aiosqlite {aiosqlite.__version__} changed the private API chatplex.core.db.adapter uses"
    " (Connection._conn / Connection._execute): port adapter.py to it, or pin aiosqlite below"
    " this release in pyproject.toml"
)


def test_aiosqlite_still_has_the_private_parts_the_adapter_uses():
    conn_property = inspect.getattr_static(aiosqlite.Connection, "_conn", None)
    assert isinstance(conn_property, property), CHANGED
    execute = getattr(aiosqlite.Connection, "_execute", None)
    assert execute is not None and inspect.iscoroutinefunction(execute), CHANGED
    assert list(inspect.signature(execute).parameters)[:2] == ["self", "fn"], CHANGED


async def test_the_adapter_runs_on_the_loop_and_in_the_connection_thread(tmp_path: Path):
    thread = await Thread.connect(tmp_path / "a.db", isolation_level=None)
    try:
        assert isinstance(thread.conn, sqlite3.Connection), CHANGED
        loop_thread = threading.get_ident()
        ran_in, same = await thread.run(lambda db, x: (threading.get_ident(), db is thread.conn and x), True)
        assert ran_in != loop_thread and same is True, CHANGED
        thread.conn.execute("CREATE TABLE t(x)")  # on the loop, between thread calls
        assert await thread.run(lambda db: db.execute("SELECT COUNT(*) FROM t").fetchone()[0]) == 0
    finally:
        await thread.close()


async def test_async_with_closes_the_store(tmp_path: Path):
    async with await Store.open(tmp_path / "s.db") as store:
        await store.create_session("kept", "p", "m")
    with pytest.raises(ValueError):  # closed: aiosqlite refuses further calls
        await store.list_sessions()
    async with await Store.open(tmp_path / "s.db") as again:
        assert [s.title for s in await again.list_sessions()] == ["kept"]


async def test_async_with_closes_the_store_when_the_body_raises(tmp_path: Path):
    with pytest.raises(RuntimeError, match="body"):
        async with await Store.open(tmp_path / "s.db") as store:
            raise RuntimeError("body")
    with pytest.raises(ValueError):
        await store.get_session(1)
    async with await Store.open(tmp_path / "s.db"):  # nothing left locked
        pass


async def test_every_write_in_the_thread_gives_the_same_rows(tmp_path: Path):
    """`inline_writes=False` (what B1 compares against) changes where writes run, not what."""
    async with await Store.open(tmp_path / "t.db", inline_writes=False) as store:
        session = await store.create_session("t", "p", "m")
        _, reply, job, after = await store.create_turn(session.id, "hi", Priority.HIGH, max_attempts=2)
        assert (after.status, reply.content, job.state) == (SessionStatus.QUEUED, "", JobState.QUEUED)
        claimed = await store.claim("me", 30.0)
        assert claimed is not None and claimed[0].id == job.id
        done, message, _ = await store.finish(job.id, "me", "succeeded", "hello")
        assert (done.state, message.state, message.content) == (JobState.SUCCEEDED, MessageState.COMPLETE, "hello")
        assert store.writes == 4
