"""Desktop notifications while the terminal is not focused: a reply that arrived, one that
failed, a tool call waiting for approval — the things that need the user when they are in
another window.

The app knows the terminal lost the focus from Textual's AppBlur/AppFocus (focus reporting,
which xterm, GNOME Terminal, iTerm2, kitty, WezTerm and Windows Terminal send; tmux only with
`set -g focus-events on`). How to notify depends on the terminal, read from its environment:

| terminal | how |
|---|---|
| kitty | OSC 99 |
| iTerm2 | OSC 9 |
| WezTerm, Ghostty, foot, rxvt-unicode | OSC 777 |
| any other, on a Linux desktop with `notify-send` | notify-send (libnotify) |
| any other, on macOS | osascript's `display notification` |

Inside tmux an OSC sequence is passed through to the outer terminal (tmux needs
`set -g allow-passthrough on`). config.toml's `notifications` picks one way by name, or
"off"; "auto" (the default) is the table above.

Titles and bodies are model output and session titles: control characters are removed, so a
reply cannot end the sequence early and write to the terminal itself.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

OSC = ("osc777", "osc9", "osc99")
TOOLS = ("notify-send", "osascript")

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


@dataclass(frozen=True, slots=True)
class Happening:
    """Something the user would want to know of while away: `kind` is "reply", "failed" or
    "approval"."""

    kind: str
    session_id: int
    title: str  # the session's
    text: str  # a preview of the reply, the error, or what waits


Which = Callable[[str], str | None]  # shutil.which


def choose(env: Mapping[str, str], which: Which = shutil.which, platform: str = sys.platform) -> str | None:
    """How to notify in the terminal `env` describes (see the table above), or None."""
    term = env.get("TERM", "")
    program = env.get("TERM_PROGRAM", "")
    if env.get("KITTY_WINDOW_ID") or term == "xterm-kitty":
        return "osc99"
    if program == "iTerm.app" or env.get("LC_TERMINAL") == "iTerm2":
        return "osc9"
    if program in ("WezTerm", "ghostty") or term.startswith(("foot", "rxvt-unicode", "xterm-ghostty", "wezterm")):
        return "osc777"
    if platform == "darwin":
        return "osascript" if which("osascript") else None
    if (env.get("WAYLAND_DISPLAY") or env.get("DISPLAY")) and which("notify-send"):
        return "notify-send"
    return None


def method_of(setting: str, env: Mapping[str, str], which: Which = shutil.which) -> str | None:
    """The way config's `notifications` setting means here; None for none."""
    if setting == "off":
        return None
    if setting == "auto":
        return choose(env, which)
    return setting


def clean(text: str, limit: int = 200) -> str:
    """`text` as one line of printable characters, at most `limit` of them."""
    line = " ".join(_CONTROL.sub(" ", text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def summary(happened: list[Happening]) -> tuple[str, str]:
    """One notification's title and body for what happened in a burst."""
    if len(happened) == 1:
        h = happened[0]
        what = {"reply": "replied", "failed": "failed", "approval": "needs your approval"}[h.kind]
        return clean(f"chatplex: {h.title} {what}", 80), clean(h.text)
    counts = {k: sum(1 for h in happened if h.kind == k) for k in ("approval", "failed", "reply")}
    said = []
    if counts["approval"]:
        said.append(f"{counts['approval']} need{'s' if counts['approval'] == 1 else ''} your approval")
    if counts["failed"]:
        said.append(f"{counts['failed']} failed")
    if counts["reply"]:
        said.append(f"{counts['reply']} repl{'y' if counts['reply'] == 1 else 'ies'} arrived")
    names = list(dict.fromkeys(h.title for h in happened))
    body = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return "chatplex: " + ", ".join(said), clean(body)


def sequence(method: str, title: str, body: str, *, tmux: bool = False) -> str:
    """The escape sequence that shows (title, body) as a desktop notification (an OSC method)."""
    title, body = clean(title, 80), clean(body)
    if method == "osc777":  # rxvt's; ';' separates its fields
        seq = f"\x1b]777;notify;{title.replace(';', ',')};{body.replace(';', ',')}\x07"
    elif method == "osc9":
        seq = f"\x1b]9;{title}: {body}\x07"
    elif method == "osc99":  # kitty's: the title, then the body, of one notification
        seq = f"\x1b]99;i=chatplex:d=0:p=title;{title}\x1b\\\x1b]99;i=chatplex:d=1:p=body;{body}\x1b\\"
    else:
        raise ValueError(f"not an escape-sequence method: {method}")
    if tmux:  # passed through to the terminal tmux runs in
        seq = "\x1bPtmux;" + seq.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return seq


def command(method: str, title: str, body: str) -> list[str]:
    """The command line that shows (title, body) with a notification tool."""
    title, body = clean(title, 80), clean(body)
    if method == "notify-send":
        return ["notify-send", "--app-name=chatplex", "--", title, body]  # a body "-5 °C…" is no option
    if method == "osascript":  # AppleScript string literals: quotes and backslashes escaped

        def q(s: str) -> str:
            return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

        return ["osascript", "-e", f"display notification {q(body)} with title {q(title)}"]
    raise ValueError(f"not a tool method: {method}")


def run_tool(argv: list[str]) -> bool:
    """Run a notification tool (blocking: call it in a thread); whether it worked."""
    try:
        done = subprocess.run(argv, capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0
