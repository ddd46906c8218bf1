"""Fixtures for the TUI tests, and where their snapshots live. Helpers: tests/tui/helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_textual_snapshot
from syrupy.extensions.single_file import SingleFileSnapshotExtension

from tests.tui.helpers import status_settled

SNAPSHOTS = Path(__file__).resolve().parents[2] / "snapshots"


def _dirname(cls, *, test_location) -> str:  # DESIGN.md: snapshot files live in the top-level snapshots/
    return str(SNAPSHOTS / test_location.basename)


pytest_textual_snapshot.SVGImageExtension.dirname = classmethod(_dirname)  # type: ignore[method-assign]
assert issubclass(pytest_textual_snapshot.SVGImageExtension, SingleFileSnapshotExtension)


@pytest.fixture
def snap_compare(snap_compare, monkeypatch):
    """pytest-textual-snapshot's `snap_compare`, with every text cursor steady: a blinking
    cursor is on or off depending on how long the test took (one snapshot in ~20 failed so
    under a CPU hog). And every reply streamed at 100 tokens a second: its box shows its speed,
    which a real clock makes different in each run."""
    from textual.widgets import Input, TextArea

    from chatplex.core.running import Running

    def steady(rj: Running) -> tuple[int | None, ...]:
        completion = rj.usage[1]
        return (*rj.usage, None if completion is None else completion * 10)

    monkeypatch.setattr(Running, "spent", steady)

    def compare(app, *args, run_before=None, **kwargs):
        async def settled(pilot):
            if run_before is not None:
                await run_before(pilot)
            for screen in pilot.app.screen_stack:
                for widget in screen.query("TextArea, Input"):
                    if isinstance(widget, TextArea | Input):
                        widget.cursor_blink = False
            await status_settled(pilot)
            await pilot.pause()

        return snap_compare(app, *args, run_before=settled, **kwargs)

    return compare
