"""The schema, as an ordered list of small migrations (the way simonw/llm does it).

`PRAGMA user_version` is the number of migrations applied; each migration runs in its own
BEGIN IMMEDIATE with the version bump, so a database is always at one version or the next.
Migrations are history: once released, one is never edited (its SQL keeps the literals of
its day); a change of schema is a new function at the end of the list.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

from chatplex.core.db.errors import StoreError

log = logging.getLogger("chatplex.store")
Conn = sqlite3.Connection

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
    `migrate`), and checked after."""
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


@migration
def m003_parts(db: Conn) -> None:
    """Replies made of parts (reasoning, text, tool calls, tool results): a message is its
    parts in `seq` order, and `content` stays their plain-text projection. Every existing
    message becomes one text part; reasoning tokens are counted apart from the rest."""
    _script(
        db,
        """
        CREATE TABLE parts(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('text', 'reasoning', 'tool_call', 'tool_result', 'image')),
            text TEXT NOT NULL DEFAULT '',
            data TEXT NOT NULL DEFAULT '{}',
            state TEXT NOT NULL DEFAULT 'complete',
            UNIQUE(message_id, seq));
        INSERT INTO parts(message_id, seq, kind, text, state)
            SELECT id, 0, 'text', content, CASE WHEN state='complete' THEN 'complete' ELSE 'interrupted' END
            FROM messages WHERE content != '';
        ALTER TABLE messages ADD COLUMN reasoning_tokens INTEGER;
        """,
    )


@migration
def m004_agent_steps(db: Conn) -> None:
    """Agent turns as durable steps: a job is a model step (`reply`) or one tool call
    (`tool`: which call, of which assistant message, and whether the user approved it), and
    a tool call may be `held` for approval. `allowed_tools`: the tools the user approved
    "always" in that session (a JSON list of names)."""
    _script(
        db,
        """
        ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'reply';
        ALTER TABLE jobs ADD COLUMN call_id TEXT;
        ALTER TABLE jobs ADD COLUMN parent INTEGER REFERENCES messages(id) ON DELETE CASCADE;
        ALTER TABLE jobs ADD COLUMN approved INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE sessions ADD COLUMN allowed_tools TEXT NOT NULL DEFAULT '[]';
        CREATE INDEX jobs_parent ON jobs(parent);
        """,
    )


@migration
def m005_servers_per_session(db: Conn) -> None:
    """The MCP servers a session uses, chosen by the user (a JSON list of names); NULL: the
    ones config.toml enables."""
    _script(db, "ALTER TABLE sessions ADD COLUMN servers TEXT;")


@migration
def m006_forks(db: Conn) -> None:
    """Where a forked session came from: the session and the message it was copied up to
    (NULL for a session that is no fork, or whose origin was deleted)."""
    _script(
        db,
        """
        ALTER TABLE sessions ADD COLUMN forked_from INTEGER REFERENCES sessions(id) ON DELETE SET NULL;
        ALTER TABLE sessions ADD COLUMN forked_at INTEGER;
        """,
    )


@migration
def m007_pinned_sessions(db: Conn) -> None:
    """Sessions the user pinned to the top of the sidebar."""
    _script(db, "ALTER TABLE sessions ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;")


@migration
def m008_reply_seconds(db: Conn) -> None:
    """How long a reply's last run streamed, from its first token to its end (its speed)."""
    _script(db, "ALTER TABLE messages ADD COLUMN seconds REAL;")


@migration
def m009_archived_sessions(db: Conn) -> None:
    """Sessions put away: not in the sidebar, still searchable, restorable."""
    _script(db, "ALTER TABLE sessions ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;")


@migration
def m010_session_settings(db: Conn) -> None:
    """A session's own request settings (temperature, max_tokens, reasoning_effort), as JSON."""
    _script(db, "ALTER TABLE sessions ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';")


@migration
def m011_context_from(db: Conn) -> None:
    """Where the history a session sends begins (older turns dropped from it, still stored)."""
    _script(db, "ALTER TABLE sessions ADD COLUMN context_from INTEGER;")


SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: Conn) -> None:
    """Apply what is missing, one migration per transaction. The version is read again inside
    BEGIN IMMEDIATE, so a process that waited for another's migration finds it done instead of
    creating the tables a second time. Foreign keys must be off (m002 rebuilds tables)."""
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
