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
