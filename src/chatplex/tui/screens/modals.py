"""Small modal screens: confirm, a line or a block of text, a picker, search, help, error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Input, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from chatplex.core.coordinator import Coordinator
from chatplex.tui.errors import guarded
from chatplex.tui.safe import plain, visible


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("escape,n", "dismiss(False)", "No"), Binding("y", "dismiss(True)", "Yes")]

    def __init__(self, question: str) -> None:
        super().__init__(classes="modal")
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(plain(self.question))
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", variant="error", id="yes")
                yield Button("No (n)", id="no")

    @guarded
    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    @guarded
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class ChoiceScreen(ModalScreen[str | None]):
    """A question with a few answers, each a button and its key; Escape: None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Back")]

    def __init__(self, question: str, answers: list[tuple[str, str]]) -> None:
        """`answers`: (key, label) — the key is also what the screen dismisses with."""
        super().__init__(classes="modal")
        self.question, self.answers = question, answers

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Static(plain(self.question))  # wraps (a Label would be cut at the edge)
            with Horizontal(classes="buttons"):
                for key, label in self.answers:
                    yield Button(f"{label} ({key})", id=f"answer-{key}")
                yield Button("Back (escape)", id="answer-back")

    @guarded
    def on_mount(self) -> None:
        self.query_one("#answer-back", Button).focus()

    @guarded
    def on_key(self, event: events.Key) -> None:
        if any(event.key == key for key, _ in self.answers):
            event.stop()
            self.dismiss(event.key)

    @on(Button.Pressed)
    @guarded
    def _pressed(self, event: Button.Pressed) -> None:
        answer = (event.button.id or "").removeprefix("answer-")
        self.dismiss(None if answer == "back" else answer)


class TextScreen(ModalScreen[str | None]):
    """Edit one line (rename, file path) or a block of text (system prompt)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel"), Binding("ctrl+s", "save", "Save", show=False)]

    def __init__(self, title: str, value: str = "", multiline: bool = False, hint: str = "") -> None:
        super().__init__(classes="modal")
        self.title_text, self.value, self.multiline, self.hint = title, value, multiline, hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide" if self.multiline else "dialog"):
            yield Label(plain(self.title_text), classes="dialog-title")
            if self.multiline:
                yield TextArea(self.value, id="value", soft_wrap=True)
            else:
                yield Input(self.value, id="value", select_on_focus=True)
            yield Static(
                plain(
                    self.hint
                    or ("Ctrl+S saves · Escape cancels" if self.multiline else "Enter saves · Escape cancels"),
                    "$text-muted",
                )
            )

    @guarded
    def on_mount(self) -> None:
        """Editing a system prompt most often means adding to it: start at its end."""
        if self.multiline:
            area = self.query_one("#value", TextArea)
            area.move_cursor(area.document.end)

    @on(Input.Submitted)
    @guarded
    def action_save(self) -> None:
        widget = self.query_one("#value")
        self.dismiss(widget.text if isinstance(widget, TextArea) else widget.value)  # type: ignore[attr-defined]


class PickerScreen(ModalScreen[str | None]):
    """Choose one of many (provider/model): typing filters the list, ↑/↓ move, Enter chooses;
    the current choice is marked. Choices may arrive later via `load`."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Cancel"),
        Binding("down", "move(1)", show=False),
        Binding("up", "move(-1)", show=False),
    ]

    def __init__(
        self,
        title: str,
        choices: list[tuple[str, str]],
        load: Callable[[], Awaitable[list[tuple[str, str]]]] | None = None,
        current: str | None = None,
    ) -> None:
        super().__init__(classes="modal")
        self.title_text, self.choices, self.load, self.current = title, list(choices), load, current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(plain(self.title_text), classes="dialog-title")
            yield Input(placeholder="type to filter…", id="filter")
            yield OptionList(*self._options(""), id="choices")
            yield Static(plain("Enter chooses · Escape cancels"), id="picker-hint")

    def _options(self, query: str) -> list[Option]:
        wanted = query.casefold().split()
        return [
            Option(
                Content.assemble(
                    ("● " if value == self.current else "  ", "$success"),
                    plain(label),
                    ("  current" if value == self.current else "", "$text-muted"),
                ),
                id=value,
            )
            for value, label in self.choices
            if all(w in label.casefold() for w in wanted)
        ]

    def _refill(self) -> None:
        options = self.query_one(OptionList)
        options.set_options(self._options(self.query_one(Input).value))
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        options.highlighted = ids.index(self.current) if self.current in ids else (0 if ids else None)

    @guarded
    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self._refill()
        if self.load:
            self.query_one("#picker-hint", Static).update(plain("Asking the servers for their models…"))
            self._load()

    @work(exclusive=True)
    @guarded
    async def _load(self) -> None:
        assert self.load is not None
        more = await self.load()
        known = {value for value, _ in self.choices}
        self.choices += [(value, label) for value, label in more if value not in known]
        self._refill()
        self.query_one("#picker-hint", Static).update(plain("Enter chooses · Escape cancels"))

    @on(Input.Changed)
    @guarded
    def _filter(self) -> None:
        self._refill()

    @guarded
    def action_move(self, step: int) -> None:
        options = self.query_one(OptionList)
        if options.option_count:
            at = options.highlighted if options.highlighted is not None else -step
            options.highlighted = max(0, min(at + step, options.option_count - 1))

    @on(Input.Submitted)
    @guarded
    def _submit(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is not None and options.option_count:
            self.dismiss(options.get_option_at_index(options.highlighted).id)

    @on(OptionList.OptionSelected)
    @guarded
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A session found by a search, and where: the matching line of its newest message that
    matches (cut around the match), or none when only its title matched."""

    session_id: int
    title: str
    message_id: int | None = None
    line: str = ""
    start: int = 0  # the match, within `line`
    end: int = 0


def hit_prompt(hit: SearchHit) -> Content:
    title = plain(hit.title).stylize("bold")
    if hit.message_id is None:
        return Content.assemble(title, "\n", plain("  (its title)", "$text-muted"))
    line = hit.line
    return Content.assemble(
        title,
        "\n  ",
        plain(line[: hit.start], "$text-muted"),
        plain(line[hit.start : hit.end], "bold reverse"),
        plain(line[hit.end :], "$text-muted"),
    )


class SearchScreen(ModalScreen[tuple[int, int | None] | None]):
    """Find sessions by title or content; Enter opens the highlighted one at the match."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel"), Binding("down", "focus_results", show=False)]

    def __init__(self, search: Callable[[str], Awaitable[list[SearchHit]]]) -> None:
        super().__init__(classes="modal")
        self.search = search
        self.hits: dict[str, SearchHit] = {}

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Search sessions (title or text)", classes="dialog-title")
            yield Input(placeholder="search…", id="query")
            yield OptionList(id="results")

    @on(Input.Changed)
    @guarded
    def _changed(self, event: Input.Changed) -> None:
        self._run(event.value)

    @work(exclusive=True)
    @guarded
    async def _run(self, query: str) -> None:
        results = await self.search(query) if query.strip() else []
        self.hits = {f"{hit.session_id}:{hit.message_id or ''}": hit for hit in results}
        self.query_one("#results", OptionList).set_options(
            Option(hit_prompt(hit), id=key) for key, hit in self.hits.items()
        )

    def _open(self, option_id: str | None) -> None:
        hit = self.hits.get(option_id or "")
        if hit is not None:
            self.dismiss((hit.session_id, hit.message_id))

    @on(Input.Submitted)
    @guarded
    def _submit(self) -> None:
        results = self.query_one("#results", OptionList)
        if results.option_count:
            self._open(results.get_option_at_index(results.highlighted or 0).id)

    @guarded
    def action_focus_results(self) -> None:
        self.query_one("#results", OptionList).focus()

    @on(OptionList.OptionSelected)
    @guarded
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self._open(event.option.id)


class HelpScreen(ModalScreen[None]):
    """What the marks and the status bar mean, and every key with the id that remaps it."""

    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def __init__(self, rows: list[tuple[str, str, str]], marks: Content, status: str) -> None:
        super().__init__(classes="modal")
        self.rows, self.marks, self.status = rows, marks, status

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide help"):
            yield Label("Sidebar marks", classes="help-title first")
            yield Static(self.marks)
            yield Label("Status bar", classes="help-title")
            yield Static(plain(self.status, "$text-muted"))
            remap = '  (remap one by its id in config.toml: [keys] new_session = "ctrl+g")'
            yield Label(Content.assemble("Keys", (remap, "$text-muted")), classes="help-title")
            table: DataTable[Content] = DataTable(cursor_type="row", zebra_stripes=True)
            table.add_column("key", width=22)
            table.add_column("action", width=36)
            table.add_column("id", width=18)
            for key, text, binding_id in self.rows:
                table.add_row(Content(key), Content(text), Content(binding_id))
            yield table
            yield Static(
                plain(
                    "In the message box: Enter sends · Ctrl+J: new line. ↑/↓ scroll the keys. Escape closes.",
                    "$text-muted",
                )
            )


class ErrorScreen(Screen[None]):
    """Shown instead of the app when it cannot start (database unusable, …): no traceback."""

    BINDINGS = [Binding("escape,q,ctrl+q,enter", "app.exit", "Quit")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text, self.text = title, text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide error"):
            yield Label(plain(self.title_text), classes="dialog-title")
            yield Static(Content(visible(self.text)))
            yield Static(plain("Press q to quit.", "$text-muted"))


async def confirm_cancel_background(app: App, coord: Coordinator, keep: int | None) -> None:
    """Ask, then cancel every queued, running and held job of the sessions but `keep`."""
    jobs = await coord.background_work(keep)
    if not jobs:
        app.notify("No background work to cancel.", markup=False, timeout=3)
        return
    sessions = len({j.session_id for j in jobs})
    question = (
        f"Cancel {len(jobs)} job{'s' if len(jobs) != 1 else ''} in {sessions} other session"
        f"{'s' if sessions != 1 else ''}? Partial replies are kept; waiting tool calls end their turns."
    )
    if await app.push_screen_wait(ConfirmScreen(question)):
        n = await coord.cancel_background(keep)
        app.notify(f"Cancelled {n} background job{'s' if n != 1 else ''}.", markup=False)
