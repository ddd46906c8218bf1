"""Model output and user text are data: shown literally, never as markup or escapes."""

from __future__ import annotations

from textual.content import Content

# C0 controls (but tab and newline) and DEL become their visible Unicode pictures (␛, ␇, …),
# so an ESC from a model can never reach the terminal as an escape sequence.
_CONTROLS = {c: 0x2400 + c for c in range(32) if c not in (9, 10)} | {0x7F: 0x2421}
_CONTROLS |= {c: 0xFFFD for c in range(0x80, 0xA0)}  # C1 controls (CSI etc.)


def visible(text: str) -> str:
    return text.translate(_CONTROLS)


def plain(text: str, style: str = "") -> Content:
    """Text as Textual content with no markup parsing."""
    content = Content(visible(text))
    return content.stylize(style) if style else content
