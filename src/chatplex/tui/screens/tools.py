"""The tools screen (F7): the MCP servers config.toml names, whether each started, and the
tools each offers with what a call needs (ask, allow, deny), and the sessions where the user
approved a tool "always" (`x` makes it ask again there). The "here" column says whether the
session open in the chat pane uses each server (config.toml's default, or its own choice);
`u` switches the highlighted server on or off for it. Opening it starts the servers as a
session would (they are the sessions' servers, shared); `r` starts a failed one again.
Names, descriptions and errors come from the servers: shown literally."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from chatplex.core.coordinator import Coordinator
from chatplex.core.models import Session
from chatplex.tui.errors import guarded
from chatplex.tui.safe import plain, visible

APPROVAL_STYLE = {"ask": "bold yellow", "allow": "green", "deny": "red"}


class ToolsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Back"),
        Binding("r", "refresh_servers", "Start again"),
        Binding("x", "ask_again", "Ask again"),
        Binding("u", "use_here", "Use here"),
    ]
    DEFAULT_CSS = """
    ToolsScreen #tools-title { padding: 0 1; }
    ToolsScreen #tools-hint { padding: 0 1; color: $text-muted; }
    ToolsScreen DataTable { height: 1fr; }
    """

    def __init__(self, coordinator: Coordinator, session_id: int | None = None) -> None:
        super().__init__()
        self.coord = coordinator
        self.session_id = session_id  # the session open in the chat pane ("here")
        self.session: Session | None = None
        self.report: list[dict[str, object]] | None = None  # None: not read yet
        self.always: dict[str, list[int]] = {}  # tool -> the sessions that run it without asking
        self._tools_by_row: list[str] = []  # the tool of each row ("" for a failed server's)
        self._servers_by_row: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static(plain("Tools — MCP servers from config.toml", "bold"), id="tools-title")
        yield Static(plain("starting the servers…"), id="tools-hint")
        table: DataTable[Text] = DataTable(id="tools", cursor_type="row", zebra_stripes=True)
        table.add_columns("server", "state", "here", "tool", "a call", "always in", "what it does")
        yield table
        yield Footer()

    @guarded
    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.load()

    @work(exclusive=True, group="tools-report")
    async def load(self) -> None:
        if not self.coord.config.mcp:
            self.report = []
            self._hint("No MCP servers in config.toml: add one as [mcp.NAME] with command (stdio) or url (HTTP).")
            return
        report = await self.coord.tool_report()
        await self._read_always()
        self.session = await self.coord.session(self.session_id) if self.session_id is not None else None
        self.report = report  # set with the table filled: a reader sees both or neither
        self._fill()

    async def _read_always(self) -> None:
        always: dict[str, list[int]] = {}
        for session in await self.coord.store.list_sessions():
            for tool in session.allowed_tools:
                always.setdefault(tool, []).append(session.id)
        self.always = always

    def _hint(self, text: str) -> None:
        self.query_one("#tools-hint", Static).update(plain(text, "$text-muted"))

    def _fill(self) -> None:
        table: DataTable[Text] = self.query_one(DataTable)
        table.clear()
        self._tools_by_row = []
        self._servers_by_row = []
        report = self.report or []
        session = self.session
        chosen = session is not None and session.servers is not None
        ready = sum(1 for e in report if e["state"] == "ready")
        tools = 0
        for entry in report:
            name = str(entry["server"])
            server = Text(visible(name))
            if session is None:  # no session open: what a new one gets
                on = Text("on by default" if entry["enabled"] else "off (not offered)")
            else:
                used = name in session.servers if session.servers is not None else bool(entry["enabled"])
                on = Text(f"{'on' if used else 'off'} ({'chosen' if chosen else 'default'})", "green" if used else "")
            if entry["state"] != "ready":
                state = Text("failed", style="bold red")
                error = Text(visible(str(entry.get("error", ""))), "red")
                table.add_row(server, state, on, Text(""), Text(""), Text(""), error)
                self._tools_by_row.append("")
                self._servers_by_row.append(name)
                continue
            offered = entry["tools"]
            assert isinstance(offered, list)
            for tool in offered:
                tools += 1
                approval = str(tool["approval"])
                description = " ".join(str(tool["description"]).split())[:200]
                sessions = self.always.get(str(tool["name"]), [])
                always = ", ".join(map(str, sessions[:5])) + (f" +{len(sessions) - 5}" if len(sessions) > 5 else "")
                self._tools_by_row.append(str(tool["name"]))
                self._servers_by_row.append(name)
                table.add_row(
                    server,
                    Text("ready", style="green"),
                    on,
                    Text(visible(str(tool["name"]))),
                    Text(approval, style=APPROVAL_STYLE.get(approval, "")),
                    Text(always, style="yellow"),
                    Text(visible(description)),
                )
        self._hint(
            f"{ready} of {len(report)} servers ready · {tools} tools · a call: ask waits for you (F6), "
            "allow runs, deny is refused · set in config.toml: approval, [mcp.NAME.tools] globs · "
            "always in: sessions where you said always (x: ask again) · u: use in this session or not · "
            "r starts again"
        )

    @guarded
    async def action_ask_again(self) -> None:
        """The highlighted tool asks again before it runs, in every session that said always."""
        row = self.query_one(DataTable).cursor_row
        tool = self._tools_by_row[row] if 0 <= row < len(self._tools_by_row) else ""
        if not tool or not self.always.get(tool):
            self.notify("No session runs this tool without asking.", severity="warning", markup=False, timeout=3)
            return
        changed = await self.coord.forget_always(tool)
        await self._read_always()
        self._fill()
        self.query_one(DataTable).move_cursor(row=row)
        n = len(changed)
        self.notify(f"{visible(tool)} asks again in {n} session{'s' if n != 1 else ''}.", markup=False)

    @guarded
    async def action_use_here(self) -> None:
        """The highlighted server on or off for the session open in the chat pane (its next
        model steps are offered its tools, or not); the first choice starts from the default."""
        row = self.query_one(DataTable).cursor_row
        if self.session is None:
            self.notify("Open a session first: this chooses its servers.", severity="warning", markup=False, timeout=3)
            return
        if not 0 <= row < len(self._servers_by_row):
            return
        name = self._servers_by_row[row]
        servers = self.session.servers
        current = list(servers) if servers is not None else self.coord.config.default_servers()
        chosen = [n for n in current if n != name] if name in current else [*current, name]
        self.session = await self.coord.use_servers(self.session.id, chosen)
        self._fill()
        self.query_one(DataTable).move_cursor(row=row)
        now = "uses" if name in chosen else "no longer uses"
        self.notify(f"{visible(self.session.title)} {now} {visible(name)}.", markup=False, timeout=3)

    @guarded
    def action_refresh_servers(self) -> None:
        self._hint("starting the servers…")
        self.load()
