"""`chatplex archive S [--undo]` and `sessions --archived` (issue 17, item 7)."""

from __future__ import annotations

import json


def test_the_cli_archives_lists_and_restores(cli):
    cli.provider(reply="ok")
    cli.run("send", "--session", "notes", "one")
    cli.run("send", "--session", "other", "two")
    done = json.loads(cli.run("archive", "notes", "--json").out)
    assert done["title"] == "notes" and done["archived"] is True
    assert [r["title"] for r in json.loads(cli.run("sessions", "--json").out)] == ["other"]
    assert [r["title"] for r in json.loads(cli.run("sessions", "--archived", "--json").out)] == ["notes"]
    assert b"archived" in cli.run("archive", "other").out
    assert b"no archived session" not in cli.run("sessions", "--archived").out
    cli.run("archive", "notes", "--undo")
    cli.run("archive", "other", "--undo")
    listed = cli.run("sessions", "--archived")
    assert b"no archived session" in listed.out + listed.err
    assert len(json.loads(cli.run("sessions", "--json").out)) == 2
