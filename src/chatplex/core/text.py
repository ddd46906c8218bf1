"""Model output and user text are data: printed literally, never as terminal escapes."""

from __future__ import annotations

# C0 controls (but tab and newline) and DEL become their visible Unicode pictures (␛, ␇, …),
# so an ESC from a model can never reach the terminal as an escape sequence.
_CONTROLS = {c: 0x2400 + c for c in range(32) if c not in (9, 10)} | {0x7F: 0x2421}
_CONTROLS |= {c: 0xFFFD for c in range(0x80, 0xA0)}  # C1 controls (CSI etc.)
# Bidi embeddings, overrides, isolates and marks reorder what follows them on screen, so
# text can display unlike what it is ("Trojan Source"): shown as � too.
BIDI = (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)
_CONTROLS |= {c: 0xFFFD for c in BIDI}
# The same characters as JSON escapes: JSON for a terminal stays valid and means the same.
_JSON = {c: f"\\u{c:04x}" for c in _CONTROLS if c >= 0x20}  # json.dumps escapes C0 itself


def visible(text: str) -> str:
    return text.translate(_CONTROLS)


def json_visible(json_text: str) -> str:
    """JSON text safe for a terminal: every character `visible` would replace, as a \\uXXXX
    escape. They can only occur inside strings (json.dumps escapes C0), so the JSON parses
    to the same data."""
    return json_text.translate(_JSON)


def preview_of(text: str, width: int = 80) -> str:
    """One line for the sidebar: whitespace collapsed, cut at `width` with an ellipsis. Only
    the text's start is looked at: a 10 MB reply's preview must not cost a 10 MB split."""
    head = text[:4096]
    line = " ".join(head.split())
    if len(line) > width:
        return line[: width - 1] + "…"
    return line if len(head) == len(text) else line + "…"


# each unit with the next smaller one, largest first
_UNITS = (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1))


def duration(seconds: float, *, coarse: bool = False) -> str:
    """A span of time for people: "<1s", "42s", "2m 03s", "1h 02m", "3d 04h" (two units, the
    second zero-padded so a live column does not jitter); `coarse` keeps the first ("2m"),
    for ages like "2m ago". Whole units, rounded down: a live count never runs ahead. Below a
    second it says "<1s" rather than "0s", which would read as no time at all."""
    if not seconds >= 1:  # also a negative span (the clocks of two machines) and NaN
        return "<1s"
    n = int(seconds)
    if n < 60:
        return f"{n}s"
    unit, size, small, small_size = next(u for u in _UNITS if n >= u[1])
    if coarse:
        return f"{n // size}{unit}"
    return f"{n // size}{unit} {n % size // small_size:02d}{small}"


def time_of(ts: float, now: float | None = None) -> str:
    """When a message was written, in local time: "14:02" today, "Mon 14:02" this week,
    "2026-11-23 14:02" before."""
    import datetime as dt

    then = dt.datetime.fromtimestamp(ts)
    today = dt.datetime.fromtimestamp(now if now is not None else dt.datetime.now().timestamp())
    if then.date() == today.date():
        return then.strftime("%H:%M")
    if 0 < (today.date() - then.date()).days < 7:
        return then.strftime("%a %H:%M")
    return then.strftime("%Y-%m-%d %H:%M")
