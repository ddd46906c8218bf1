"""The one duration formatter and the one session exporter (core.text, core.export): their
outputs pinned, and the Markdown, the `show` transcript and the JSON saying the same thing
about every message, whatever its role and state."""

from __future__ import annotations

import json

from chatplex.core.export import to_json, to_markdown, to_text
from chatplex.core.models import Message, MessageState, Role, Session
from chatplex.core.text import duration, preview_of


def test_durations_read_the_same_everywhere():
    seconds = (-5, float("nan"), 0, 0.4, 1, 1.9, 59.9, 60, 61, 3599, 3600, 3725, 86399, 86400)
    seconds += (90061,)
    assert [duration(s) for s in seconds] == [
        "<1s",  # a clock behind another machine's is not a negative wait
        "<1s",
        "<1s",
        "<1s",
        "1s",
        "1s",  # rounded down: a live count never runs ahead
        "59s",
        "1m 00s",
        "1m 01s",
        "59m 59s",
        "1h 00m",
        "1h 02m",
        "23h 59m",
        "1d 00h",
        "1d 01h",
    ]
    assert [duration(s, coarse=True) for s in (0.4, 59.9, 90, 3599, 7200, 86400 * 3 + 5)] == [
        "<1s",
        "59s",
        "1m",
        "59m",  # never "60m": the old `ago` rounded 3599 s up to it
        "2h",
        "3d",
    ]


def test_preview_is_one_line_cut_with_an_ellipsis():
    assert preview_of("  a\n\tb  ", 10) == "a b"
    assert preview_of("x" * 30, 10) == "x" * 9 + "…"


T0 = 1_700_000_000
SESSION = Session(1, "t", "fake", "fake-small", system_prompt="be ```brief```", created_at=T0)


def message(i: int, role: Role, content: str, state=MessageState.COMPLETE, **kw) -> Message:
    return Message(i, 1, role, content, state=state, created_at=T0 + i, **kw)


MESSAGES = [
    message(1, Role.SYSTEM, "an imported system turn"),
    message(2, Role.USER, "a ```fenced``` question"),
    message(3, Role.ASSISTANT, "**bold** answer", model="fake-large"),
    message(4, Role.USER, "again"),
    message(5, Role.ASSISTANT, "", state=MessageState.ERROR),  # failed with no reason stored
    message(6, Role.ASSISTANT, "half", state=MessageState.INTERRUPTED, error="cancelled"),
    message(7, Role.ASSISTANT, "so far", state=MessageState.STREAMING),
]


def test_markdown_keeps_every_message_and_says_what_state_each_is_in():
    md = to_markdown(SESSION, MESSAGES)
    # a system turn (import allows them) was dropped from the Markdown while `show` listed it
    assert "## System\n\n```text\nan imported system turn\n```" in md
    assert "## You\n\n````text\na ```fenced``` question\n````" in md
    assert "## fake-large\n\n**bold** answer" in md  # the model that wrote it; Markdown as written
    assert "## fake-small\n\n> ⚠ failed\n" in md  # not "failed: None", and no empty answer line
    assert "> ⏸ interrupted: cancelled" in md
    assert md.endswith("## fake-small\n\nso far\n\n> ⋯ still generating\n")  # a partial is marked


def test_the_show_transcript_says_the_same_as_the_markdown():
    text = to_text(SESSION, MESSAGES)
    head = "# t  (fake · fake-small)\n\n[system]\nbe ```brief```\n\n[system]\nan imported"
    assert text.startswith(head)
    assert "[you]\na ```fenced``` question\n" in text and "[fake-large]\n**bold** answer\n" in text
    assert "[fake-small]\n\n(failed)\n" in text  # not "(failed: )"
    assert "(interrupted: cancelled)" in text
    assert text.endswith("[fake-small]\nso far\n(still generating)\n")


def test_json_export_round_trips_every_message():
    data = json.loads(to_json(SESSION, MESSAGES))
    assert [(m["role"], m["content"], m["state"]) for m in data["messages"]] == [
        (m.role.value, m.content, m.state.value) for m in MESSAGES
    ]
    assert data["messages"][2]["model"] == "fake-large" and "model" not in data["messages"][1]
