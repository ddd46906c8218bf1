"""A paste the terminal does not bracket arrives as one key per character, each line ending
in Enter. It must become one text in the composer and send nothing; a person's Enter sends.

The keys are made and posted from another thread, in a burst, as Textual's input thread does
with what it reads from the terminal (their time stamps are taken there)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from textual import events

from chatplex.core.models import MessageState
from chatplex.tui.app import ChatplexApp
from chatplex.tui.widgets.composer import BURST
from tests.helpers import make_config, provider_for
from tests.tui.helpers import until


def raw_keys(text: str) -> list[events.Key]:
    """The key events Textual's parser makes of `text` typed into a terminal: CR is Enter,
    LF is ctrl+j, TAB is tab."""
    names = {"\r": "enter", "\n": "ctrl+j", "\t": "tab", " ": "space"}
    return [events.Key(names.get(ch, ch), ch) for ch in text]


def post_from_a_thread(app: ChatplexApp, make_keys) -> None:
    thread = threading.Thread(target=lambda: [app.post_message(k) for k in make_keys()])
    thread.start()
    thread.join()


def paste_text(size: int) -> str:
    lines, n = [], 0
    while n < size:
        line = f"line {len(lines):05d}: some pasted text, a\ttab and [b]markup[/b] that stays literal"
        lines.append(line)
        n += len(line) + 1
    return "\r" + "\r".join(lines) + "\r"  # starts and ends with a line break, as copied text may


async def test_a_200_kb_paste_without_brackets_is_one_text_and_sends_nothing(fake, tmp_path):
    s = fake.scenario(reply="got it all")
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    pasted = paste_text(200_000)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        app.composer.focus()
        app.composer.insert("Here:")  # typed before the paste
        post_from_a_thread(app, lambda: raw_keys(pasted))
        expected = "Here:" + pasted.replace("\r", "\n")
        try:
            await until(pilot, lambda: app.composer.text == expected, timeout=300)
        except AssertionError as e:  # say how it went wrong: sent, lost focus, or short
            held = app.composer.text
            same = next(
                (i for i, (a, b) in enumerate(zip(held, expected, strict=False)) if a != b),
                min(len(held), len(expected)),
            )
            raise AssertionError(
                f"the box holds {len(held)} of {len(expected)} characters, the same up to {same}"
                f" ({expected[max(0, same - 40) : same + 40]!r}); {len(s.requests)} requests sent;"
                f" focus on {app.focused!r}"
            ) from e
        assert s.requests == [] and await app.coord.jobs() == [] and app.current is None
        assert app.composer.has_focus  # the tabs in it did not move the focus away
        # a person reads it over and presses Enter: one message, the whole text
        app.composer.post_message(events.Key("enter", "\r"))
        await until(
            pilot,
            lambda: (
                app.current is not None
                and app.chat.replies
                and next(iter(app.chat.replies.values())).message.state is MessageState.COMPLETE
            ),
        )
        assert [r["messages"][-1]["content"] for r in s.requests] == [expected]
        assert len(await app.coord.jobs()) == 1 and app.composer.text == ""


async def test_typing_at_a_persons_pace_sends_at_each_enter(fake, tmp_path):
    """The same keys, stamped 80 ms apart as fingers type them, and all handled at once (as
    when the app was busy): each Enter sends."""
    s = fake.scenario(reply="ok")
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))

    def typed() -> list[events.Key]:
        keys, start = raw_keys("hi\rok\r"), time.monotonic()
        for n, key in enumerate(keys):
            key.time = start + 0.08 * n
        return keys

    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        app.composer.focus()
        post_from_a_thread(app, typed)
        await until(
            pilot,
            lambda: (
                len(s.requests) == 2
                and all(r.message.state is MessageState.COMPLETE for r in app.chat.replies.values())
            ),
        )
        assert [r["messages"][-1]["content"] for r in s.requests] == ["hi", "ok"]
        assert app.composer.text == ""


async def test_a_paste_whose_stamps_show_a_stall_before_a_line_break_still_sends_nothing(fake, tmp_path):
    """The thread reading the terminal can wait for the interpreter while the app re-wraps a
    long text: the paste's stamps then show a gap. Here 150 ms before a line break and 40 ms
    after it (both longer than a burst's gap): still one text, nothing sent."""
    s = fake.scenario(reply="ok")
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    text = "first pasted line\rsecond pasted line"

    def stalled() -> list[events.Key]:
        keys, at = raw_keys(text), time.monotonic()
        for n, key in enumerate(keys):
            after_enter = n > 0 and keys[n - 1].key == "enter"
            at += 0.15 if key.key == "enter" else 0.04 if after_enter else 0.001
            key.time = at
        return keys

    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        app.composer.focus()
        post_from_a_thread(app, stalled)
        await until(pilot, lambda: app.composer.text == text.replace("\r", "\n"))
        assert s.requests == [] and await app.coord.jobs() == [] and app.current is None


@pytest.mark.parametrize("gap", [0.2, 1.5])
async def test_a_paste_whose_stamps_show_a_stall_before_a_tab_keeps_the_tab_and_the_focus(fake, tmp_path, gap):
    """A garbage collection stops the thread that reads the terminal too: a 200 KB paste's
    stamps showed gaps of 100-250 ms, and on a loaded machine over a second (then the keys
    after the gap look typed). A Tab right after such a gap is judged like an Enter, by the
    key after it: one at a machine's pace makes it pasted text, so it does not move the focus
    out of the box (where the rest of the paste would be lost; a soak failed so)."""
    s = fake.scenario(reply="ok")
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    text = "pasted line\rcol a\tcol b\rlast line"

    def stalled() -> list[events.Key]:
        keys, at = raw_keys(text), time.monotonic()
        for n, key in enumerate(keys):
            before_tab = n + 2 < len(keys) and keys[n + 2].key == "tab"
            at += gap if before_tab else 0.001  # the gap falls two keys before the tab
            key.time = at
        return keys

    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        app.composer.focus()
        post_from_a_thread(app, stalled)
        await until(pilot, lambda: app.composer.text == text.replace("\r", "\n"))
        assert app.composer.has_focus
        assert s.requests == [] and await app.coord.jobs() == [] and app.current is None


async def test_a_tab_a_person_presses_still_moves_the_focus(fake, tmp_path):
    s = fake.scenario(reply="ok")
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        app.composer.focus()
        await pilot.press("h", "i")
        await pilot.pause()
        await pilot.press("tab")
        await until(pilot, lambda: not app.composer.has_focus)
        assert app.composer.text == "hi"


async def test_keys_stamped_right_after_an_enter_but_handled_late_make_it_a_line_break(fake, tmp_path):
    """The box can be slow to reach the keys queued behind an Enter (a busy app: a re-wrap, a
    mount, many sessions streaming) while the Enter's 20 ms window passes on the clock. Keys
    stamped a millisecond after it are still a paste: "Here:" is not sent on its own."""
    s = fake.scenario(reply="ok")
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))

    async def the_box_is_busy() -> None:  # the clock passes the Enter's window meanwhile
        await asyncio.sleep(10 * BURST)

    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        box = app.composer
        box.focus()
        box.insert("Here:")
        keys, at = raw_keys("\rpasted text"), time.monotonic()
        for n, key in enumerate(keys):
            key.time = at + 0.001 * n
        box.post_message(keys[0])
        box.call_later(the_box_is_busy)
        for key in keys[1:]:
            box.post_message(key)
        await until(pilot, lambda: box.text.endswith("pasted text"))
        assert box.text == "Here:\npasted text"
        assert s.requests == [] and await app.coord.jobs() == [] and app.current is None


async def test_a_bracketed_paste_is_still_one_fast_edit(fake, tmp_path):
    s = fake.scenario()
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    pasted = paste_text(200_000).replace("\r", "\n")
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        app.composer.focus()
        app.post_message(events.Paste(pasted))
        await until(pilot, lambda: app.composer.text == pasted)
        assert s.requests == []


async def test_a_key_queued_behind_a_typed_tab_goes_where_the_tab_moved_the_focus(fake, tmp_path):
    """A person's Tab, then a key half a second later, both handled late (a busy app): the
    Tab is judged typed when the key comes, moves the focus, and the key goes there, not
    into the box it left."""
    s = fake.scenario(reply="ok")
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))

    def typed() -> list[events.Key]:
        keys, at = raw_keys("hi\tx"), time.monotonic()
        for n, key in enumerate(keys):
            key.time = at + 0.5 * n
        return keys

    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        app.composer.focus()
        post_from_a_thread(app, typed)
        await until(pilot, lambda: not app.composer.has_focus)
        await pilot.pause()
        assert app.composer.text == "hi"
        assert s.requests == []
