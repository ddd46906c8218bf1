"""redact(): a key is masked in every form other code writes it in."""

from __future__ import annotations

import json

import pytest

from chatplex.redact import redact

KEY = "sk-proj-0123456789abcdef"


@pytest.mark.parametrize("bad", ["", "\r\n", "\u200b", "\n", "é"])
def test_every_written_form_of_the_key_is_masked(bad):
    key = KEY[:10] + bad + KEY[10:]
    header = f"Bearer {key}"
    texts = {
        "plain": f"got {key} back",
        "bytes repr (httpx)": f"Illegal header value {header.encode()!r}",
        "repr (UnicodeEncodeError)": repr(UnicodeEncodeError("ascii", header, 7, 8, "no")),
        "repr of a repr": repr(ValueError(f"Illegal header value {header.encode()!r}")),
        "JSON": json.dumps({"error": header}),
        "JSON, ASCII only": json.dumps({"error": header}, ensure_ascii=True),
        "cut off at the end": f"error: {header}"[: len("error: Bearer ") + 12],
    }
    for name, text in texts.items():
        clean = redact(text, [key])
        assert KEY[:10] not in clean and KEY[10:] not in clean, (name, clean)
        assert "****" in clean, name


def test_other_text_is_left_alone():
    text = "HTTP 401: invalid key (check the API key) sk-proj"
    assert redact(text, [KEY, ""]) == text  # an empty secret masks nothing
    assert redact("a " + KEY + " b " + KEY, [KEY]) == "a **** b ****"
