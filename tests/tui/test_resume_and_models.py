"""The chat pane on a continued reply (shown once, never twice) and on replies written by
different models of one session."""

from __future__ import annotations

import dataclasses
import threading

from chatplex.core.db import Store
from chatplex.core.models import MessageState, Priority, SessionStatus
from chatplex.core.queue import JobQueue
from chatplex.providers.base import TextPart
from chatplex.tui.app import ChatplexApp
from chatplex.tui.widgets.chat import ReplyMessage
from tests.fakeserver import Fault
from tests.helpers import make_config, provider_for
from tests.tui.helpers import until

REPLY = " ".join(f"w{i}" for i in range(40))


async def test_a_continued_reply_shows_its_partial_once_then_the_rest(fake, tmp_path):
    hold = threading.Event()
    s = fake.scenario(reply=REPLY, faults=[Fault(hold_after=6, hold=hold)])
    config = make_config(tmp_path, provider_for(s, kind="anthropic", resume="continue"))
    store = await Store.open(config.db_path)
    q = JobQueue(store)
    session = await store.create_session("cut", "fake", "fake-small")
    _, reply, _, _ = await q.enqueue(session.id, "go", Priority.LOW)
    job, _ = await q.claim()
    await q.give_back(job, "w0 w1 w2 ", "paused: chatplex was stopped")  # as Ctrl+Q mid-stream leaves it
    await store.close()
    app = ChatplexApp(config)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await until(pilot, lambda: app.current == session.id and reply.id in app.chat.replies)
        widget = app.chat.replies[reply.id]
        await until(pilot, lambda: "w7" in widget.text)  # the continuation streams, held after w7
        assert widget.text == "w0 w1 w2 w3 w4 w5 w6 w7"  # after the kept partial, not instead of it
        hold.set()
        await until(pilot, lambda: status(app, session.id) is SessionStatus.WAITING)
        await until(pilot, lambda: widget.message.state is MessageState.COMPLETE)
        assert widget.text == REPLY
    assert s.requests[0]["messages"][-1] == {"role": "assistant", "content": "w0 w1 w2"}


def status(app, sid):
    return app.sidebar.sessions[sid].status


async def test_each_reply_is_labelled_with_the_model_that_wrote_it(fake, tmp_path):
    s = fake.scenario(reply="fine")
    config = make_config(tmp_path, provider_for(s))
    store = await Store.open(config.db_path)
    q = JobQueue(store)
    session = await store.create_session("two models", "fake", "fake-small")
    for text, model in (("one", "fake-small"), ("two", "fake-large")):
        await store.update_session(session.id, model=model)
        await q.enqueue(session.id, text, Priority.LOW)
        job, _ = await q.claim()
        await q.complete(job, f"by {model}", unread=False, usage=(None, None), finish_reason="stop")
    await store.close()
    app = ChatplexApp(config)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await until(pilot, lambda: app.current == session.id and len(app.chat.replies) == 2)
        titles = [str(w.border_title) for w in app.chat.query(ReplyMessage)]
        assert titles == ["fake-small", "fake-large"]


async def test_unknown_config_keys_are_shown_at_start_up(fake, tmp_path):
    s = fake.scenario(reply="x")
    (tmp_path / "config.toml").write_text(
        f'workerz = 3\n[providers.fake]\nkind = "openai"\nbase_url = "{s.url}"\nmodel = "m"\napi_key_env = ""\n'
    )
    from chatplex.config import load

    app = ChatplexApp(load(tmp_path / "config.toml", tmp_path / "db.sqlite"))
    said: list[str] = []
    notify = app.notify

    def spy(message, *args, **kwargs):
        said.append(str(message))
        return notify(message, *args, **kwargs)

    app.notify = spy  # type: ignore[method-assign]
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await until(pilot, lambda: any('unknown key "workerz" (did you mean "workers"?)' in m for m in said))


async def test_a_reply_shown_from_an_older_snapshot_fills_in_what_it_missed(fake, tmp_path):
    """The transcript is read, then mounted a few turns of the loop later; the deltas streamed
    in between were handled while the box did not exist yet. The next delta lands beyond the
    box's text: the missing words are taken from the reply's live text, not skipped."""
    hold = threading.Event()
    s = fake.scenario(reply=REPLY, token_delay=0.05, faults=[Fault(hold_after=6, hold=hold)])
    config = make_config(tmp_path, provider_for(s))
    store = await Store.open(config.db_path)
    session = await store.create_session("late", "fake", "fake-small")
    _, reply, _, _ = await JobQueue(store).enqueue(session.id, "go", Priority.LOW)
    await store.close()
    app = ChatplexApp(config)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        await until(pilot, lambda: reply.id in app.chat.replies and "w5" in app.chat.replies[reply.id].text)
        messages = await app.coord.messages(session.id)
        stale = [
            dataclasses.replace(m, content="w0 w1", parts=[TextPart("w0 w1")]) if m.id == reply.id else m
            for m in messages
        ]
        current = await app.coord.session(session.id)
        await app.chat.show(current, stale)  # as if read before w2..w5 streamed
        widget = app.chat.replies[reply.id]
        assert widget.text == "w0 w1"
        hold.set()
        await until(pilot, lambda: "w9" in widget.text)
        assert REPLY.startswith(widget.text), widget.text  # no hole where w2..w5 were
        await until(pilot, lambda: widget.message.state is MessageState.COMPLETE)
        assert widget.text == REPLY
