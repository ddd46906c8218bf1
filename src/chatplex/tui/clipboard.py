"""Copying text out of the app: to the terminal with OSC 52 (Textual's `copy_to_clipboard`,
which works where the terminal allows it: most do, tmux needs `set -g set-clipboard on`,
macOS Terminal does not), and to the system clipboard where a tool for it exists. The app
cannot see whether the terminal took OSC 52, so the message says which ways were used.

Code blocks are found in the text as stored, by the Markdown parser the chat pane uses: a
block's code is copied without its fences."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

from markdown_it import MarkdownIt


@dataclass(frozen=True, slots=True)
class CodeBlock:
    code: str  # without the fences
    language: str  # the fence's info string ("" when none)


def code_blocks(text: str) -> list[CodeBlock]:
    """The fenced and indented code blocks of Markdown `text`, in order."""
    tokens = MarkdownIt("gfm-like").parse(text)
    return [
        CodeBlock(t.content, t.info.strip().split(" ")[0] if t.info else "")
        for t in tokens
        if t.type in ("fence", "code_block")
    ]


def system_tool() -> list[str] | None:
    """The command that puts its stdin on the system clipboard here, or None."""
    if sys.platform == "darwin" and shutil.which("pbcopy"):
        return ["pbcopy"]
    if os.environ.get("WAYLAND_DISPLAY") and shutil.which("wl-copy"):
        return ["wl-copy"]
    if os.environ.get("DISPLAY"):
        if shutil.which("xclip"):
            return ["xclip", "-selection", "clipboard"]
        if shutil.which("xsel"):
            return ["xsel", "--clipboard", "--input"]
    return None


def copy_with_system_tool(text: str) -> str | None:
    """Put `text` on the system clipboard; the tool's name, or None if there is none or it
    failed (blocking: run it in a thread)."""
    tool = system_tool()
    if tool is None:
        return None
    try:
        done = subprocess.run(tool, input=text.encode(), capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return tool[0] if done.returncode == 0 else None
