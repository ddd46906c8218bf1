"""Scrub secrets (API keys) out of text before it is stored, logged or printed.

Why more than ``str.replace``: a key reaches error text in the forms other code wrote it in.
httpx reports an illegal header as ``b'Bearer sk-..\\r\\n'`` (bytes repr), Python's
``repr()`` of a UnicodeEncodeError escapes a zero-width space as ``\\u200b``, JSON escapes
it once more, and a message cut to a length can end in the first part of a key. Each of
those forms is replaced. No dependencies: anything may import this module.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache

MASK = "****"
_MIN_TAIL = 8  # a message cut off inside a key: mask a trailing part this long or longer


def _escaped(text: str) -> set[str]:
    """`text` as repr(), ascii(), JSON and bytes repr would write it (without the quotes)."""
    raw = text.encode("utf-8", "surrogatepass")
    return {
        repr(text)[1:-1],
        ascii(text)[1:-1],
        json.dumps(text)[1:-1],
        json.dumps(text, ensure_ascii=False)[1:-1],
        repr(raw)[2:-1],
    }


@lru_cache(maxsize=64)  # the log filter asks for the same few keys on every record
def forms(secret: str) -> tuple[str, ...]:
    """Every written form of `secret`, escaped up to twice (a repr of a message holding a
    repr), longest first so a longer form is masked before a part of it."""
    found = {secret}
    for _ in range(2):
        found |= {escaped for form in found for escaped in _escaped(form)}
    return tuple(sorted((f for f in found if f), key=len, reverse=True))


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every form of every non-empty secret replaced by "****"."""
    for secret in secrets:
        if not secret:
            continue
        for form in forms(secret):
            if form in text:
                text = text.replace(form, MASK)
            if form[:_MIN_TAIL] not in text:
                continue
            for n in range(len(form) - 1, _MIN_TAIL - 1, -1):  # a key cut off at the end
                if text.endswith(form[:n]):
                    text = text[:-n] + MASK
                    break
    return text
