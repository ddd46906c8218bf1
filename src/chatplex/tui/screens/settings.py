"""A session's settings in one dialog (Ctrl+G): its temperature, max tokens per reply,
reasoning effort and system prompt, beside what it runs on — provider, model and the MCP
servers whose tools it is offered — with the keys that change those (Ctrl+L, F7).

An empty field means the provider's setting (config.toml), which the dialog names. Values
are checked here, before anything is saved: a bad one says what is allowed and keeps the
dialog open with everything typed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static, TextArea

from chatplex.tui.errors import guarded
from chatplex.tui.safe import plain

EFFORTS = ("off", "low", "medium", "high")  # core.coordinator.EFFORTS


@dataclass(frozen=True, slots=True)
class Shown:
    """What the dialog shows of the session and its provider."""

    title: str
    provider: str
    model: str
    tools: str  # "time, files" or "none"
    settings: Mapping[str, Any]  # the session's own (Session.settings)
    system_prompt: str
    defaults: str  # the provider's, in words: "temperature 0.7 · max_tokens 4096"
    model_key: str = "ctrl+l"
    tools_key: str = "f7"


class SettingsScreen(ModalScreen[dict[str, Any] | None]):
    """Dismisses with {"temperature", "max_tokens", "reasoning_effort", "system_prompt"}
    (None for "the provider's"), or None when cancelled."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel"), Binding("ctrl+s", "save", "Save", show=False)]

    DEFAULT_CSS = """
    SettingsScreen .setting { height: 3; }
    SettingsScreen .setting Label { width: 24; padding-top: 1; }
    SettingsScreen .setting Input, SettingsScreen .setting Select { width: 1fr; }
    SettingsScreen #prompt-label { margin-top: 1; }
    SettingsScreen #problem { color: $error; height: auto; }
    SettingsScreen .about { color: $text-muted; }
    """

    def __init__(self, shown: Shown) -> None:
        super().__init__(classes="modal")
        self.shown = shown

    def compose(self) -> ComposeResult:
        s, own = self.shown, self.shown.settings
        with VerticalScroll(classes="dialog wide"):  # scrolls in a small terminal
            yield Label(plain(f"Settings of “{s.title}”"), classes="dialog-title")
            yield Static(
                plain(f"{s.provider} · {s.model}  (close this, then {s.model_key} changes them)"), classes="about"
            )
            yield Static(plain(f"tools from: {s.tools}  (close this, then {s.tools_key} chooses)"), classes="about")
            yield Static(plain(f"an empty field: the provider's ({s.defaults})"), classes="about")
            with Horizontal(classes="setting"):
                yield Label("Temperature, 0 to 2")
                yield Input(_text(own.get("temperature")), placeholder="the provider's", id="temperature")
            with Horizontal(classes="setting"):
                yield Label("Max tokens per reply")
                yield Input(_text(own.get("max_tokens")), placeholder="the provider's", id="max_tokens")
            with Horizontal(classes="setting"):
                yield Label("Reasoning effort")
                yield Select(
                    [(e, e) for e in EFFORTS],
                    value=own.get("reasoning_effort") or Select.NULL,
                    prompt="the provider's",
                    id="effort",
                )
            yield Label(plain("System prompt"), id="prompt-label")
            yield TextArea(s.system_prompt, id="prompt", soft_wrap=True)
            yield Static("", id="problem")
            yield Static(plain("Ctrl+S saves · Escape cancels", "$text-muted"))

    @guarded
    def on_mount(self) -> None:
        self.query_one("#temperature", Input).focus()

    @on(Input.Submitted)
    @guarded
    def action_save(self) -> None:
        problem = self.query_one("#problem", Static)
        try:
            temperature = _number(self.query_one("#temperature", Input).value, "temperature", float)
            max_tokens = _number(self.query_one("#max_tokens", Input).value, "max tokens", int)
        except ValueError as e:
            problem.update(plain(str(e)))
            return
        if temperature is not None and not 0 <= temperature <= 2:
            problem.update(plain(f"temperature must be from 0 to 2, not {temperature:g}"))
            return
        if max_tokens is not None and not 1 <= max_tokens <= 10_000_000:  # core.coordinator.checked_settings
            problem.update(plain("max tokens must be from 1 to 10,000,000"))
            return
        effort = self.query_one("#effort", Select).value
        self.dismiss(
            {
                "temperature": temperature,
                "max_tokens": max_tokens,
                "reasoning_effort": effort if isinstance(effort, str) else None,
                "system_prompt": self.query_one("#prompt", TextArea).text,
            }
        )


def _text(value: object) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _number(text: str, name: str, kind: type[int] | type[float]) -> Any:
    text = text.strip().replace("_", "")
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ValueError(f"{name} must be {what} (or empty for the provider's), not {text!r}") from None
