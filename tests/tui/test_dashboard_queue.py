"""The dashboard (ctrl+o) and the queue inspector (f3): navigation and every action."""

from __future__ import annotations

from textual.widgets import DataTable

from chatplex.core.models import JobState, Priority, SessionStatus
from chatplex.tui.app import ChatplexApp
from chatplex.tui.screens.dashboard import DashboardScreen
from chatplex.tui.screens.queue import QueueScreen
from tests.fakeserver import Fault
from tests.helpers import make_config, provider_for
from tests.tui.helpers import until


def sessions_config(fake, tmp_path, workers=2, forever=False):
    good = fake.scenario(reply="All done here.")
    bad = fake.scenario(faults=[Fault(status=401, body={"error": {"message": "Incorrect API key"}})] * 10)
    slow = fake.scenario(reply=" ".join(f"line{i}" for i in range(400)), token_delay=0.01, forever=forever)
    return make_config(
        tmp_path, provider_for(good, "good"), provider_for(bad, "bad"), provider_for(slow, "slow"), workers=workers
    )


async def three_sessions(app, pilot):
    c = app.coord
    ids = {}
    for name, provider in (("done", "good"), ("broken", "bad"), ("busy", "slow")):
        ids[name] = (await c.create_session(name, provider=provider)).id
        await c.send(ids[name], f"hello {name}")
    await until(
        pilot,
        lambda: (
            app.sidebar.sessions[ids["done"]].status is SessionStatus.WAITING
            and app.sidebar.sessions[ids["broken"]].status is SessionStatus.ERROR
            and app.sidebar.sessions[ids["busy"]].status is SessionStatus.STREAMING
        ),
    )
    return ids


async def test_dashboard_tiles_navigation_and_open(fake, tmp_path):
    app = ChatplexApp(sessions_config(fake, tmp_path, forever=True))
    async with app.run_test(size=(130, 36)) as pilot:
        await app.ready.wait()
        ids = await three_sessions(app, pilot)
        await app.focus_session(ids["done"])
        await pilot.press("ctrl+o")
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        assert screen.order == app.sidebar.order and len(screen.tiles) == 3 and screen.columns == 3
        assert screen.selected == ids["done"]
        busy = screen.tiles[ids["busy"]]
        await until(pilot, lambda: "streaming" in (busy.last or "") and "tok/s" in busy.last)
        first = busy.last
        await until(pilot, lambda: busy.last != first)  # the tail streams live
        assert "line" in "".join(busy.last.splitlines()[-3:])  # the tail of the reply
        broken = screen.tiles[ids["broken"]].last
        assert "failed" in broken and "Incorrect API key" in broken
        assert "replied — your turn" in screen.tiles[ids["done"]].last
        # arrows and hjkl move the selection along the grid; Enter opens the tile's session
        start = screen.order.index(screen.selected)
        await pilot.press("l")
        assert screen.order.index(screen.selected) == start + 1 or start == 2
        await pilot.press("h", "h", "h")
        assert screen.selected == screen.order[0]
        await pilot.press("right")
        target = screen.selected
        await pilot.press("enter")
        await until(pilot, lambda: app.current == target and not isinstance(app.screen, DashboardScreen))
        await pilot.press("ctrl+o", "escape")
        assert app.current == target and not isinstance(app.screen, DashboardScreen)


async def test_s_sorts_the_dashboard_by_what_needs_you_and_back(fake, tmp_path):
    app = ChatplexApp(sessions_config(fake, tmp_path, forever=True))
    async with app.run_test(size=(130, 36)) as pilot:
        await app.ready.wait()
        ids = await three_sessions(app, pilot)
        await app.focus_session(ids["done"])
        await pilot.press("ctrl+o")
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        await until(pilot, lambda: screen.order == app.sidebar.order)
        title = screen.query_one("#dash-title")
        assert "most recent first" in str(title.render())
        await pilot.press("s")  # the failed one first (no approval waits here), then by recency
        rest = [sid for sid in app.sidebar.order if sid != ids["broken"]]
        await until(pilot, lambda: screen.order == [ids["broken"], *rest])
        assert "needs you first" in str(title.render())
        assert screen.tiles[ids["broken"]].border_title == "1"  # its digit opens it
        await pilot.press("s")
        await until(pilot, lambda: screen.order == app.sidebar.order)


async def test_dashboard_says_interrupted(fake, tmp_path):
    app = ChatplexApp(sessions_config(fake, tmp_path, workers=1))
    async with app.run_test(size=(130, 36)) as pilot:
        await app.ready.wait()
        c = app.coord
        essay = (await c.create_session("essay", provider="slow")).id
        await c.send(essay, "long")
        await until(pilot, lambda: app.sidebar.sessions[essay].status is SessionStatus.STREAMING)
        front = (await c.create_session("front", provider="slow")).id
        await app.focus_session(front)
        await c.send(front, "now")  # preempts the essay: its tile says so
        await until(pilot, lambda: app.sidebar.sessions[essay].status is SessionStatus.INTERRUPTED)
        await pilot.press("ctrl+o")
        tile = app.screen.tiles[essay]
        await until(pilot, lambda: "interrupted" in (tile.last or ""))


async def keys(pilot, *names: str) -> None:
    """Key presses while a reply streams forever (pilot.press would wait for idle)."""
    for name in names:
        pilot.app.simulate_key(name)
        await pilot.pause(0.02)


def table_ids(screen) -> list[int]:
    table = screen.query_one(DataTable)
    return [int(row.value) for row in table.rows]


async def test_queue_inspector_filters_and_actions(fake, tmp_path):
    limited = fake.scenario(reply="ok", faults=[Fault(status=429, headers={"Retry-After": "120"})])
    config = sessions_config(fake, tmp_path, workers=2, forever=True)
    config.providers["limited"] = provider_for(limited, "limited")
    app = ChatplexApp(config)
    async with app.run_test(size=(150, 36)) as pilot:
        await app.ready.wait()
        ids = await three_sessions(app, pilot)
        c = app.coord
        _, _, queued = await c.send(ids["busy"], "waits for the reply before it")
        rate = (await c.create_session("rate", provider="limited")).id
        _, _, scheduled = await c.send(rate, "gets a 429")
        await keys(pilot, "f3")
        await until(pilot, lambda: isinstance(app.screen, QueueScreen))
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        await until(
            pilot,
            lambda: (
                scheduled.id in screen.jobs
                and screen.jobs[scheduled.id].run_after > 0
                and screen.jobs[scheduled.id].attempts == 1
            ),
        )
        # filter by state: f cycles all -> queued -> running -> failed ...
        await keys(pilot, "f")
        await until(
            pilot, lambda: screen.state is JobState.QUEUED and set(table_ids(screen)) == {queued.id, scheduled.id}
        )
        await keys(pilot, "f", "f")
        # the rows of the filter before go once the list is read again: wait for that
        await until(
            pilot,
            lambda: (
                screen.state is JobState.FAILED
                and bool(table_ids(screen))
                and all(screen.jobs[j].state is JobState.FAILED for j in table_ids(screen))
            ),
        )
        await keys(pilot, "f", "f", "f")
        await until(pilot, lambda: screen.state is None and len(table_ids(screen)) == 5)

        def select(job_id: int) -> None:
            table = screen.query_one(DataTable)
            table.move_cursor(row=table.get_row_index(str(job_id)), animate=False)

        # raise / lower the priority of a queued job
        select(queued.id)
        await keys(pilot, "plus")
        await until(pilot, lambda: screen.jobs[queued.id].priority is Priority.HIGH)
        select(queued.id)
        await keys(pilot, "minus")
        await until(pilot, lambda: screen.jobs[queued.id].priority is Priority.LOW)
        # cancel asks first; "n" keeps it, "y" cancels it
        select(queued.id)
        await keys(pilot, "c")
        await until(pilot, lambda: app.screen is not screen)
        await keys(pilot, "n")
        await until(pilot, lambda: app.screen is screen)
        assert (await c.store.get_job(queued.id)).state is JobState.QUEUED
        select(queued.id)
        await keys(pilot, "c")
        await until(pilot, lambda: app.screen is not screen)
        await keys(pilot, "y")
        await until(pilot, lambda: screen.jobs.get(queued.id) and screen.jobs[queued.id].state is JobState.CANCELLED)
        # retry now: a failed job gets a new attempt; a scheduled retry stops waiting
        failed = next(j for j in screen.jobs.values() if j.session_id == ids["broken"])
        select(failed.id)
        await keys(pilot, "r")
        await until(pilot, lambda: len([j for j in screen.jobs.values() if j.session_id == ids["broken"]]) == 2)
        job = await c.store.get_job(scheduled.id)
        assert job.state is JobState.QUEUED and job.run_after > job.updated_at + 60  # waiting for Retry-After
        select(scheduled.id)
        await keys(pilot, "r")
        await until(pilot, lambda: screen.jobs[scheduled.id].run_after <= job.run_after - 60)
        await keys(pilot, "escape")
        await until(pilot, lambda: not isinstance(app.screen, QueueScreen))


def test_queue_times_are_coarse_and_retries_say_when():
    from chatplex.core.models import Job
    from chatplex.core.text import duration
    from chatplex.tui.screens.queue import next_retry

    assert [duration(s) for s in (0.4, 1.2, 59.9, 61, 3725)] == ["<1s", "1s", "59s", "1m 01s", "1h 02m"]
    job = Job(
        id=1,
        session_id=1,
        message_id=2,
        priority=Priority.LOW,
        state=JobState.QUEUED,
        attempts=1,
        max_attempts=5,
        run_after=1000.0,
        lease_owner=None,
        lease_expires_at=None,
        last_error="429",
        created_at=900.0,
        updated_at=900.0,
        started_at=950.0,
        finished_at=None,
    )
    assert next_retry(job, 990.0) == "in 10s" and next_retry(job, 880.5) == "in 2m" and next_retry(job, 1001) == ""


async def test_dashboard_shows_the_most_recent_sessions_when_there_are_very_many(fake, tmp_path, monkeypatch):
    from textual.widgets import Static

    from chatplex.tui.screens import dashboard

    monkeypatch.setattr(dashboard, "MAX_TILES", 3)
    app = ChatplexApp(make_config(tmp_path, provider_for(fake.scenario())))
    async with app.run_test(size=(130, 36)) as pilot:
        await app.ready.wait()
        ids = [(await app.coord.create_session(f"s{i}")).id for i in range(5)]
        await until(pilot, lambda: len(app.sidebar.sessions) == 5)
        await pilot.press("ctrl+o")
        screen = app.screen
        assert list(screen.tiles) == ids[::-1][:3]
        title = str(screen.query_one("#dash-title", Static).render())
        assert "the 3 most recent of 5 sessions" in title


async def test_pressing_the_key_again_does_not_stack_a_second_screen(fake, tmp_path):
    app = ChatplexApp(make_config(tmp_path, provider_for(fake.scenario())))
    async with app.run_test(size=(130, 36)) as pilot:
        await app.ready.wait()
        await pilot.press("ctrl+o", "ctrl+o")
        assert isinstance(app.screen, DashboardScreen) and len(app.screen_stack) == 2
        await pilot.press("f3", "f3")
        assert isinstance(app.screen, QueueScreen) and len(app.screen_stack) == 3
        await pilot.press("escape", "escape")
        assert len(app.screen_stack) == 1


async def test_regenerating_a_good_reply_from_the_queue_asks_first(fake, tmp_path):
    app = ChatplexApp(make_config(tmp_path, provider_for(fake.scenario(reply="keep me"))))
    async with app.run_test(size=(150, 36)) as pilot:
        await app.ready.wait()
        session = await app.coord.create_session("s")
        _, reply, job = await app.coord.send(session.id, "hi")
        await until(pilot, lambda: app.sidebar.sessions[session.id].status is SessionStatus.WAITING)
        await pilot.press("f3")
        screen = app.screen
        await until(pilot, lambda: job.id in screen.jobs)
        await pilot.press("r")
        await until(pilot, lambda: app.screen is not screen)
        await pilot.press("n")
        await until(pilot, lambda: app.screen is screen)
        assert (await app.coord.store.get_message(reply.id)).content == "keep me"
        assert [j.id for j in await app.coord.jobs()] == [job.id]


async def test_the_inspector_changes_the_rows_that_changed_and_asks_the_queue_nothing_meanwhile(fake, tmp_path):
    """Events update it: a priority change rewrites that row's cells only (the other rows are
    the same objects), and no list of jobs is read for it (it used to read 500 jobs and
    rebuild every row twice a second)."""
    app = ChatplexApp(sessions_config(fake, tmp_path, workers=1, forever=True))
    async with app.run_test(size=(150, 36)) as pilot:
        await app.ready.wait()
        c = app.coord
        busy = (await c.create_session("busy", provider="slow")).id
        await c.send(busy, "runs forever")
        waiting = [(await c.send((await c.create_session(f"w{i}")).id, "waits"))[2] for i in range(3)]
        reads = []
        real_jobs = c.jobs

        async def jobs(*args, **kwargs):
            reads.append(args)
            return await real_jobs(*args, **kwargs)

        c.jobs = jobs  # type: ignore[method-assign]
        await keys(pilot, "f3")
        await until(pilot, lambda: isinstance(app.screen, QueueScreen) and len(app.screen.jobs) == 4)
        screen = app.screen
        table = screen.query_one(DataTable)
        await until(pilot, lambda: screen.jobs[waiting[0].id].state is JobState.QUEUED)
        before = {key.value: row for key, row in table.rows.items()}
        read_before = len(reads)
        await c.set_job_priority(waiting[1].id, Priority.HIGH)
        await until(pilot, lambda: screen.jobs[waiting[1].id].priority is Priority.HIGH)
        assert str(table.get_row(str(waiting[1].id))[2]) == "HIGH"  # the prio column
        after = {key.value: row for key, row in table.rows.items()}
        assert after.keys() == before.keys() and all(after[k] is before[k] for k in before)
        assert len(reads) == read_before  # the event was enough
        # a new job gets a row of its own, at the top, and the cursor stays on its job
        table.move_cursor(row=table.get_row_index(str(waiting[2].id)), animate=False)
        _, _, new = await c.send(waiting[0].session_id, "one more")
        await until(pilot, lambda: new.id in screen.jobs)
        assert table.get_row_at(0)[0] == str(new.id) and screen.selected_id() == waiting[2].id
        assert len(reads) == read_before


async def test_cancel_all_background_work_stops_every_session_but_the_one_on_screen(fake, tmp_path):
    from chatplex.tui.screens.modals import ConfirmScreen

    app = ChatplexApp(sessions_config(fake, tmp_path, workers=2, forever=True))
    async with app.run_test(size=(130, 36)) as pilot:
        await app.ready.wait()
        c = app.coord
        ids = [(await c.create_session(f"s{n}", provider="slow")).id for n in range(3)]
        for sid in ids:
            await c.send(sid, "go on")
        here = ids[0]
        await app.focus_session(here)
        await until(pilot, lambda: app.sidebar.sessions[here].status is SessionStatus.STREAMING)
        await pilot.press("f3")
        await until(pilot, lambda: isinstance(app.screen, QueueScreen))
        await pilot.press("X")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Cancel 2 jobs in 2 other sessions" in str(app.screen.question)
        await pilot.press("y")
        await until(pilot, lambda: all(app.sidebar.sessions[sid].status is SessionStatus.IDLE for sid in ids[1:]))
        jobs = {j.session_id: j.state for j in await c.queue.jobs()}
        assert jobs == {here: JobState.RUNNING, ids[1]: JobState.CANCELLED, ids[2]: JobState.CANCELLED}
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, QueueScreen))
        await app.run_action("cancel_background")  # the palette's command: nothing left to cancel
        await until(pilot, lambda: any("No background work" in str(n.message) for n in app._notifications))
