"""What the CLI writes: a terminal never receives a control character from a model, a
server or a user (shown as pictures, or as \\uXXXX escapes in JSON), while pipes and files
get the exact text that scripts and re-imports rely on."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from chatplex.core.export import write_atomically
from chatplex.core.text import duration, json_visible, visible


class UsageError(Exception):
    """Bad input from the command line: one line, exit code 2."""


def is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no stream, or a closed one
        return False


def for_stream(text: str, stream: Any = None, *, is_json: bool = False) -> str:
    """`text` as it may be written to `stream` (default stdout): on a terminal, with no
    escape sequence or bidi control (JSON keeps its meaning: they become \\uXXXX escapes);
    pipes and files get the exact text, which scripts and re-imports rely on."""
    if not is_terminal(sys.stdout if stream is None else stream):
        return text
    return json_visible(text) if is_json else visible(text)


def say(text: str) -> None:
    """One line on stderr; it may quote a server or the user, so it is neutralised too."""
    print("chatplex: " + for_stream(text, sys.stderr), file=sys.stderr, flush=True)


def emit(as_json: bool, data: object, human: str) -> int:
    """A command's result on stdout: `data` as JSON, or the `human` line; exit code 0."""
    print(for_stream(json.dumps(data, ensure_ascii=False), is_json=True) if as_json else human)
    return 0


def table(columns: list[str], rows: list[list[str]], empty: str) -> None:
    if not rows:
        print(empty)
        return
    t = Table(*columns, box=None, pad_edge=False, header_style="bold")
    for row in rows:
        t.add_row(*(Text(visible(cell)) for cell in row))  # Text: never parsed as markup
    Console(highlight=False).print(t)


def ago(ts: float | None) -> str:
    """A wall-clock timestamp as an age ("2m ago"); "" for none."""
    return f"{duration(time.time() - ts, coarse=True)} ago" if ts else ""


def save_file(path: Path, text: str) -> None:
    """write_atomically, with a failure as one line for the user."""
    try:
        write_atomically(path, text)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from e
