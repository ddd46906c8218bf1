"""What the server or a user typed never reaches a terminal as an escape sequence or a bidi
control; pipes and files get the exact bytes. The terminal is a real pseudo-terminal."""

from __future__ import annotations

import json

from chatplex.core.text import visible
from tests.fakeserver import Fault

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
# retitles and clears the terminal, a C1 CSI, and every bidi control
EVIL = "\x1b]0;pwned\x07\x1b[2J \x9b31m red " + " ".join(BIDI) + " end\x7f"
DANGER = [b"\x1b", b"\x07", b"\x7f", "\x9b".encode()] + [c.encode() for c in BIDI]


def clean(data: bytes) -> bool:
    return not any(d in data for d in DANGER)


def test_visible_neutralises_bidi_controls():
    shown = visible("a\u202eb\u2066c\u200fd\u061ce")
    assert shown == "a\ufffdb\ufffdc\ufffdd\ufffde"
    assert visible("שלום عربي") == "שלום عربي"  # right-to-left text itself is kept


def test_send_streams_neutralised_to_a_terminal_and_exact_to_a_pipe(cli):
    cli.provider(reply=EVIL)
    shown = cli.tty("send", "to the terminal")
    assert clean(shown.out) and shown.out.decode() == visible(EVIL) + "\n"
    piped = cli.run("send", "to a pipe")
    assert piped.out == EVIL.encode() + b"\n"


def test_send_error_quoting_the_server_is_neutralised_on_a_terminal(cli):
    message = "\x1b]0;pwned\x07\x1b[2J bad \u202emodel"
    cli.provider(faults=[Fault(status=400, body={"error": {"message": message}})] * 2)
    shown = cli.tty("send", "hello", code=1)
    assert clean(shown.err) and visible(message).encode() in shown.err
    piped = cli.run("send", "again", code=1)
    assert message.encode() in piped.err  # a pipe or a log file gets what the server said


def test_export_to_a_terminal_is_neutralised_and_json_stays_the_same_data(cli):
    cli.provider(reply=EVIL)
    cli.run("send", "q")
    md = cli.tty("export", "1")
    assert clean(md.out) and visible(EVIL).encode() in md.out
    assert EVIL.encode() in cli.run("export", "1").out
    as_json = cli.tty("export", "1", "--format", "json")
    piped = cli.run("export", "1", "--format", "json")
    assert clean(as_json.out) and "\u202e".encode() in piped.out  # a file gets the characters
    assert json.loads(piped.out)["messages"][1]["content"] == EVIL
    assert json.loads(as_json.out) == json.loads(piped.out)  # escaped as \\uXXXX: still valid JSON


def test_json_listings_on_a_terminal_escape_controls(cli):
    cli.run("send", "q")
    title = "inv\u202eoice\x9b"
    cli.run("rename", "1", title)
    shown = cli.tty("sessions", "--json")
    assert clean(shown.out) and json.loads(shown.out)[0]["title"] == title
    assert json.loads(cli.run("sessions", "--json").out)[0]["title"] == title
