"""Desktop notifications while the terminal is not focused (issue 17, item 6): which way for
which terminal, the sequences (model output cannot escape them), one notification for a
burst, none while the user looks, and the config switch. The app's notifications are caught
where it writes them to the terminal; the model is the fake server, the tool the real
faulty MCP server."""

from __future__ import annotations

import threading

import pytest
from textual import events

from chatplex.config import ConfigError, load
from chatplex.core.models import SessionStatus
from chatplex.tui import app as app_module
from chatplex.tui import notify
from chatplex.tui.app import ChatplexApp
from tests.fakeserver import Fault
from tests.helpers import make_config, provider_for
from tests.tui.helpers import until
from tests.tui.test_app import status
from tests.tui.test_approvals import agent_app, parked


def no_tool(name: str) -> str | None:
    return None


def every_tool(name: str) -> str | None:
    return f"/usr/bin/{name}"


@pytest.mark.parametrize(
    ("env", "platform", "which", "way"),
    [
        ({"TERM": "xterm-kitty", "KITTY_WINDOW_ID": "1"}, "linux", no_tool, "osc99"),
        ({"TERM_PROGRAM": "iTerm.app"}, "darwin", every_tool, "osc9"),
        ({"LC_TERMINAL": "iTerm2", "TERM_PROGRAM": "tmux"}, "darwin", every_tool, "osc9"),
        ({"TERM_PROGRAM": "WezTerm"}, "linux", every_tool, "osc777"),
        ({"TERM_PROGRAM": "ghostty"}, "darwin", every_tool, "osc777"),
        ({"TERM": "foot"}, "linux", no_tool, "osc777"),
        ({"TERM": "xterm-256color", "DISPLAY": ":0"}, "linux", every_tool, "notify-send"),
        ({"TERM": "xterm-256color", "WAYLAND_DISPLAY": "wayland-0"}, "linux", no_tool, None),
        ({"TERM": "xterm-256color"}, "linux", every_tool, None),  # no desktop (ssh, a console)
        ({"TERM_PROGRAM": "Apple_Terminal"}, "darwin", every_tool, "osascript"),
    ],
)
def test_the_way_to_notify_follows_the_terminal(env, platform, which, way):
    assert notify.choose(env, which, platform) == way


def test_the_setting_picks_a_way_or_none():
    kitty = {"KITTY_WINDOW_ID": "1"}
    assert notify.method_of("auto", kitty, no_tool) == "osc99"
    assert notify.method_of("off", kitty, no_tool) is None
    assert notify.method_of("osc777", kitty, no_tool) == "osc777"


@pytest.mark.parametrize("way", notify.OSC)
def test_model_output_cannot_end_the_sequence_or_write_to_the_terminal(way):
    evil = "done\x1b]0;owned\x07\x1b[2J\x9b31m; next\nline\r"
    seq = notify.sequence(way, "Session; with \x07 bell", evil)
    body = seq[seq.index(";") :]  # what follows the sequence's number
    framing = {"osc777": 1, "osc9": 1, "osc99": 4}[way]  # ESC of each OSC start and ST end
    assert seq.count("\x1b") == framing and seq.count("\x9b") == 0
    assert "\n" not in seq and "\r" not in seq and "\x07" not in seq[:-1]
    assert "owned" in body and "[2J" in body  # shown as text, not obeyed
    if way == "osc777":  # its fields are split at ';': the title and body cannot add one
        assert seq.count(";") == 3


def test_inside_tmux_the_sequence_is_passed_through_with_its_escapes_doubled():
    seq = notify.sequence("osc777", "t", "b", tmux=True)
    assert seq == "\x1bPtmux;\x1b\x1b]777;notify;t;b\x07\x1b\\"


def test_a_burst_is_one_notification_that_counts_and_names_them():
    h = notify.Happening
    one = notify.summary([h("reply", 1, "Essay", "The answer is 42.")])
    assert one == ("chatplex: Essay replied", "The answer is 42.")
    title, body = notify.summary(
        [h("reply", 1, "A", "x"), h("failed", 2, "B", "500"), h("approval", 3, "C", "call"), h("reply", 4, "D", "y")]
    )
    assert title == "chatplex: 1 needs your approval, 1 failed, 2 replies arrived"
    assert body == "A, B, C, D"


def test_notify_send_takes_a_body_that_begins_with_a_dash_as_text():
    assert notify.command("notify-send", "t", "- a list item") == [
        "notify-send",
        "--app-name=chatplex",
        "--",
        "t",
        "- a list item",
    ]


def test_osascript_gets_the_text_as_applescript_strings():
    argv = notify.command("osascript", 'say "hi"', "a \\ b")
    assert argv == ["osascript", "-e", 'display notification "a \\\\ b" with title "say \\"hi\\""']


def test_config_turns_it_off_or_names_a_way(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("notifications = false\n")
    assert load(path).notifications == "off"
    path.write_text('notifications = "osc9"\n')
    assert load(path).notifications == "osc9"
    path.write_text('notifications = "loud"\n')
    with pytest.raises(ConfigError, match="notifications must be one of auto, off, osc777"):
        load(path)


def caught(app) -> list[str]:
    """The app's desktop notifications, as written to the terminal."""
    sent: list[str] = []
    app.desktop_write = sent.append
    return sent


async def ready_and_away(app, pilot, way: str = "osc777") -> None:
    await app.ready.wait()
    app.desktop_method = way
    app.post_message(events.AppBlur())  # the terminal lost the focus
    await until(pilot, lambda: not app.app_focus)


async def test_away_from_the_terminal_a_burst_of_replies_is_one_notification(fake, tmp_path, monkeypatch):
    """Three sessions finish at once, the one on screen among them (the user is in another
    window): one notification names them all."""
    monkeypatch.setattr(app_module, "AWAY_WINDOW", 3.0)
    release = threading.Event()
    s = fake.scenario(reply="all done", faults=[Fault(hold_after=1, hold=release) for _ in range(3)])
    app = ChatplexApp(make_config(tmp_path, provider_for(s), workers=4))
    sent = caught(app)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready_and_away(app, pilot)
        ids = [(await app.coord.create_session(f"Essay {n}")).id for n in range(3)]
        await app.focus_session(ids[0])
        for sid in ids:
            await app.coord.send(sid, "write it")
        await until(pilot, lambda: s.active == 3)
        release.set()
        await until(pilot, lambda: all(status(app, sid) is SessionStatus.WAITING for sid in ids))
        await until(pilot, lambda: bool(sent))
        [seq] = sent
        start, title, names = seq.removesuffix("\x07").split(";")[1:]
        assert (start, title) == ("notify", "chatplex: 3 replies arrived")
        assert sorted(names.split(", ")) == ["Essay 0", "Essay 1", "Essay 2"]  # in the order they came


async def test_a_failure_notifies_and_nothing_does_while_the_user_looks(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(app_module, "AWAY_WINDOW", 0.1)
    monkeypatch.setattr(app_module, "AWAY_GAP", 0.1)
    s = fake.scenario(reply="fine", faults=[Fault(status=400)])
    app = ChatplexApp(make_config(tmp_path, provider_for(s), max_attempts=1))
    sent = caught(app)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.ready.wait()
        app.desktop_method = "osc9"
        here = (await app.coord.create_session("Here")).id
        await app.focus_session(here)
        await app.coord.send(here, "first")  # the terminal has the focus: no notification
        await until(pilot, lambda: status(app, here) is SessionStatus.ERROR)
        await app.coord.send(here, "second")
        await until(pilot, lambda: status(app, here) is SessionStatus.WAITING)
        assert sent == []
        app.post_message(events.AppBlur())
        await until(pilot, lambda: not app.app_focus)
        other = (await app.coord.create_session("Broken")).id
        s.faults.append(Fault(status=400))
        await app.coord.send(other, "go")
        await until(pilot, lambda: bool(sent))
        assert sent == ["\x1b]9;chatplex: Broken failed: fake: HTTP 400: injected error 400\x07"]


async def test_coming_back_before_the_notification_drops_it(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(app_module, "AWAY_WINDOW", 600.0)  # it would wait: the user comes back first
    s = fake.scenario(reply="here it is")
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    sent = caught(app)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready_and_away(app, pilot)
        sid = (await app.coord.create_session("Soon")).id
        await app.coord.send(sid, "go")
        await until(pilot, lambda: status(app, sid) is SessionStatus.WAITING)
        app.post_message(events.AppFocus())
        await until(pilot, lambda: app.app_focus)
        monkeypatch.setattr(app_module, "AWAY_WINDOW", 0.05)
        app.post_message(events.AppBlur())
        await until(pilot, lambda: not app.app_focus)
        again = (await app.coord.create_session("Later")).id
        await app.coord.send(again, "go")
        await until(pilot, lambda: bool(sent))
        assert sent == ["\x1b]777;notify;chatplex: Later replied;here it is\x07"]  # not "Soon"


async def test_a_call_waiting_for_approval_notifies_once(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(app_module, "AWAY_WINDOW", 0.1)
    monkeypatch.setattr(app_module, "AWAY_GAP", 0.1)
    app = agent_app(fake, tmp_path)
    sent = caught(app)
    async with app.run_test(size=(110, 32)) as pilot:
        await ready_and_away(app, pilot, "osc99")
        sid = await parked(app, pilot, title="Agent", focus=False)
        await until(pilot, lambda: bool(sent))
        assert "p=title;chatplex: Agent needs your approval" in sent[0] and "p=body;a tool call waits" in sent[0]
        await app.coord.rename(sid, "Agent, renamed")  # the session changes again, still waiting
        await until(pilot, lambda: app.sidebar.sessions[sid].title == "Agent, renamed")
        other = await parked(app, pilot, title="Second", focus=False)  # what comes next is told next
        await until(pilot, lambda: len(sent) >= 2)
        assert len(sent) == 2 and "chatplex: Second needs your approval" in sent[1], sent  # none for the rename
        assert app.sidebar.sessions[other].status.value == "needs_approval"
