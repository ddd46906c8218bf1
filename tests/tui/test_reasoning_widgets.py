"""The reasoning block and the tool card on their own (the chat pane composes them)."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from chatplex.tui.widgets import reasoning
from chatplex.tui.widgets.reasoning import ReasoningBlock, ToolCard, summarise


@pytest.fixture(autouse=True)
def still_clock(monkeypatch):
    """The durations shown are the clock's, not the machine's: a busy machine takes seconds."""
    monkeypatch.setattr(reasoning, "clock", lambda: 1000.0)


class Harness(App[None]):
    def __init__(self, *widgets) -> None:
        super().__init__()
        self.widgets = widgets

    def compose(self) -> ComposeResult:
        yield from self.widgets


def shown(widget) -> str:
    return str(widget.render())


async def test_reasoning_streams_its_newest_lines_then_folds_to_one_line_and_opens_on_click():
    block = ReasoningBlock(streaming=True)
    app = Harness(block)
    async with app.run_test() as pilot:
        for n in range(40):
            block.append(f"step {n} [bold]not markup[/]\n")
        await pilot.pause()
        text = shown(block)
        assert text.startswith("thinking <1s") and "step 39 [bold]not markup[/]" in text and "step 0 " not in text
        block.done(tokens=1204)
        await pilot.pause()
        assert shown(block).startswith("▸ thought for <1s · 1,204 tokens") and "step" not in shown(block)
        await pilot.click(ReasoningBlock)
        assert shown(block).startswith("▾ thought") and "step 0 " in shown(block) and "step 39" in shown(block)
        await pilot.click(ReasoningBlock)
        assert "step" not in shown(block)


async def test_reasoning_without_a_token_count_says_its_estimate_and_an_interruption_says_so():
    block = ReasoningBlock("x" * 400, streaming=True)
    async with Harness(block).run_test() as pilot:
        block.done(interrupted=True)
        await pilot.pause()
        assert shown(block).startswith("▸ thinking interrupted for <1s · ~100 tokens")


async def test_a_tool_card_summarises_its_call_literally():
    card = ToolCard("get_current_time", '{"timezone": "UTC", "note": "[red]x[/]"}', status="tools are not enabled")
    async with Harness(card).run_test() as pilot:
        await pilot.pause()
        assert shown(card) == '⚙ get_current_time(timezone="UTC", note="[red]x[/]")\ntools are not enabled'


def test_arguments_are_summarised_in_one_line():
    assert summarise('{"a": 1, "b": [1, 2]}') == "a=1, b=[1, 2]"
    assert summarise('{"tz": "UT') == '{"tz": "UT'  # not JSON: shown as it came
    assert summarise('{"text": "' + "y" * 100 + '"}', width=20) == 'text="yyyyyyyyyyyyy…'
