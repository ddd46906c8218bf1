"""How commands name a session: ASCII digits are an id and only an id, anything else a title
(`title:` forces one); `send --session NAME` makes NAME when no session has that title; two
sessions with one title are refused by every command, listing them, never picked from."""

from __future__ import annotations

import json
import re

import pytest


def sessions(cli) -> list[dict]:
    return json.loads(cli.run("sessions", "--json").out)


def test_send_session_by_title_makes_it_once_then_reuses_it(cli, fake):
    s = cli.provider(reply="ok")
    other = fake.scenario(reply="from the other one")
    (cli.tmp_path / "config.toml").write_text(
        f'[providers.fake]\nkind = "openai"\nbase_url = "{s.url}"\nmodel = "fake-small"\n'
        f'api_key_env = ""\n[providers.other]\nkind = "openai"\nbase_url = "{other.url}"\n'
        'model = "o-default"\napi_key_env = ""\n'
    )
    made = cli.run(
        "send",
        "--session",
        "my  notes",
        "--provider",
        "other",
        "--model",
        "o-big",
        "--system",
        "be brief",
        "--json",
        "first",
    )
    sid = json.loads(made.out)["session"]
    [row] = sessions(cli)
    # the title as given (whitespace collapsed as the app keeps titles), not the message's
    assert (row["id"], row["title"], row["provider"], row["model"], row["system_prompt"]) == (
        sid,
        "my notes",
        "other",
        "o-big",
        "be brief",
    )
    assert other.requests[-1]["model"] == "o-big"
    assert other.requests[-1]["messages"][0] == {"role": "system", "content": "be brief"}

    # the same command again reaches the same session, with its history on the wire
    cli.run("send", "--session", "my  notes", "second")
    cli.run("send", "--session", "my notes", "third")
    assert [r["id"] for r in sessions(cli)] == [sid]
    assert [m["content"] for m in other.requests[-1]["messages"][1:]] == [
        "first",
        "from the other one",
        "second",
        "from the other one",
        "third",
    ]
    assert s.requests == []


def test_title_makes_a_new_session_with_that_title(cli):
    cli.run("send", "--title", "RFC questions", "what is 9110?")
    cli.run("send", "--title", "RFC questions", "and 9111?")  # --title always makes a new one
    assert [r["title"] for r in sessions(cli)] == ["RFC questions", "RFC questions"]
    err = cli.run("send", "--title", "x", "--session", "1", "hi", code=2).err_lines[0]
    assert "--title names a new session" in err
    assert "the session title is empty" in cli.run("send", "--title", "  ", "hi", code=2).err_lines[0]
    assert "the session title is empty" in cli.run("send", "--session", "title:", "hi", code=2).err_lines[0]
    assert len(sessions(cli)) == 2  # a refused send leaves nothing behind


def test_digits_are_an_id_and_title_prefix_reaches_a_numeric_title(cli):
    cli.run("send", "first")  # session 1
    cli.run("send", "--session", "title:3", "to the one titled 3")  # makes session 2, titled "3"
    cli.run("send", "--session", "title:3", "again")
    assert [(r["id"], r["title"]) for r in sessions(cli)] == [(2, "3"), (1, "first")]

    # an id that does not exist is an error, never a new session titled "7"
    err = cli.run("send", "--session", "7", "hi", code=2).err_lines[0]
    assert "no session '7'" in err and "title:7" in err
    # nor is it read as the title of another session: a saved id must not reach another chat
    cli.run("rename", "1", "2")  # session 1 is now titled "2"; session 2 is titled "3"
    assert "no session '3'" in cli.run("show", "3", code=2).err_lines[0]
    assert json.loads(cli.run("show", "2", "--json").out)["session"]["title"] == "3"
    assert json.loads(cli.run("show", "title:2", "--json").out)["session"]["id"] == 1
    shown = json.loads(cli.run("show", "title:3", "--json").out)
    assert [m["content"] for m in shown["messages"] if m["role"] == "user"] == ["to the one titled 3", "again"]


@pytest.mark.parametrize(
    "command",
    [
        ("send", "--session", "dup", "hello?"),
        ("show", "dup"),
        ("rm", "dup"),
        ("rename", "dup", "new name"),
        ("export", "dup"),
        ("send", "--session", "title:dup", "x"),
    ],
)
def test_an_ambiguous_title_is_refused_listing_the_candidates(cli, command):
    s = cli.provider(reply="ok")
    cli.run("send", "one")
    cli.run("send", "two")
    cli.run("send", "three")
    cli.run("rename", "1", "dup")
    cli.run("rename", "3", "dup")
    before = sessions(cli)

    err = cli.run(*command, code=2).err_lines[0]
    head, _, listed = err.partition("; name one by its id: ")
    assert head == "chatplex: 2 sessions are titled 'dup'", err
    one = r"'dup' \(last activity (<1s|\d+[smhd]) ago\)"
    assert re.fullmatch(rf"3 {one}, 1 {one}", listed), err  # the candidates, most recent first
    assert sessions(cli) == before  # nothing deleted, renamed or created
    assert len(s.requests) == 3  # nothing sent


def test_many_candidates_are_listed_on_one_line(cli):
    for i in range(7):
        cli.run("send", "--title", "New idea", f"idea {i}")
    err = cli.run("show", "New idea", code=2).err_lines[0]
    assert err.count("'New idea' (last activity") == 5 and "and 2 more" in err


def test_fork_copies_a_session_up_to_a_message_and_leaves_it_as_it_was(cli):
    cli.provider(reply="ok")
    first = json.loads(cli.run("send", "--session", "notes", "--json", "one").out)
    cli.run("send", "--session", "notes", "two")
    shown = json.loads(cli.run("show", "notes", "--json").out)
    ids = [m["id"] for m in shown["messages"]]
    assert len(ids) == 4 and first["message"] == ids[1]
    forked = json.loads(cli.run("fork", "notes", "--at", str(ids[1]), "--json").out)
    assert forked["title"] == "notes (fork)" and forked["forked_from"] == first["session"]
    assert forked["forked_at"] == ids[1]
    copy = json.loads(cli.run("show", str(forked["id"]), "--json").out)
    assert [m["content"] for m in copy["messages"]] == ["one", "ok"]
    assert not set(m["id"] for m in copy["messages"]) & set(ids)  # copies, with ids of their own
    assert len(json.loads(cli.run("show", "notes", "--json").out)["messages"]) == 4
    whole = json.loads(cli.run("fork", str(first["session"]), "--json").out)
    assert len(json.loads(cli.run("show", str(whole["id"]), "--json").out)["messages"]) == 4
    bad = cli.run("fork", "notes", "--at", "999", code=2)
    assert b"has no message 999" in bad.err
