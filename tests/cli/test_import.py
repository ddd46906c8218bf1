"""`chatplex import` checks the whole file first: a malformed export is one line (exit 2)
and nothing is imported; a good one still round-trips."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chatplex.core.coordinator import MAX_MESSAGE
from tests.helpers import env_with_src


def chatplex(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chatplex", "--db", str(tmp_path / "c.db"), *args],
        capture_output=True,
        check=False,
        text=True,
        env=env_with_src(),
        timeout=60,
        cwd=tmp_path,
    )


def export(session: dict[str, Any] | None = None, messages: list[Any] | None = None) -> dict[str, Any]:
    return {
        "format": "chatplex-session/1",
        "session": {
            "title": "t",
            "provider": "p",
            "model": "m",
            "system_prompt": "",
            "created_at": 1_700_000_000.0,
            **(session or {}),
        },
        "messages": messages
        if messages is not None
        else [
            {
                "role": "user",
                "content": "hi",
                "state": "complete",
                "error": None,
                "created_at": 1_700_000_000.5,
            }
        ],
    }


def message(**fields: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "hi", **fields}]


CASES: dict[str, tuple[str, str]] = {  # name -> (file text, what the error says)
    "a date past year 9999": (
        json.dumps(export({"created_at": 1e300})),
        "session.created_at must be a time between 1970 and the year 9999, got 1e+300",
    ),
    "NaN": (
        json.dumps(export({"created_at": float("nan")})),
        "session.created_at must be a time between 1970",
    ),
    "Infinity": (
        json.dumps(export(messages=message(created_at=float("inf")))),
        "messages[0].created_at must be a time between 1970 and the year 9999, got inf",
    ),
    "before 1970": (
        json.dumps(export(messages=message(created_at=-1))),
        "messages[0].created_at must be a time",
    ),
    "a huge integer": (json.dumps(export({"created_at": 10**400})), "got a larger number"),
    "a date as text": (
        json.dumps(export(messages=message(created_at="2024-01-01"))),
        "messages[0].created_at must be a number of seconds since 1970, got a string",
    ),
    "true as a date": (json.dumps(export({"created_at": True})), "got true/false"),
    "a lone surrogate": (
        json.dumps(export(messages=message(content="a\ud800b"))),
        "messages[0].content holds an invalid character at 1 (a lone UTF-16 surrogate)",
    ),
    "a lone surrogate in the title": (
        json.dumps(export({"title": "\udfff"})),
        "session.title holds an invalid",
    ),
    "deep nesting": (
        '{"format": "chatplex-session/1", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "nested too deeply",
    ),
    "a list as state": (
        json.dumps(export(messages=message(state=[]))),
        "messages[0].state must be complete, interrupted or error",
    ),
    "a number as error": (
        json.dumps(export(messages=message(role="assistant", state="error", error=5))),
        "messages[0].error must be a string, got a number",
    ),
    "an object as model": (
        json.dumps(export({"model": {"x": 1}})),
        "session.model must be a string, got an object",
    ),
    "a list as system prompt": (
        json.dumps(export({"system_prompt": []})),
        "session.system_prompt must be a string",
    ),
    "a title too long": (
        json.dumps(export({"title": "x" * 1001})),
        "session.title is too long (1,001 characters",
    ),
    "a message too long": (
        json.dumps(export(messages=message(content="a" * (MAX_MESSAGE + 1)))),
        f"messages[0].content is too long ({MAX_MESSAGE + 1:,} characters; at most",
    ),
    "a message not an object": (json.dumps(export(messages=["hi"])), "messages[0] needs a role"),
    "a number too long to read": (
        json.dumps(export()).replace("1700000000.0", "9" * 5000),
        "is not valid JSON",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_malformed_export_is_one_line_and_imports_nothing(tmp_path, case):
    text, expected = CASES[case]
    path = tmp_path / "in.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(export({"title": "kept"})))
    assert chatplex(tmp_path, "import", str(good)).returncode == 0
    result = chatplex(tmp_path, "import", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"chatplex: {path}") and expected in lines[0], lines
    listed = chatplex(tmp_path, "sessions", "--json")
    assert [s["title"] for s in json.loads(listed.stdout)] == ["kept"]  # nothing half-imported
    assert chatplex(tmp_path, "export", "kept").returncode == 0  # and the app still works


def test_an_export_round_trips_with_edge_values(tmp_path):
    data = export(
        {"created_at": 253402300799, "system_prompt": "s" * 1000},
        [
            {"role": "system", "content": "rules", "created_at": 0},
            {"role": "user", "content": "emoji 🧪 and a NUL \0 byte", "created_at": 1},
            {
                "role": "assistant",
                "content": "partial",
                "state": "error",
                "error": "boom",
                "created_at": 2.5,
            },
        ],
    )
    path = tmp_path / "a.json"
    path.write_text(json.dumps(data))
    imported = chatplex(tmp_path, "import", str(path), "--json")
    assert imported.returncode == 0, imported.stderr
    sid = str(json.loads(imported.stdout)["session"])
    out = chatplex(tmp_path, "export", sid, "--format", "json")
    assert out.returncode == 0
    again = json.loads(out.stdout)
    assert [m["content"] for m in again["messages"]] == [m["content"] for m in data["messages"]]
    assert again["session"]["created_at"] == 253402300799
    assert chatplex(tmp_path, "export", sid).stdout.count("9999-12-31") == 1  # Markdown dates format


def test_a_sessions_settings_and_a_replys_speed_round_trip_and_bad_settings_are_refused(tmp_path):
    settings = {"temperature": 0.4, "max_tokens": 512, "reasoning_effort": "low"}
    data = export(
        {"settings": settings},
        [
            {"role": "user", "content": "q", "created_at": 1},
            {"role": "assistant", "content": "a", "created_at": 2, "completion_tokens": 30, "seconds": 1.5},
        ],
    )
    path = tmp_path / "a.json"
    path.write_text(json.dumps(data))
    imported = chatplex(tmp_path, "import", str(path), "--json")
    assert imported.returncode == 0, imported.stderr
    sid = str(json.loads(imported.stdout)["session"])
    again = json.loads(chatplex(tmp_path, "export", sid, "--format", "json").stdout)
    assert again["session"]["settings"] == settings
    assert again["messages"][1]["seconds"] == 1.5 and again["messages"][1]["completion_tokens"] == 30
    for bad, said in (
        ({"temperature": 9}, "temperature must be a number from 0 to 2"),
        ("hot", "session.settings must be an object"),
    ):
        path.write_text(json.dumps(export({"settings": bad}, [])))
        refused = chatplex(tmp_path, "import", str(path))
        assert refused.returncode == 2 and said in refused.stderr
    path.write_text(json.dumps(export({}, [{"role": "assistant", "content": "a", "seconds": -1}])))
    refused = chatplex(tmp_path, "import", str(path))
    assert refused.returncode == 2 and "messages[0].seconds must be a number of seconds" in refused.stderr
