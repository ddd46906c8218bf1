"""The preemption policy on its own (core/preempt.py): which running reply makes way for a
HIGH job that no worker can take. The coordinator's tests cover it end to end."""

from __future__ import annotations

from pathlib import Path

from chatplex.config import Config, ProviderConfig
from chatplex.core.models import Job, JobKind, JobState, Priority, Session
from chatplex.core.preempt import victims
from chatplex.core.running import Running


def config(limit: int = 0) -> Config:
    providers = {
        name: ProviderConfig(
            name=name, kind="openai", base_url="http://127.0.0.1:9/v1", model="m", max_concurrency=limit
        )
        for name in ("a", "b")
    }
    return Config(path=None, db_path=Path("unused.db"), log_dir=Path("."), providers=providers, default_provider="a")


def run(job_id: int, session_id: int, provider: str = "a", started: float = 0.0, kind: str = JobKind.REPLY) -> Running:
    job = Job(job_id, session_id, job_id * 10, Priority.LOW, JobState.RUNNING, kind=kind)
    rj = Running(job, Session(session_id, f"s{session_id}", provider, "m"))
    rj.started = started
    return rj


def test_the_reply_that_started_last_makes_way_never_the_focused_one_nor_a_tool_call():
    old, new, focused, tool = (
        run(1, 1, started=1.0),
        run(2, 2, started=5.0),
        run(3, 3, started=9.0),
        run(4, 4, started=8.0, kind=JobKind.TOOL),
    )
    chosen = victims([(99, 7, "a")], [old, new, focused, tool], idle=0, config=config(), focused=3)
    assert chosen == [(new, 7)]


def test_an_idle_worker_takes_the_high_job_and_nothing_is_cut():
    assert victims([(99, 7, "a")], [run(1, 1), run(2, 2)], idle=1, config=config(), focused=None) == []


def test_two_high_jobs_cut_two_replies_and_the_high_jobs_own_session_is_spared():
    a, b, own = run(1, 1, started=1.0), run(2, 2, started=2.0), run(3, 7, started=3.0)
    chosen = victims([(98, 7, "a"), (99, 8, "a")], [a, b, own], idle=0, config=config(), focused=None)
    assert chosen == [(b, 7), (own, 8)]


def test_at_a_providers_limit_only_that_providers_replies_make_way():
    mine, other = run(1, 1, provider="a", started=1.0), run(2, 2, provider="b", started=9.0)
    chosen = victims([(99, 7, "a")], [mine, other], idle=3, config=config(limit=1), focused=None)
    assert chosen == [(mine, 7)]  # a worker is idle, but provider a is full
