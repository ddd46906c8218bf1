"""Model output and user text are data: shown literally, never as markup or escapes."""

from __future__ import annotations

from textual.content import Content

from chatplex.core.text import visible

__all__ = ["plain", "visible"]


def plain(text: str, style: str = "") -> Content:
    """Text as Textual content with no markup parsing."""
    content = Content(visible(text))
    return content.stylize(style) if style else content
