"""Tool calls that wait for the user, in the app: the loud marks (sidebar, status bar, the
step's card), F6 to the next one from anywhere, the dialog's answers, and snapshots of each
state. The model is the fake server (a call of `echo`, then an answer once it has a result);
the tool is real: tests/mcpservers/faulty.py's echo over stdio."""

from __future__ import annotations

import dataclasses
import time

import pytest

from chatplex.core.models import JobState, MessageState, Role, SessionStatus
from chatplex.tui.app import ChatplexApp
from chatplex.tui.screens.approval import ApprovalScreen
from chatplex.tui.widgets.tool_step import ToolStep
from tests.helpers import make_config, provider_for
from tests.tools.helpers import faulty_server
from tests.tui.helpers import status_settled, still, toasts_stay, until

SIZE = (110, 32)
ARGS = '{"text": "[bold]not markup[/bold] \\u001b[31mred?"}'


@pytest.fixture(autouse=True)
def _still(monkeypatch):
    still(monkeypatch)
    toasts_stay(monkeypatch)  # "No tool call waits" shows for 2 s: a soak under load missed it


def agent_app(fake, tmp_path, approval: str = "ask", after: str = "The tool said it back.") -> ChatplexApp:
    s = fake.scenario(parts=[("reasoning", "I will echo it"), ("tool", "echo", ARGS)], after_tool=after)
    config = make_config(tmp_path, provider_for(s), workers=2)
    return ChatplexApp(dataclasses.replace(config, mcp={"faulty": faulty_server(approval=approval)}))


def status(app, sid):
    return app.sidebar.sessions[sid].status


def steps(app) -> list[ToolStep]:
    return list(app.chat.tool_steps.values())


async def parked(app, pilot, title: str = "Echo agent", focus: bool = True) -> int:
    """A session whose agent turn waits for approval of its echo call."""
    session = await app.coord.create_session(title)
    if focus:
        await app.focus_session(session.id)
    await app.coord.send(session.id, "say it back")
    await until(pilot, lambda: status(app, session.id) is SessionStatus.NEEDS_APPROVAL)
    return session.id


async def test_a_waiting_call_is_loud_everywhere_and_f6_then_y_runs_it(fake, tmp_path):
    app = agent_app(fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        sid = await parked(app, pilot)
        await until(pilot, lambda: bool(steps(app)) and steps(app)[0].needs_you)
        await until(pilot, lambda: app.status.approvals == 1)
        assert "1 need you · f6" in str(app.status.render())
        assert "needs your approval" in str(steps(app)[0].render())
        await pilot.press("f6")
        await until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        shown = app.screen.query_one("#arguments").text
        assert shown.startswith('{\n  "text": ')  # pretty JSON, not the one line the model wrote
        assert "[bold]not markup[/bold]" in shown and "\x1b" not in shown  # literal; no escape reaches the screen
        await pilot.press("y")
        await until(pilot, lambda: status(app, sid) is SessionStatus.WAITING)
        await until(pilot, lambda: not steps(app)[0].pending)
        assert "[bold]not markup[/bold]" in str(steps(app)[0].render())
        last = (await app.coord.messages(sid))[-1]
        assert last.role is Role.ASSISTANT and last.content == "The tool said it back."


async def test_f6_from_another_session_goes_to_the_one_that_waits_and_n_denies_with_a_reason(fake, tmp_path):
    app = agent_app(fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        sid = await parked(app, pilot, focus=False)
        other = await app.coord.create_session("Elsewhere")
        await app.focus_session(other.id)
        await pilot.press("f6")
        await until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        assert app.current == sid  # shown first, then asked
        await pilot.press("n")
        await pilot.press(*"not now")
        await pilot.press("enter")
        await until(pilot, lambda: status(app, sid) is SessionStatus.WAITING)
        tool = [m for m in await app.coord.messages(sid) if m.role is Role.TOOL][0]
        assert tool.parts[0].is_error and tool.content == "the user denied this call: not now"
        await until(pilot, lambda: bool(steps(app)) and steps(app)[0].has_class("-error"))


async def test_escape_leaves_the_call_waiting_and_f6_with_nothing_waiting_says_so(fake, tmp_path):
    app = agent_app(fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await pilot.press("f6")
        await until(pilot, lambda: any("No tool call waits" in n.message for n in app._notifications))
        sid = await parked(app, pilot)
        await pilot.press("f6")
        await until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ApprovalScreen))
        [waiting] = await app.coord.approvals()
        assert waiting.job.state is JobState.HELD and status(app, sid) is SessionStatus.NEEDS_APPROVAL


# ---------------------------------------------------------------------- snapshots
def test_snapshot_a_session_waiting_for_approval(snap_compare, fake, tmp_path):
    app = agent_app(fake, tmp_path)

    async def run_before(pilot):
        await pilot.app.ready.wait()
        await app.coord.create_session("Quiet one")
        await parked(app, pilot)
        await until(pilot, lambda: bool(steps(app)) and steps(app)[0].needs_you)
        await status_settled(pilot)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_snapshot_the_approval_dialog(snap_compare, fake, tmp_path):
    app = agent_app(fake, tmp_path)

    async def run_before(pilot):
        await pilot.app.ready.wait()
        await parked(app, pilot)
        await status_settled(pilot)
        await pilot.press("f6")
        await until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_snapshot_a_turn_done_with_its_tool_result(snap_compare, fake, tmp_path):
    app = agent_app(fake, tmp_path, approval="allow")

    async def run_before(pilot):
        await pilot.app.ready.wait()
        session = await app.coord.create_session("Echo agent")
        await app.focus_session(session.id)
        await app.coord.send(session.id, "say it back")
        await until(pilot, lambda: status(app, session.id) is SessionStatus.WAITING)
        await until(pilot, lambda: bool(steps(app)) and steps(app)[0].message.state is MessageState.COMPLETE)
        reply = list(app.chat.replies.values())[-1]
        await until(pilot, lambda: reply._markdown is not None and reply._markdown.source == "The tool said it back.")
        await status_settled(pilot)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_snapshot_the_dashboard_with_a_session_waiting(snap_compare, fake, tmp_path):
    app = agent_app(fake, tmp_path)

    async def run_before(pilot):
        await pilot.app.ready.wait()
        await app.coord.create_session("Quiet one")
        await parked(app, pilot)
        await status_settled(pilot)
        await pilot.press("ctrl+o")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


async def test_the_dashboard_names_the_keys_as_remapped_in_config(fake, tmp_path):
    from chatplex.tui.screens.dashboard import DashboardScreen

    app = agent_app(fake, tmp_path)
    app.config = dataclasses.replace(app.config, keys={"approvals": "f5"})
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        sid = await parked(app, pilot)
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen) and sid in app.screen.tiles)
        tile = app.screen.tiles[sid]
        await until(pilot, lambda: "f5 answers" in str(tile.render()))
        await pilot.press("escape")
        await pilot.press("f5")  # the remapped key does what the tile says
        await until(pilot, lambda: isinstance(app.screen, ApprovalScreen))


# ---------------------------------------------------------------------- the tools screen
def tools_app(fake, tmp_path) -> ChatplexApp:
    from chatplex.tools import McpServerConfig

    s = fake.scenario(reply="ok")
    config = make_config(tmp_path, provider_for(s))
    servers = {
        "faulty": faulty_server(approval="allow", tools={"crash": "deny", "hang": "ask"}),
        "ghost": McpServerConfig(name="ghost", command="chatplex-no-such-mcp-server", enabled=False),
    }
    return ChatplexApp(dataclasses.replace(config, mcp=servers))


async def test_f7_lists_each_server_its_tools_and_what_a_call_needs(fake, tmp_path):
    from chatplex.tui.screens.tools import ToolsScreen

    app = tools_app(fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await pilot.press("f7")
        await until(pilot, lambda: isinstance(app.screen, ToolsScreen) and app.screen.report is not None)
        table = app.screen.query_one("DataTable")
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        by_tool = {r[3]: r for r in rows if r[0] == "faulty"}
        assert by_tool["echo"][4] == "allow" and by_tool["crash"][4] == "deny" and by_tool["hang"][4] == "ask"
        [ghost] = [r for r in rows if r[0] == "ghost"]
        assert ghost[1] == "failed" and ghost[2] == "off (not offered)"
        assert "chatplex-no-such-mcp-server was not found" in ghost[6]
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ToolsScreen))


async def test_f7_shows_where_a_tool_runs_without_asking_and_x_makes_it_ask_again(fake, tmp_path):
    from chatplex.tui.screens.tools import ToolsScreen

    app = agent_app(fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        sid = await parked(app, pilot)
        [waiting] = await app.coord.approvals()
        assert await app.coord.approve(waiting.job.id, always=True)
        await until(pilot, lambda: status(app, sid) is SessionStatus.WAITING)
        await pilot.press("f7")
        await until(pilot, lambda: isinstance(app.screen, ToolsScreen) and app.screen.report is not None)
        table = app.screen.query_one("DataTable")

        def row(tool: str) -> list[str]:
            rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
            return next(r for r in rows if r[3] == tool)

        assert row("echo")[4:6] == ["ask", str(sid)]  # asks, except in the session that said always
        assert row("hang")[5] == ""
        table.move_cursor(row=next(i for i in range(table.row_count) if str(table.get_row_at(i)[3]) == "echo"))
        await pilot.press("x")
        await until(pilot, lambda: row("echo")[5] == "")
        assert (await app.coord.store.get_session(sid)).allowed_tools == ()


def test_snapshot_the_tools_screen(snap_compare, fake, tmp_path):
    from chatplex.tui.screens.tools import ToolsScreen

    app = tools_app(fake, tmp_path)

    async def run_before(pilot):
        await pilot.app.ready.wait()
        await pilot.press("f7")
        await until(pilot, lambda: isinstance(app.screen, ToolsScreen) and app.screen.report is not None)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


# ---------------------------------------------------------------------- found by trying it as a user
async def test_a_call_answered_by_another_process_closes_its_dialog_and_its_step_follows(fake, tmp_path):
    from chatplex.core.coordinator import Coordinator

    app = agent_app(fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        sid = await parked(app, pilot)
        await pilot.press("f6")
        await until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        [waiting] = await app.coord.approvals()
        async with await Coordinator.open(app.config) as shell:  # as `chatplex deny` from a shell
            assert await shell.deny(waiting.job.id, "from the shell")
        await until(pilot, lambda: not isinstance(app.screen, ApprovalScreen))
        await until(pilot, lambda: any("answered elsewhere" in n.message for n in app._notifications))
        await until(pilot, lambda: status(app, sid) is SessionStatus.WAITING)
        await until(pilot, lambda: bool(steps(app)) and steps(app)[0].has_class("-error"))
        assert "the user denied this call: from the shell" in str(steps(app)[0].render())


async def test_the_dialog_keeps_its_choices_in_sight_at_80x24_and_escape_drops_a_reason(fake, tmp_path):
    app = agent_app(fake, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.ready.wait()
        sid = await parked(app, pilot)
        await pilot.press("f6")
        await until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.pause()
        for button in ("#approve", "#always", "#deny", "#later"):
            region = app.screen.query_one(button).region
            assert region.height > 0 and region.bottom <= 24, (button, region)
        await pilot.press("n")
        await pilot.press(*"abc")
        await pilot.press("escape")  # back to the question: the reason typed goes
        await pilot.press("n")
        reason = app.screen.query_one("#reason")
        assert reason.value == "" and reason.region.bottom <= 24
        await pilot.press("enter")
        await until(pilot, lambda: status(app, sid) is SessionStatus.WAITING)
        tool = [m for m in await app.coord.messages(sid) if m.role is Role.TOOL][0]
        assert tool.content == "the user denied this call"


async def test_retry_and_cancel_in_the_queue_inspector_on_a_held_call_say_what_to_do(fake, tmp_path):
    from chatplex.tui.screens.queue import QueueScreen

    app = agent_app(fake, tmp_path)
    async with app.run_test(size=(130, 30)) as pilot:
        await app.ready.wait()
        await parked(app, pilot)
        [waiting] = await app.coord.approvals()
        await pilot.press("f3")
        await until(pilot, lambda: isinstance(app.screen, QueueScreen) and waiting.job.id in app.screen.jobs)
        table = app.screen.query_one("DataTable")
        table.move_cursor(row=table.get_row_index(str(waiting.job.id)))
        await pilot.press("r")
        await until(pilot, lambda: any("waits for your approval: F6" in n.message for n in app._notifications))
        assert not any("went wrong" in n.message for n in app._notifications)
        [still] = await app.coord.approvals()
        assert still.job.id == waiting.job.id


async def test_the_queue_inspector_counts_how_long_a_held_call_has_waited(fake, tmp_path, monkeypatch):
    from chatplex.tui.screens import queue
    from chatplex.tui.screens.queue import QueueScreen

    later = [0.0]
    monkeypatch.setattr(queue, "wallclock", lambda: time.time() + later[0])
    app = agent_app(fake, tmp_path)
    async with app.run_test(size=(130, 30)) as pilot:
        await app.ready.wait()
        await parked(app, pilot)
        [waiting] = await app.coord.approvals()
        await pilot.press("f3")
        await until(pilot, lambda: isinstance(app.screen, QueueScreen) and waiting.job.id in app.screen.jobs)
        table = app.screen.query_one("DataTable")

        def waited() -> str:
            return str(table.get_cell(str(waiting.job.id), "waited"))

        later[0] = 125.0  # two minutes on, with nothing else happening: the clock moves the cell
        await until(pilot, lambda: waited().startswith("2m"))


async def test_ctrl_r_while_a_call_waits_says_to_answer_it_and_keeps_the_step(fake, tmp_path):
    """Generating the step again would leave its waiting call answering a call that is gone."""
    app = agent_app(fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        sid = await parked(app, pilot)
        [waiting] = await app.coord.approvals()
        await pilot.press("ctrl+r")
        await until(pilot, lambda: any("1 waiting for your approval" in n.message for n in app._notifications))
        [still] = await app.coord.approvals()
        assert still.job.id == waiting.job.id and status(app, sid) is SessionStatus.NEEDS_APPROVAL
        step = [m for m in await app.coord.messages(sid) if m.role is Role.ASSISTANT][-1]
        assert step.state is MessageState.COMPLETE and [c.name for c in step.tool_calls] == ["echo"]


def half_tools_app(fake, tmp_path) -> ChatplexApp:
    """Two servers: faulty's tools, and one that writes a reason to stderr and exits."""
    import sys

    from chatplex.tools import McpServerConfig

    s = fake.scenario(reply="fine without it")
    broken = McpServerConfig(
        name="broken",
        command=sys.executable,
        args=["-c", "import sys; sys.stderr.write('boom: no token configured\\n'); sys.exit(3)"],
    )
    config = make_config(tmp_path, provider_for(s))
    return ChatplexApp(dataclasses.replace(config, mcp={"faulty": faulty_server(approval="allow"), "broken": broken}))


async def replied_without_a_server(app, pilot):
    session = await app.coord.create_session("Tools half there")
    await app.focus_session(session.id)
    await app.coord.send(session.id, "hello")
    await until(pilot, lambda: len(app.chat.replies) == 1)
    [reply] = app.chat.replies.values()
    await until(pilot, lambda: reply.message.state is MessageState.COMPLETE)
    return session, reply


async def test_a_server_that_cannot_start_is_one_line_in_the_reply_with_its_stderr(fake, tmp_path):
    """The other servers' tools are still offered and the reply is not lost: it completes,
    and says under it which server is missing and why (its stderr's last words)."""
    app = half_tools_app(fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        session, reply = await replied_without_a_server(app, pilot)
        assert reply.message.content == "fine without it"
        line = str(reply.query_one(".state").render())
        assert line.startswith("⚠ without the tools of broken") and "boom: no token configured" in line
        assert reply.query_one(".state").display, line
        [stored] = [m for m in await app.coord.messages(session.id) if m.role is Role.ASSISTANT]
        assert stored.state is MessageState.COMPLETE and "boom: no token configured" in (stored.error or "")


def test_snapshot_a_reply_made_without_a_server_that_did_not_start(snap_compare, fake, tmp_path):
    app = half_tools_app(fake, tmp_path)

    async def run_before(pilot):
        await pilot.app.ready.wait()
        _, reply = await replied_without_a_server(app, pilot)
        await until(pilot, lambda: reply._markdown is not None and reply._markdown.source == "fine without it")
        await status_settled(pilot)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


# ---------------------------------------------------------------------- servers per session
def two_servers_app(fake, tmp_path) -> tuple[ChatplexApp, object]:
    """Two copies of faulty's tools ("one" and "two"): both offered, their names clash."""
    s = fake.scenario(reply="ok")
    config = make_config(tmp_path, provider_for(s))
    servers = {"one": faulty_server("one", approval="allow"), "two": faulty_server("two", approval="allow")}
    return ChatplexApp(dataclasses.replace(config, mcp=servers)), s


def tool_names(request) -> set[str]:
    return {t["function"]["name"] for t in request.get("tools", [])}


async def test_u_on_f7_chooses_the_servers_of_the_open_session_and_its_next_request_has_only_theirs(fake, tmp_path):
    from chatplex.tui.screens.tools import ToolsScreen

    app, s = two_servers_app(fake, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        session = await app.coord.create_session("Chooser")
        other = await app.coord.create_session("Default")
        await app.focus_session(session.id)
        await app.coord.send(session.id, "first")
        await until(pilot, lambda: len(s.requests) == 1)
        assert {"one__echo", "two__echo"} <= tool_names(s.requests[0])  # both, named apart
        await pilot.press("f7")
        await until(pilot, lambda: isinstance(app.screen, ToolsScreen) and app.screen.report is not None)
        screen = app.screen
        table = screen.query_one("DataTable")
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert {r[2] for r in rows} == {"on (default)"}
        table.move_cursor(row=next(i for i, r in enumerate(rows) if r[0] == "two"))
        await pilot.press("u")
        await until(pilot, lambda: screen.session is not None and screen.session.servers == ("one",))
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert {r[0]: r[2] for r in rows} == {"one": "on (chosen)", "two": "off (chosen)"}
        await pilot.press("escape")
        await until(pilot, lambda: app.sidebar.sessions[session.id].status is SessionStatus.WAITING)
        await app.coord.send(session.id, "second")
        await until(pilot, lambda: len(s.requests) == 2)
        names = tool_names(s.requests[1])
        assert "echo" in names and not any(n.startswith("two") for n in names)  # one's alone: no prefix
        await app.coord.send(other.id, "third")  # a session that did not choose keeps the default
        await until(pilot, lambda: len(s.requests) == 3)
        assert {"one__echo", "two__echo"} <= tool_names(s.requests[2])
        stored = await app.coord.session(session.id)
        assert stored.servers == ("one",)
