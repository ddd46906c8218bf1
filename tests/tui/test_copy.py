"""Copy mode (F5): a message or one code block of a reply, as stored, to the terminal's
clipboard (Textual's OSC 52: `App.clipboard` is what it sent) and to the system clipboard
through a tool (a fake `wl-copy` on PATH records what it was given)."""

from __future__ import annotations

import os
import stat
import sys

import pytest
from textual import events

from chatplex.tui.app import ChatplexApp
from chatplex.tui.screens.copy import CopyScreen
from tests.helpers import make_config, provider_for
from tests.tui.helpers import finished_turns, still, until

QUESTION = "How do I print [b]twice[/b]?"
REPLY = (
    "Like this:\n\n```python\nprint('hi')\nprint('hi')\n```\n\nor in the shell:\n\n"
    "```sh\necho hi; echo hi\n```\n\nThat is **all**."
)
SIZE = (100, 40)


@pytest.fixture(autouse=True)
def _no_system_clipboard(monkeypatch):
    still(monkeypatch)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)


async def conversation(config) -> None:
    await finished_turns(config.db_path, "Copying", [(QUESTION, REPLY)])


def copy_app(fake, tmp_path) -> ChatplexApp:
    return ChatplexApp(make_config(tmp_path, provider_for(fake.scenario(reply="ok"))))


async def message_mode(pilot, replies: int) -> None:
    """The app on screen with its `replies` shown, then F5."""
    app = pilot.app
    await app.ready.wait()
    await until(pilot, lambda: len(app.chat.replies) == replies)
    await pilot.press("f5")
    await until(pilot, lambda: isinstance(app.screen, CopyScreen))


def toasts(app) -> str:
    return " ".join(str(n.message) for n in app._notifications)


async def test_f5_then_c_copies_one_code_block_without_its_fences(fake, tmp_path):
    app = copy_app(fake, tmp_path)
    await conversation(app.config)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await until(pilot, lambda: len(app.chat.replies) == 1)
        [reply] = app.chat.replies.values()
        await pilot.press("f5")
        await until(pilot, lambda: isinstance(app.screen, CopyScreen))
        assert reply.has_class("-copying")  # the newest message first
        await pilot.press("c")
        fences = list(reply.query("MarkdownFence"))
        assert fences[0].has_class("-copying") and not reply.has_class("-copying")
        await pilot.press("c")
        assert fences[1].has_class("-copying") and not fences[0].has_class("-copying")
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, CopyScreen))
        assert app.clipboard == "echo hi; echo hi\n"  # the code, no fence, no language
        assert not any(f.has_class("-copying") for f in fences)  # the marks go with the mode
        await until(pilot, lambda: "Sent code block 2 (sh)" in toasts(app))
        assert "No wl-copy, xclip, xsel or pbcopy works here" in toasts(app)  # it says what it could not do


async def test_the_whole_reply_and_the_question_are_copied_as_stored_also_through_wl_copy(fake, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    got = tmp_path / "got.txt"
    tool = bin_dir / "wl-copy"
    tool.write_text(f"#!{sys.executable}\nimport sys\nopen({str(got)!r}, 'wb').write(sys.stdin.buffer.read())\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-test")
    app = copy_app(fake, tmp_path)
    await conversation(app.config)
    async with app.run_test(size=SIZE) as pilot:
        await message_mode(pilot, 1)
        await pilot.press("enter")
        await until(pilot, lambda: got.exists() and "Copied the reply" in toasts(app))
        assert app.clipboard == REPLY and got.read_text() == REPLY  # the Markdown as stored, not as shown
        assert "(wl-copy, and the terminal's)" in toasts(app)
        await pilot.press("f5")
        await until(pilot, lambda: isinstance(app.screen, CopyScreen))
        await pilot.press("up", "enter")
        await until(pilot, lambda: app.clipboard == QUESTION)
        assert app.composer.text == ""  # nothing typed into the box meanwhile


def test_snapshot_copy_mode_on_a_code_block(snap_compare, fake, tmp_path):
    import asyncio

    app = copy_app(fake, tmp_path)
    asyncio.run(conversation(app.config))

    async def run_before(pilot):
        await pilot.app.ready.wait()
        await until(pilot, lambda: len(app.chat.replies) == 1)
        [reply] = app.chat.replies.values()
        await until(pilot, lambda: len(reply.query("MarkdownFence")) == 2)
        await pilot.press("f5", "c")
        await until(pilot, lambda: reply.query("MarkdownFence").first().has_class("-copying"))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


async def two_turns(config) -> int:
    turns = [("first question", "first answer"), ("second question", "second answer")]
    return await finished_turns(config.db_path, "Twice", turns)


def contents(messages) -> list[str]:
    return [m.content for m in messages]


async def test_f_forks_at_the_highlighted_message_and_o_goes_back_to_where_it_began(fake, tmp_path):
    app = copy_app(fake, tmp_path)
    original = await two_turns(app.config)
    async with app.run_test(size=SIZE) as pilot:
        await message_mode(pilot, 2)
        await pilot.press("up", "up", "f")  # the first answer
        await until(pilot, lambda: app.current not in (None, original))
        fork = await app.coord.session(app.current)
        assert fork.title == "Twice (fork)" and fork.forked_from == original
        assert contents(await app.coord.messages(fork.id)) == ["first question", "first answer"]
        assert len(await app.coord.messages(original)) == 4  # untouched
        assert fork.id in app.sidebar.sessions
        await pilot.press("f5")
        await until(pilot, lambda: isinstance(app.screen, CopyScreen))
        await pilot.press("o")
        await until(pilot, lambda: app.current == original)


async def test_e_edits_one_of_your_messages_into_a_fork_and_sends_it_there(fake, tmp_path):
    app = copy_app(fake, tmp_path)
    original = await two_turns(app.config)
    async with app.run_test(size=SIZE) as pilot:
        await message_mode(pilot, 2)
        await pilot.press("up", "e")  # the second question
        await until(pilot, lambda: app.current not in (None, original) and app.composer.text == "second question")
        fork = app.current
        assert contents(await app.coord.messages(fork)) == ["first question", "first answer"]
        app.composer.insert("!")  # the cursor is at the end of the old text
        app.composer.post_message(events.Key("enter", "\r"))  # a person's Enter (see test_app.type_and_send)
        await until(pilot, lambda: contents_now_done(app))  # the fork's new reply came
        sent = await app.coord.messages(fork)
        assert contents(sent)[:3] == ["first question", "first answer", "second question!"]
        assert contents(await app.coord.messages(original)) == [
            "first question",
            "first answer",
            "second question",
            "second answer",
        ]


def contents_now_done(app) -> bool:
    replies = list(app.chat.replies.values())
    return len(replies) == 2 and replies[-1].message.content == "ok"
