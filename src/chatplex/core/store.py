"""Every SQL statement of chatplex: schema, migrations, and the transactions that keep
sessions, messages and jobs consistent with each other.

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
  or not urgent (the streams' periodic text), it runs in aiosqlite's connection thread
  (``Connection._execute``, pinned by the dependency range), which waits up to
  ``busy_timeout`` without freezing the app.
  Checkpoints, which fsync, never run on the loop: autocheckpoint is off, and the writer
  thread checkpoints after every ``CHECKPOINT_EVERY`` commits.
- Reads go through a second connection, so WAL readers never queue behind the writer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from chatplex.core.models import (
    Job,
    JobState,
    Message,
    MessageState,
    Priority,
    QueueStats,
    Role,
    Session,
    SessionStatus,
    preview_of,
)

log = logging.getLogger("chatplex.store")
T = TypeVar("T")
Conn = sqlite3.Connection


class StoreError(Exception):
    """The database cannot be used; the message says why and what to do."""


class LeaseLost(Exception):
    """The job's lease belongs to someone else now (expired and taken over, or cancelled)."""


# ---------------------------------------------------------------- migrations (llm-style)
MIGRATIONS: list[Callable[[Conn], None]] = []


def migration(fn: Callable[[Conn], None]) -> Callable[[Conn], None]:
    MIGRATIONS.append(fn)
    return fn


def _script(db: Conn, sql: str) -> None:
    """Statements one by one: executescript() would COMMIT the migration's transaction."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


@migration
def m001_initial(db: Conn) -> None:
    _script(
        db,
        """
        CREATE TABLE sessions(
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            system_prompt TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'idle',
            unread INTEGER NOT NULL DEFAULT 0,
            preview TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL);
        CREATE INDEX sessions_recent ON sessions(updated_at DESC);
        CREATE TABLE messages(
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL DEFAULT 'complete',
            error TEXT,
            job_id INTEGER,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            finish_reason TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL);
        CREATE INDEX messages_session ON messages(session_id, id);
        CREATE TABLE jobs(
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            priority INTEGER NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL,
            run_after REAL NOT NULL,
            lease_owner TEXT,
            lease_expires_at REAL,
            last_error TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL);
        CREATE INDEX jobs_claim ON jobs(state, priority, run_after, id);
        CREATE INDEX jobs_session ON jobs(session_id, state);
        CREATE INDEX jobs_message ON jobs(message_id);
        """,
    )


_SESSION_COLUMNS = "id, title, provider, model, system_prompt, status, unread, preview, created_at, updated_at"
_MESSAGE_COLUMNS = (
    "id, session_id, role, content, state, error, job_id, prompt_tokens,"
    " completion_tokens, finish_reason, created_at, updated_at"
)
_JOB_COLUMNS = (
    "id, session_id, message_id, priority, state, attempts, max_attempts, run_after,"
    " lease_owner, lease_expires_at, last_error, created_at, updated_at, started_at,"
    " finished_at"
)


@migration
def m002_ids_never_reused_and_models_per_message(db: Conn) -> None:
    """AUTOINCREMENT on every table (an id a script saved must never reach another
    conversation after a delete); each message records the model that wrote it (existing
    replies get their session's model, the best that is known); jobs count crashes apart
    from attempts, and how much partial text a run started from (to tell its progress); a
    `tool` role for the agent turns to come. SQLite cannot add
    AUTOINCREMENT in place: the tables are rebuilt, with foreign keys off (see
    _configure_writer), and checked after."""
    _script(
        db,
        f"""
        CREATE TABLE sessions_new(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            title TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            system_prompt TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'idle',
            unread INTEGER NOT NULL DEFAULT 0,
            preview TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL);
        INSERT INTO sessions_new({_SESSION_COLUMNS}) SELECT {_SESSION_COLUMNS} FROM sessions;
        CREATE TABLE messages_new(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
            content TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL DEFAULT 'complete',
            error TEXT,
            job_id INTEGER,
            model TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            finish_reason TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL);
        INSERT INTO messages_new({_MESSAGE_COLUMNS}) SELECT {_MESSAGE_COLUMNS} FROM messages;
        UPDATE messages_new SET model=(SELECT model FROM sessions WHERE sessions.id=messages_new.session_id)
            WHERE role='assistant';
        CREATE TABLE jobs_new(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            priority INTEGER NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL,
            crashes INTEGER NOT NULL DEFAULT 0,
            resumed_from INTEGER NOT NULL DEFAULT 0,
            run_after REAL NOT NULL,
            lease_owner TEXT,
            lease_expires_at REAL,
            last_error TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL);
        INSERT INTO jobs_new({_JOB_COLUMNS}) SELECT {_JOB_COLUMNS} FROM jobs;
        DROP TABLE jobs;
        DROP TABLE messages;
        DROP TABLE sessions;
        ALTER TABLE sessions_new RENAME TO sessions;
        ALTER TABLE messages_new RENAME TO messages;
        ALTER TABLE jobs_new RENAME TO jobs;
        CREATE INDEX sessions_recent ON sessions(updated_at DESC);
        CREATE INDEX messages_session ON messages(session_id, id);
        CREATE INDEX jobs_claim ON jobs(state, priority, run_after, id);
        CREATE INDEX jobs_session ON jobs(session_id, state);
        CREATE INDEX jobs_message ON jobs(message_id);
        """,
    )
    broken = db.execute("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise StoreError(
            f"the database has {len(broken)} rows whose session or message is gone; "
            "it was left as it was (restore a backup, or run an older chatplex to export)"
        )


SCHEMA_VERSION = len(MIGRATIONS)
BUSY_TIMEOUT_MS = 5000  # how long a write waits for another process's transaction
CHECKPOINT_EVERY = 200  # commits (~1,000–2,000 WAL pages) between checkpoints
BIG_TEXT = 256 * 1024  # characters: a write carrying more runs in the writer thread
POISON_CRASHES = 3  # runs in a row cut by a dying process with nothing progressing: put aside
_ACTIVE = "('queued', 'running')"


def _session(row: sqlite3.Row) -> Session:
    return Session(
        id=row["id"],
        title=row["title"],
        provider=row["provider"],
        model=row["model"],
        system_prompt=row["system_prompt"],
        status=SessionStatus(row["status"]),
        unread=row["unread"],
        preview=row["preview"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _message(row: sqlite3.Row) -> Message:
    return Message(
        id=row["id"],
        session_id=row["session_id"],
        role=Role(row["role"]),
        content=row["content"],
        state=MessageState(row["state"]),
        error=row["error"],
        job_id=row["job_id"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        finish_reason=row["finish_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        model=row["model"],
    )


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        session_id=row["session_id"],
        message_id=row["message_id"],
        priority=Priority(row["priority"]),
        state=JobState(row["state"]),
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        run_after=row["run_after"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        crashes=row["crashes"],
        resumed_from=row["resumed_from"],
    )


def _history(db: Conn, sid: int, before_message_id: int) -> list[Message]:
    """What the model sees for a reply: complete messages before it, failed replies left out."""
    return [
        _message(r)
        for r in db.execute(
            "SELECT * FROM messages WHERE session_id=? AND id<? AND content != ''"
            " AND (role != 'assistant' OR state IN ('complete', 'interrupted')) ORDER BY id",
            (sid, before_message_id),
        )
    ]


def _one(db: Conn, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
    return db.execute(sql, args).fetchone()


def _scalar(db: Conn, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> Any:
    """The first column of an aggregate's single row."""
    row = db.execute(sql, args).fetchone()
    return row[0] if row is not None else None


def _rowid(cur: sqlite3.Cursor) -> int:
    assert cur.lastrowid is not None  # after an INSERT
    return cur.lastrowid


def _finished(db: Conn, job_id: int) -> tuple[Job, Message, Session]:
    """A job with its message and session, read back in the transaction that changed them."""
    job = get_job(db, job_id)
    assert job is not None
    message, session = get_message(db, job.message_id), get_session(db, job.session_id)
    assert message is not None and session is not None
    return job, message, session


def get_session(db: Conn, sid: int) -> Session | None:
    row = _one(db, "SELECT * FROM sessions WHERE id=?", (sid,))
    return _session(row) if row else None


def get_message(db: Conn, mid: int) -> Message | None:
    row = _one(db, "SELECT * FROM messages WHERE id=?", (mid,))
    return _message(row) if row else None


def get_job(db: Conn, jid: int) -> Job | None:
    row = _one(db, "SELECT * FROM jobs WHERE id=?", (jid,))
    return _job(row) if row else None


def _active_jobs(db: Conn, sid: int) -> tuple[int, int]:
    """(running, queued) jobs of one session."""
    row = _one(
        db,
        "SELECT COUNT(*) FILTER (WHERE state='running'), COUNT(*) FILTER (WHERE state='queued')"
        " FROM jobs WHERE session_id=? AND state IN " + _ACTIVE,
        (sid,),
    )
    return (row[0], row[1]) if row else (0, 0)


def _set_status(db: Conn, sid: int, status: SessionStatus, now: float, **extra: Any) -> None:
    cols = ", ".join(f"{k}=?" for k in extra)
    db.execute(
        f"UPDATE sessions SET status=?, updated_at=?{', ' + cols if cols else ''} WHERE id=?",
        (status.value, now, *extra.values(), sid),
    )


def _settle_status(db: Conn, sid: int, now: float, otherwise: SessionStatus, **extra: Any) -> None:
    """After a job left the running state: streaming/queued win over `otherwise`."""
    running, queued = _active_jobs(db, sid)
    if running:
        status = SessionStatus.STREAMING
    elif queued:
        status = SessionStatus.QUEUED
    else:
        status = otherwise
    _set_status(db, sid, status, now, **extra)


# Streamed text onto the job's reply. By primary key: `WHERE job_id=?` scanned every message
# of the database on every flush (no index on messages.job_id).
APPEND_SQL = (
    "UPDATE messages SET content=content||?, updated_at=? WHERE id=(SELECT message_id FROM jobs WHERE id=?)"
    " AND state='streaming'"
)


class Store:
    """Async facade over the database file; build with ``await Store.open(path)``."""

    def __init__(self, path: Path, writer: aiosqlite.Connection, reader: aiosqlite.Connection):
        self.path = path
        self._w = writer
        self._r = reader
        self._lock = asyncio.Lock()
        self.writes = 0  # write transactions that changed rows, by this process (benchmarks read it)
        self._checkpointing: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ opening and closing
    @classmethod
    async def open(cls, path: Path | str) -> Store:
        path = Path(path)
        if str(path) != ":memory:":
            _check_file(path)
        try:
            # the loop and the connection thread take turns with it, under self._lock
            writer = await aiosqlite.connect(path, isolation_level=None, timeout=5.0, check_same_thread=False)
        except sqlite3.Error as e:
            raise StoreError(f"cannot open database {path}: {e}") from e
        try:
            await writer._execute(_configure_writer, writer._conn)
            reader = await aiosqlite.connect(path, isolation_level=None, timeout=5.0)
            await reader._execute(_configure_reader, reader._conn)
        except sqlite3.DatabaseError as e:
            await writer.close()
            raise StoreError(_explain(path, e)) from e
        return cls(path, writer, reader)

    async def close(self) -> None:
        if self._checkpointing is not None:
            await asyncio.gather(self._checkpointing, return_exceptions=True)
        async with self._lock:
            try:
                await self._w.execute("PRAGMA optimize")
            except sqlite3.Error:
                pass
            await self._r.close()
            await self._w.close()

    async def write(self, fn: Callable[..., T], *args: Any, off_loop: bool = False) -> T:
        """Run `fn(db, *args)` as one BEGIN IMMEDIATE … COMMIT: on the loop when the write
        lock is free and the write is small, else in the writer thread (see the module doc)."""
        async with self._lock:
            changes = self._w._conn.total_changes
            try:
                try:
                    if off_loop:
                        raise _Busy
                    result = _transaction(fn, self._w._conn, *args, wait=False)
                except _Busy:
                    result = await self._w._execute(_transaction, fn, self._w._conn, *args)
            except sqlite3.OperationalError as e:
                if any(word in str(e) for word in ("full", "readonly", "disk I/O", "locked")):
                    raise StoreError(_explain(self.path, e)) from e
                raise
            if self._w._conn.total_changes == changes:  # e.g. a claim that found nothing: no page written
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
        return await self._r._execute(fn, self._r._conn, *args)

    async def data_version(self) -> int:
        """Changes when another connection (another process) commits: cheap change detection."""
        async with self._lock:
            return self._w._conn.execute("PRAGMA data_version").fetchone()[0]

    async def checkpoint(self) -> None:
        """In the writer thread, between transactions, so its fsyncs never stall the loop."""
        try:
            async with self._lock:
                await self._w._execute(_checkpoint, self._w._conn)
        finally:
            if self._checkpointing is asyncio.current_task():
                self._checkpointing = None

    async def integrity_check(self) -> list[str]:
        return await self.read(lambda db: [r[0] for r in db.execute("PRAGMA integrity_check")])

    async def schema_version(self) -> int:
        return await self.read(lambda db: db.execute("PRAGMA user_version").fetchone()[0])

    # ------------------------------------------------------------ sessions
    async def create_session(self, title: str, provider: str, model: str, system_prompt: str = "") -> Session:
        def tx(db: Conn) -> Session:
            now = time.time()
            cur = db.execute(
                "INSERT INTO sessions(title, provider, model, system_prompt, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?)",
                (title, provider, model, system_prompt, now, now),
            )
            return get_session(db, _rowid(cur))  # type: ignore[return-value]

        return await self.write(tx)

    async def update_session(self, sid: int, **fields: Any) -> Session | None:
        allowed = {"title", "provider", "model", "system_prompt", "unread"}
        if not fields or not set(fields) <= allowed:
            raise ValueError(f"cannot update {sorted(set(fields) - allowed)}")

        def tx(db: Conn) -> Session | None:
            cols = ", ".join(f"{k}=?" for k in fields)
            db.execute(f"UPDATE sessions SET {cols} WHERE id=?", (*fields.values(), sid))
            return get_session(db, sid)

        return await self.write(tx)

    async def delete_session(self, sid: int) -> list[int]:
        """Delete a session with its messages and jobs; returns the ids of its running jobs."""

        def tx(db: Conn) -> list[int]:
            running = [r[0] for r in db.execute("SELECT id FROM jobs WHERE session_id=? AND state='running'", (sid,))]
            db.execute("DELETE FROM sessions WHERE id=?", (sid,))
            return running

        return await self.write(tx, off_loop=True)  # cascades over all its messages

    async def get_session(self, sid: int) -> Session | None:
        return await self.read(get_session, sid)

    async def list_sessions(self) -> list[Session]:
        return await self.read(
            lambda db: [_session(r) for r in db.execute("SELECT * FROM sessions ORDER BY updated_at DESC, id DESC")]
        )

    async def find_session(self, ref: str) -> list[Session]:
        """Every session a command-line reference names, most recent first: the caller
        refuses more than one (two sessions with one title) instead of picking one.

        Only ASCII digits make an id, and an id is never read as a title: ids are never
        reused, so a script's saved id must not reach a session merely titled "3" once its
        own is gone (`title:3` names that one). str.isdigit() also takes '²' and '١' (int()
        reads 1: `rm ١` deleted session 1). Anything else is a title, `title:` prefix removed,
        as typed or with its whitespace collapsed the way the app stores titles."""
        if ref.isascii() and ref.isdigit():
            found = await self.get_session(int(ref)) if int(ref) < 2**63 else None
            return [found] if found else []
        title = ref.removeprefix("title:")
        return await self.find_sessions_by_title(title, " ".join(title.split()))

    async def find_sessions_by_title(self, *titles: str) -> list[Session]:
        """Sessions with any of these exact titles, most recent first."""
        marks = ",".join("?" * len(titles))
        return await self.read(
            lambda db: [
                _session(r)
                for r in db.execute(
                    f"SELECT * FROM sessions WHERE title IN ({marks}) ORDER BY updated_at DESC, id DESC", titles
                )
            ]
        )

    # ------------------------------------------------------------ messages
    async def get_message(self, mid: int) -> Message | None:
        return await self.read(get_message, mid)

    async def messages(self, sid: int, limit: int | None = None, before_id: int | None = None) -> list[Message]:
        """Messages of a session in order; with `limit`, the newest ones (before `before_id`)."""

        def q(db: Conn) -> list[Message]:
            sql = "SELECT * FROM messages WHERE session_id=?"
            args: list[Any] = [sid]
            if before_id is not None:
                sql += " AND id<?"
                args.append(before_id)
            sql += " ORDER BY id DESC"
            if limit is not None:
                sql += " LIMIT ?"
                args.append(limit)
            return [_message(r) for r in reversed(db.execute(sql, args).fetchall())]

        return await self.read(q)

    async def context(self, sid: int, message_id: int) -> tuple[list[Message], str]:
        """What a run needs in one read: the history before the reply, and the reply's text so
        far (kept by `claim` for a provider that continues)."""

        def q(db: Conn) -> tuple[list[Message], str]:
            row = _one(db, "SELECT content FROM messages WHERE id=?", (message_id,))
            return _history(db, sid, message_id), row[0] if row else ""

        return await self.read(q)

    async def search(self, text: str, limit: int = 50) -> list[Session]:
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return await self.read(
            lambda db: [
                _session(r)
                for r in db.execute(
                    "SELECT * FROM sessions WHERE title LIKE ?1 ESCAPE '\\' OR id IN ("
                    " SELECT session_id FROM messages WHERE content LIKE ?1 ESCAPE '\\')"
                    " ORDER BY updated_at DESC LIMIT ?2",
                    (like, limit),
                )
            ]
        )

    # ------------------------------------------------------------ jobs: enqueue
    async def create_turn(
        self, sid: int, text: str, priority: Priority, max_attempts: int
    ) -> tuple[Message, Message, Job, Session]:
        """The user message, its empty assistant reply and the job, in one transaction."""

        def tx(db: Conn) -> tuple[Message, Message, Job, Session]:
            now = time.time()
            if get_session(db, sid) is None:
                raise KeyError(f"no session {sid}")
            ins = "INSERT INTO messages(session_id, role, content, state, created_at, updated_at) VALUES (?,?,?,?,?,?)"
            user_id = _rowid(db.execute(ins, (sid, "user", text, "complete", now, now)))
            reply_id = _rowid(db.execute(ins, (sid, "assistant", "", "streaming", now, now)))
            job_id = _insert_job(db, sid, reply_id, priority, max_attempts, now)
            running, _ = _active_jobs(db, sid)
            _set_status(db, sid, SessionStatus.STREAMING if running else SessionStatus.QUEUED, now)
            return (
                get_message(db, user_id),
                get_message(db, reply_id),
                get_job(db, job_id),  # type: ignore[return-value]
                get_session(db, sid),
            )

        return await self.write(tx, off_loop=len(text) > BIG_TEXT)

    async def requeue_reply(self, mid: int, priority: Priority, max_attempts: int) -> tuple[Job, Message, Session]:
        """A fresh job for an assistant message (the user asked to retry it)."""

        def tx(db: Conn) -> tuple[Job, Message, Session]:
            now = time.time()
            msg = get_message(db, mid)
            if msg is None or msg.role != Role.ASSISTANT:
                raise KeyError(f"no reply {mid}")
            active = _one(db, "SELECT id FROM jobs WHERE message_id=? AND state IN " + _ACTIVE, (mid,))
            if active:  # already waiting: run it now instead of adding a second job
                db.execute(
                    "UPDATE jobs SET run_after=?, updated_at=? WHERE id=? AND state='queued'", (now, now, active[0])
                )
                job_id = active[0]
            else:
                job_id = _insert_job(db, msg.session_id, mid, priority, max_attempts, now)
                db.execute(
                    "UPDATE messages SET content='', state='streaming', error=NULL, finish_reason=NULL,"
                    " updated_at=? WHERE id=?",
                    (now, mid),
                )
            _settle_status(db, msg.session_id, now, SessionStatus.QUEUED)
            return get_job(db, job_id), get_message(db, mid), get_session(db, msg.session_id)  # type: ignore[return-value]

        return await self.write(tx)

    # ------------------------------------------------------------ jobs: the worker's side
    async def claim(
        self,
        owner: str,
        lease: float,
        exclude_providers: Sequence[str] = (),
        only_session: int | None = None,
        continuing: Collection[str] = (),
    ) -> tuple[Job, Session] | None:
        """Take the best runnable job: HIGH before LOW, then oldest, one job per session at a time
        (only `only_session`'s, if given). A partial reply is kept (less trailing whitespace,
        which Anthropic refuses at the end of a prefill) when the session's provider is one of
        `continuing`, else cleared for a fresh start."""

        def tx(db: Conn) -> tuple[Job, Session] | None:
            now = time.time()
            skip = ""
            if exclude_providers:
                marks = ",".join("?" * len(exclude_providers))
                skip = f" AND j.session_id NOT IN (SELECT id FROM sessions WHERE provider IN ({marks}))"
            if only_session is not None:
                skip += f" AND j.session_id={int(only_session)}"
            row = _one(
                db,
                "UPDATE jobs SET state='running', lease_owner=?, lease_expires_at=?,"
                " attempts=attempts+1, started_at=?, updated_at=? WHERE id=("
                " SELECT j.id FROM jobs j WHERE j.state='queued' AND j.run_after<=?"
                " AND NOT EXISTS (SELECT 1 FROM jobs e WHERE e.session_id=j.session_id"
                "   AND e.state IN ('queued','running') AND (e.state='running' OR e.id<j.id))"
                f"{skip} ORDER BY j.priority, j.run_after, j.id LIMIT 1) RETURNING *",
                (owner, now + lease, now, now, now, *exclude_providers),
            )
            if row is None:
                return None
            job = _job(row)
            session = get_session(db, job.session_id)
            keep = session is not None and session.provider in continuing
            db.execute(
                "UPDATE messages SET content=CASE WHEN :keep THEN rtrim(content, char(32, 9, 10, 13))"
                " ELSE '' END, state='streaming', error=NULL, job_id=:job, updated_at=:now,"
                " model=(SELECT model FROM sessions WHERE id=:session) WHERE id=:message",
                {"keep": keep, "job": job.id, "now": now, "session": job.session_id, "message": job.message_id},
            )
            kept = _scalar(
                db,
                "UPDATE jobs SET resumed_from=(SELECT length(content) FROM messages"
                " WHERE id=:message) WHERE id=:job RETURNING resumed_from",
                {"message": job.message_id, "job": job.id},
            )
            job.resumed_from = kept or 0
            _set_status(db, job.session_id, SessionStatus.STREAMING, now)
            return job, get_session(db, job.session_id)  # type: ignore[return-value]

        return await self.write(tx)

    async def runnable_high(self) -> list[tuple[int, int, str]]:
        """(job, session, provider) of HIGH jobs that could run now: preemption candidates."""
        return await self.read(
            lambda db: [
                tuple(r)
                for r in db.execute(
                    "SELECT j.id, j.session_id, s.provider FROM jobs j JOIN sessions s ON s.id=j.session_id"
                    " WHERE j.state='queued' AND j.priority=0 AND j.run_after<=?"
                    " AND NOT EXISTS (SELECT 1 FROM jobs e WHERE e.session_id=j.session_id"
                    "   AND e.state IN ('queued','running') AND (e.state='running' OR e.id<j.id))"
                    " ORDER BY j.run_after, j.id LIMIT 16",
                    (time.time(),),
                )
            ]
        )

    async def next_run_after(self, after: float | None = None) -> float | None:
        """When the earliest delayed job becomes runnable (so an idle worker can sleep till then).
        Jobs already due at `after` (the time of the claim that found nothing; default now)
        are left out: they were not claimable, and what frees them (a reply finishing, a
        provider slot) notifies; counting them made idle workers poll. A job that fell due
        since `after` is counted (the time may be past: claim again at once)."""
        since = time.time() if after is None else after
        return await self.read(
            lambda db: _scalar(db, "SELECT MIN(run_after) FROM jobs WHERE state='queued' AND run_after>?", (since,))
        )

    async def append(self, job_id: int, token: str, text: str, lease: float) -> None:
        """Write streamed text and extend the lease; raises LeaseLost if the claim is not live."""
        if job_id in await self.append_many(lease, [(job_id, token, text)]):
            raise LeaseLost(job_id)

    async def append_many(self, lease: float, items: Sequence[tuple[int, str, str]]) -> set[int]:
        """`append` for several running jobs (id, claim token, new text) in one transaction.
        Returns the jobs whose claim is not live any more (cancelled, or taken over after a
        lease expired): their text is dropped. The fence is the claim's own token, not the
        process: a stale run in this same process can never write."""

        def tx(db: Conn) -> set[int]:
            now = time.time()
            lost = set()
            for job_id, token, text in items:
                cur = db.execute(
                    "UPDATE jobs SET lease_expires_at=? WHERE id=? AND lease_owner=? AND state='running'",
                    (now + lease, job_id, token),
                )
                if cur.rowcount != 1:
                    lost.add(job_id)
                elif text:
                    db.execute(APPEND_SQL, (text, now, job_id))
            return lost

        # off the loop: ten times a second for all streams together, the hop costs nothing,
        # and the SQLite work runs beside the UI instead of in its way (B5)
        return await self.write(tx, off_loop=True)

    async def finish(
        self,
        job_id: int,
        token: str,
        outcome: str,
        text: str,
        *,
        error: str | None = None,
        run_after: float = 0.0,
        unread: bool = False,
        usage: tuple[int | None, int | None] = (None, None),
        finish_reason: str | None = None,
    ) -> tuple[Job, Message, Session]:
        """End a run in one transaction; `text` is the reply's *whole* text, which replaces what
        the periodic writes stored, so a reply is never complete with a hole in it even if
        one of those writes failed. Only the claim `token` may end it. Outcomes:
        succeeded · failed · cancelled · retry (queued at run_after, attempt spent) ·
        requeue (preempted or shut down: queued, attempt given back)."""

        def tx(db: Conn) -> tuple[Job, Message, Session]:
            now = time.time()
            job = get_job(db, job_id)
            if job is None or job.state != JobState.RUNNING or job.lease_owner != token:
                raise LeaseLost(job_id)
            job_state, msg_state, status = _OUTCOMES[outcome]
            db.execute(
                "UPDATE jobs SET state=?, lease_owner=NULL, lease_expires_at=NULL, updated_at=?,"
                " last_error=COALESCE(?, last_error), finished_at=?, run_after=?,"
                " attempts=attempts-?, crashes=0 WHERE id=?",  # a run that ended: crashes in a row end
                (
                    job_state,
                    now,
                    error,
                    now if job_state in _FINAL else None,
                    run_after if outcome == "retry" else job.run_after,
                    int(outcome == "requeue"),
                    job_id,
                ),
            )
            db.execute(
                "UPDATE messages SET content=?, state=?, error=?, prompt_tokens=COALESCE(?, prompt_tokens),"
                " completion_tokens=COALESCE(?, completion_tokens), finish_reason=?, updated_at=? WHERE id=?",
                (text, msg_state, error, usage[0], usage[1], finish_reason, now, job.message_id),
            )
            extra: dict[str, Any] = {}
            if outcome == "succeeded":
                extra["preview"] = preview_of(text)  # the reply's whole text (see the docstring)
            elif outcome == "failed":
                extra["preview"] = preview_of("⚠ " + (error or "failed"))
            elif outcome == "retry":  # the row says why it waits and when it tries again
                extra["preview"] = preview_of("↻ " + (error or "retrying"))
            if unread and outcome in ("succeeded", "failed"):
                db.execute("UPDATE sessions SET unread=unread+1 WHERE id=?", (job.session_id,))
            if outcome in ("retry", "requeue"):  # this job is still the session's next one
                _set_status(db, job.session_id, status, now, **extra)
            else:
                _settle_status(db, job.session_id, now, status, **extra)
            return get_job(db, job_id), get_message(db, job.message_id), get_session(db, job.session_id)  # type: ignore[return-value]

        return await self.write(tx, off_loop=len(text) > BIG_TEXT)

    # ------------------------------------------------------------ jobs: the user's side
    async def cancel(self, job_id: int) -> tuple[Job, Message, Session] | None:
        """Cancel a queued or running job. A running job's worker notices at its next write."""

        def tx(db: Conn) -> tuple[Job, Message, Session] | None:
            now = time.time()
            job = get_job(db, job_id)
            if job is None or job.state.finished:
                return None
            db.execute(
                "UPDATE jobs SET state='cancelled', lease_owner=NULL, lease_expires_at=NULL,"
                " finished_at=?, updated_at=? WHERE id=?",
                (now, now, job_id),
            )
            db.execute(
                "UPDATE messages SET state='interrupted', error='cancelled', updated_at=? WHERE id=?",
                (now, job.message_id),
            )
            _settle_status(db, job.session_id, now, SessionStatus.IDLE)
            return get_job(db, job_id), get_message(db, job.message_id), get_session(db, job.session_id)  # type: ignore[return-value]

        return await self.write(tx)

    async def reprioritise(self, focused: int | None) -> int:
        """The focused session's jobs become HIGH, every other unfinished job LOW. Running jobs
        too: one paused by preemption goes back to the queue with the rank it has now."""

        def tx(db: Conn) -> int:
            now = time.time()
            cur = db.execute(
                "UPDATE jobs SET priority=CASE WHEN session_id IS ? THEN 0 ELSE 1 END, updated_at=?"
                " WHERE state IN ('queued','running') AND priority != CASE WHEN session_id IS ? THEN 0 ELSE 1 END",
                (focused, now, focused),
            )
            return cur.rowcount

        return await self.write(tx)

    async def set_priority(self, job_id: int, priority: Priority) -> Job | None:
        def tx(db: Conn) -> Job | None:
            db.execute(
                "UPDATE jobs SET priority=?, updated_at=? WHERE id=? AND state='queued'",
                (int(priority), time.time(), job_id),
            )
            return get_job(db, job_id)

        return await self.write(tx)

    async def run_now(self, job_id: int) -> Job | None:
        """A queued job waiting for its retry time becomes runnable now."""

        def tx(db: Conn) -> Job | None:
            now = time.time()
            db.execute(
                "UPDATE jobs SET run_after=?, updated_at=? WHERE id=? AND state='queued' AND run_after>?",
                (now, now, job_id, now),
            )
            return get_job(db, job_id)

        return await self.write(tx)

    async def get_job(self, job_id: int) -> Job | None:
        return await self.read(get_job, job_id)

    async def jobs(self, state: JobState | None = None, limit: int = 500) -> list[Job]:
        return await self.read(
            lambda db: [
                _job(r)
                for r in db.execute(
                    "SELECT * FROM jobs WHERE ?1 IS NULL OR state=?1 ORDER BY id DESC LIMIT ?2",
                    (state.value if state else None, limit),
                )
            ]
        )

    async def stats(self, finished: bool = False) -> QueueStats:
        """Counts by state and priority; queued/running only (an index range) unless `finished`."""
        where = "" if finished else " WHERE state IN ('queued', 'running')"

        def q(db: Conn) -> QueueStats:
            stats = QueueStats()
            for state, prio, n in db.execute(
                f"SELECT state, priority, COUNT(*) FROM jobs{where} GROUP BY state, priority"
            ):
                stats.counts[(JobState(state), Priority(prio))] = n
            oldest = _scalar(
                db, "SELECT MIN(run_after) FROM jobs WHERE state='queued' AND run_after<=?", (time.time(),)
            )
            stats.oldest_wait = time.time() - oldest if oldest is not None else None
            return stats

        return await self.read(q)

    async def prune(self, older_than: float) -> int:
        """Delete finished jobs that ended more than `older_than` seconds ago; messages stay."""

        def tx(db: Conn) -> int:
            cutoff = time.time() - older_than
            return db.execute(
                "DELETE FROM jobs WHERE state IN ('succeeded','failed','cancelled') AND finished_at < ?", (cutoff,)
            ).rowcount

        return await self.write(tx, off_loop=True)

    async def prune_sessions(self, older_than: float) -> int:
        """Delete sessions (with their messages) untouched for `older_than` seconds and with
        no unfinished job."""

        def tx(db: Conn) -> int:
            cutoff = time.time() - older_than
            return db.execute(
                "DELETE FROM sessions WHERE updated_at < ? AND NOT EXISTS (SELECT 1 FROM jobs"
                " WHERE jobs.session_id=sessions.id AND state IN ('queued','running'))",
                (cutoff,),
            ).rowcount

        return await self.write(tx, off_loop=True)

    async def import_session(self, session: dict[str, Any], messages: list[dict[str, Any]]) -> Session:
        """One transaction: the session and all its messages, or nothing."""

        def tx(db: Conn) -> Session:
            now = time.time()
            created = float(session.get("created_at") or now)
            cur = db.execute(
                "INSERT INTO sessions(title, provider, model, system_prompt, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?)",
                (
                    session["title"],
                    session["provider"],
                    session["model"],
                    session.get("system_prompt", ""),
                    created,
                    now,
                ),
            )
            sid = _rowid(cur)
            for m in messages:
                db.execute(
                    "INSERT INTO messages(session_id, role, content, state, error, model, created_at,"
                    " updated_at) VALUES (?,?,?,?,?,?,?,?)",
                    (
                        sid,
                        m["role"],
                        m["content"],
                        m.get("state", "complete"),
                        m.get("error"),
                        m.get("model"),
                        float(m.get("created_at") or now),
                        now,
                    ),
                )
            found = get_session(db, sid)
            assert found is not None
            return found

        return await self.write(tx, off_loop=True)

    async def vacuum(self) -> tuple[int, int]:
        """VACUUM (outside a transaction); returns the file size before and after."""

        def run(db: Conn) -> None:
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            try:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                db.execute("VACUUM")
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                db.execute("PRAGMA busy_timeout=0")

        before = self.path.stat().st_size
        async with self._lock:
            try:
                await self._w._execute(run, self._w._conn)
            except sqlite3.OperationalError as e:
                raise StoreError(_explain(self.path, e)) from e
        return before, self.path.stat().st_size

    async def backup(self, target: Path) -> None:
        """SQLite's online backup API: a consistent copy while other processes keep writing."""

        def run(db: Conn) -> None:
            dest = sqlite3.connect(tmp)
            try:
                db.backup(dest, pages=1024)
            finally:
                dest.close()

        tmp = target.with_name(target.name + ".partial")
        try:
            await self.read(run)
            tmp.replace(target)  # never a half-written file under the target name
        except (sqlite3.Error, OSError) as e:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"backup to {target} failed: {e}") from e

    async def recover(self, stale: Callable[[Job], bool]) -> list[tuple[Job, Message, Session]]:
        """Give back running jobs that `stale(job)` judges abandoned (the queue decides: a dead
        local owner, or a lease seen unrenewed for a whole lease). Their partial replies are
        kept, marked interrupted.

        A process killed from outside is not the reply's fault: the attempt is given back.
        Only a job that keeps being running when its process dies with *nothing* progressing
        (no text of its own stored since it was claimed, no other job finished since then)
        counts towards POISON_CRASHES; at that many in a row it fails, so a reply that crashes
        chatplex itself cannot crash it forever. Provider errors count apart, in attempts."""

        def tx(db: Conn) -> list[tuple[Job, Message, Session]]:
            now = time.time()
            out: list[tuple[Job, Message, Session]] = []
            for row in db.execute("SELECT * FROM jobs WHERE state='running'").fetchall():
                job = _job(row)
                if not stale(job):
                    continue
                progressed = _one(
                    db,
                    "SELECT (SELECT length(content) > :kept FROM messages WHERE id=:message)"
                    " OR EXISTS (SELECT 1 FROM jobs WHERE state='succeeded' AND id != :job"
                    " AND finished_at >= :since)",
                    {"message": job.message_id, "job": job.id, "since": job.started_at or 0, "kept": job.resumed_from},
                )
                crashes = 0 if progressed and progressed[0] else job.crashes + 1
                poison = crashes >= POISON_CRASHES
                error = (
                    "the process running this reply stopped"
                    if not poison
                    else f"chatplex stopped {crashes} times in a row while starting this reply, with "
                    "nothing else getting done; it was put aside in case it is what stops it "
                    "— press ctrl+r to try again"
                )
                db.execute(
                    "UPDATE jobs SET state=:state, lease_owner=NULL, lease_expires_at=NULL,"
                    " last_error=:error, finished_at=:finished, updated_at=:now,"
                    " attempts=MAX(attempts-1, 0), crashes=:crashes WHERE id=:job",
                    {
                        "state": JobState.FAILED.value if poison else JobState.QUEUED.value,
                        "error": error,
                        "finished": now if poison else None,
                        "now": now,
                        "crashes": crashes,
                        "job": job.id,
                    },
                )
                db.execute(
                    "UPDATE messages SET state=:state, error=:error, updated_at=:now WHERE id=:message",
                    {
                        "state": (MessageState.ERROR if poison else MessageState.INTERRUPTED).value,
                        "error": error,
                        "now": now,
                        "message": job.message_id,
                    },
                )
                _settle_status(db, job.session_id, now, SessionStatus.ERROR)
                out.append(_finished(db, job.id))
            return out

        return await self.write(tx)


_FINAL = ("succeeded", "failed", "cancelled")
# outcome -> (job state, message state, session status when nothing else is active)
_OUTCOMES = {
    "succeeded": ("succeeded", "complete", SessionStatus.WAITING),
    "failed": ("failed", "error", SessionStatus.ERROR),
    "cancelled": ("cancelled", "interrupted", SessionStatus.IDLE),
    "retry": ("queued", "interrupted", SessionStatus.QUEUED),
    "requeue": ("queued", "interrupted", SessionStatus.INTERRUPTED),
}


def _insert_job(db: Conn, sid: int, mid: int, priority: Priority, max_attempts: int, now: float) -> int:
    job_id = _rowid(
        db.execute(
            "INSERT INTO jobs(session_id, message_id, priority, state, max_attempts, run_after, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (sid, mid, int(priority), "queued", max_attempts, now, now, now),
        )
    )
    db.execute("UPDATE messages SET job_id=? WHERE id=?", (job_id, mid))
    return job_id


def _checkpoint(db: Conn) -> None:
    """Copy the WAL into the database. PASSIVE: never waits for, nor blocks, other processes.
    Run by the writer between its transactions, so the next write can restart the WAL."""
    try:
        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error as e:
        log.warning("checkpoint failed: %s", e)


class _Busy(Exception):
    """BEGIN IMMEDIATE found the write lock taken (no time was waited, nothing was done)."""


def _transaction(fn: Callable[..., T], db: Conn, *args: Any, wait: bool = True) -> T:
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


def _configure_writer(db: Conn) -> None:
    """Set up the writer connection and migrate. Safe when many processes open a new file at
    once (20 `chatplex sessions` in parallel): the switch to WAL waits for the others instead
    of failing, and the schema version is read again inside the migration's BEGIN IMMEDIATE,
    so a process that waited for another's migration finds it done instead of creating the
    tables a second time."""
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
    for pragma in ("synchronous=NORMAL", "foreign_keys=OFF", "journal_size_limit=67108864", "wal_autocheckpoint=0"):
        db.execute(f"PRAGMA {pragma}")  # foreign keys on after the migrations (m002 rebuilds tables)
    while (version := db.execute("PRAGMA user_version").fetchone()[0]) < SCHEMA_VERSION:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]  # now nobody else can change it
            if version < SCHEMA_VERSION:
                MIGRATIONS[version](db)
                db.execute(f"PRAGMA user_version={version + 1}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        if version < SCHEMA_VERSION:
            log.info("migrated database to schema version %d", version + 1)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the database has schema version {version}, newer than this chatplex ({SCHEMA_VERSION}); upgrade chatplex"
        )
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA busy_timeout=0")  # waiting happens in the thread only: see _transaction


def _configure_reader(db: Conn) -> None:
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


def owner_id() -> str:
    """Lease owner for this process: host, pid and a random part (pids get reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


def owner_is_dead(owner: str) -> bool:
    """True for a lease owner that was a process on this host and no longer runs."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
