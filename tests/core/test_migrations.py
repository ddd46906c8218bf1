"""A database made by the previous release (schema 1, tests/fixtures/schema1.db, written by
chatplex f508af9) opens, migrates and keeps every row; ids are never reused afterwards."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from chatplex.core.db import SCHEMA_VERSION, Store
from chatplex.core.models import JobState, MessageState, Priority
from chatplex.core.queue import JobQueue

FIXTURE = Path(__file__).parents[1] / "fixtures" / "schema1.db"


def rows(path: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


async def test_a_schema_1_database_migrates_with_every_row_kept(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    before = {t: rows(path, f"SELECT * FROM {t} ORDER BY id") for t in ("sessions", "messages", "jobs")}
    async with await Store.open(path) as store:
        assert await store.schema_version() == SCHEMA_VERSION
        assert [(s.id, s.title) for s in await store.list_sessions()] == [(1, "first chat"), (2, "second chat")]
        assert [s.servers for s in await store.list_sessions()] == [None, None]  # config.toml's default
        messages = sorted(await store.messages(1) + await store.messages(2), key=lambda m: m.id)
        assert [(m.id, m.role.value, m.content, m.state) for m in messages] == [
            (r[0], r[2], r[3], MessageState(r[4])) for r in before["messages"]
        ]
        # replies written before messages recorded their model get their session's model
        assert {m.id: m.model for m in messages} == {
            1: None,
            2: "llama3.2",
            3: None,
            4: "claude-sonnet-4-5",
            7: None,
            8: "llama3.2",
        }
        jobs = sorted(await store.jobs(), key=lambda j: j.id)
        assert [(j.id, j.message_id, j.state, j.attempts) for j in jobs] == [
            (1, 2, JobState.SUCCEEDED, 1),
            (2, 4, JobState.QUEUED, 0),
            (4, 8, JobState.QUEUED, 0),
        ]
        assert await store.integrity_check() == ["ok"]
        assert rows(path, "PRAGMA foreign_key_check") == []
        # the migrated queue still works: the waiting jobs run
        q = JobQueue(store)
        job, _ = await q.claim()
        assert job.id == 2


async def test_ids_are_never_reused_after_a_delete(tmp_path):
    async with await Store.open(tmp_path / "new.db") as store:
        q = JobQueue(store)
        first = await store.create_session("a", "p", "m")
        user, reply, job, _ = await q.enqueue(first.id, "x", Priority.LOW)
        await store.delete_session(first.id)
        second = await store.create_session("b", "p", "m")
        user2, reply2, job2, _ = await q.enqueue(second.id, "y", Priority.LOW)
        assert second.id > first.id and user2.id > reply.id and job2.id > job.id


async def test_the_reply_records_the_model_that_wrote_it(fake, tmp_path, coordinators):
    from tests.core.test_coordinator import finished
    from tests.helpers import make_config, provider_for

    s = fake.scenario(reply="ok")
    coord, rec = await coordinators(make_config(tmp_path, provider_for(s)))
    session = await coord.create_session(model="fake-small")
    _, r1, _ = await coord.send(session.id, "one")
    await rec.wait(finished(r1.id))
    await coord.update_session(session.id, model="fake-large")
    _, r2, _ = await coord.send(session.id, "two")
    await rec.wait(finished(r2.id))
    replies = [m for m in await coord.messages(session.id) if m.role.value == "assistant"]
    assert [m.model for m in replies] == ["fake-small", "fake-large"]
    from chatplex.core.export import to_json, to_markdown

    md = to_markdown(await coord.session(session.id), await coord.messages(session.id))
    assert md.index("## fake-small") < md.index("## fake-large")
    assert '"model": "fake-small"' in to_json(await coord.session(session.id), await coord.messages(session.id))
