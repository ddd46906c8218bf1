"""Two processes on one database: the TUI's coordinator with `chatplex send --no-wait` from
another process, and two coordinators claiming from the same queue."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter

from chatplex.core.events import ReplyFinished
from chatplex.core.models import JobState, MessageState, SessionStatus
from chatplex.tui.app import ChatplexApp
from tests.helpers import env_with_src, make_config, provider_for
from tests.tui.helpers import until
from tests.tui.test_app import status, type_and_send


def write_config(tmp_path, s) -> None:
    (tmp_path / "config.toml").write_text(
        f'[providers.fake]\nkind = "openai"\nbase_url = "{s.url}"\nmodel = "fake-small"\napi_key_env = ""\n'
    )


async def cli(tmp_path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chatplex",
        "--config",
        str(tmp_path / "config.toml"),
        "--db",
        str(tmp_path / "chatplex.db"),
        *args,
        env=env_with_src(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_tui_shows_a_session_sent_from_another_process_and_its_reply(fake, tmp_path):
    s = fake.scenario(reply=" ".join(f"w{i}" for i in range(30)), token_delay=0.01)
    write_config(tmp_path, s)
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await type_and_send(pilot, "typed in the app")
        mine = app.current
        # While the app's own reply streams, three messages arrive from other processes at once.
        results = await asyncio.gather(*(cli(tmp_path, "send", "--no-wait", f"from outside {i}") for i in range(3)))
        assert [r[0] for r in results] == [0, 0, 0], results
        await until(pilot, lambda: len(app.sidebar.sessions) == 4, timeout=60)
        outside = [sid for sid in app.sidebar.sessions if sid != mine]
        # The app's coordinator picks the queued jobs up and the rows turn "reply waiting".
        await until(pilot, lambda: all(status(app, sid) is SessionStatus.WAITING for sid in outside), timeout=60)
        await until(pilot, lambda: status(app, mine) is SessionStatus.WAITING)
        assert all(app.sidebar.sessions[sid].unread == 1 for sid in outside)
        titles = sorted(app.sidebar.sessions[sid].title for sid in outside)
        assert titles == [f"from outside {i}" for i in range(3)]
        await pilot.press("ctrl+o", "1")  # open one (the dashboard's first tile): the reply is there, whole
        await until(
            pilot, lambda: app.screen is app.screen_stack[0] and app.current in outside and bool(app.chat.replies)
        )
        shown = app.current
        assert shown in outside
        assert [r.text for r in app.chat.replies.values()] == [s.reply]
    assert len(s.requests) == 4  # each message was generated once


async def test_two_coordinators_share_the_queue_without_running_a_job_twice(fake, tmp_path, coordinators):
    s = fake.scenario(reply="a b c d e f", token_delay=0.005)
    config = make_config(tmp_path, provider_for(s), workers=3)
    first, rec1 = await coordinators(config, start=False)
    second, rec2 = await coordinators(config, start=False)
    replies = []
    for i in range(40):
        session = await first.create_session(f"s{i}")
        replies.append((await first.send(session.id, f"job {i}"))[1].id)
    done: Counter[int] = Counter()
    all_done = asyncio.Event()

    def on_event(event: object) -> None:
        if isinstance(event, ReplyFinished) and event.message.state is MessageState.COMPLETE:
            done[event.message.id] += 1
            if len(done) == len(replies):
                all_done.set()

    first.bus.subscribe(on_event)
    second.bus.subscribe(on_event)
    await asyncio.gather(first.start(), second.start())
    await asyncio.wait_for(all_done.wait(), 30)
    assert sorted(done) == sorted(replies) and set(done.values()) == {1}  # each reply finished once
    assert all(j.state is JobState.SUCCEEDED and j.attempts == 1 for j in await first.jobs())
    assert rec1.of(ReplyFinished) and rec2.of(ReplyFinished)  # both really worked
    assert len(s.requests) == 40
    for mid in replies:
        assert (await first.store.get_message(mid)).content == s.reply
