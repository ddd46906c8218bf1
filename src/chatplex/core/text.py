"""Model output and user text are data: printed literally, never as terminal escapes."""

from __future__ import annotations

# C0 controls (but tab and newline) and DEL become their visible Unicode pictures (␛, ␇, …),
# so an ESC from a model can never reach the terminal as an escape sequence.
_CONTROLS = {c: 0x2400 + c for c in range(32) if c not in (9, 10)} | {0x7F: 0x2421}
_CONTROLS |= {c: 0xFFFD for c in range(0x80, 0xA0)}  # C1 controls (CSI etc.)


def visible(text: str) -> str:
    return text.translate(_CONTROLS)
