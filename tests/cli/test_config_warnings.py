"""Unknown config keys are warned about, never refused: once on stderr by every command, as
⚠ lines by `doctor` (whose exit code they do not change); and the starter file only holds
keys that load() knows."""

from __future__ import annotations

import json
import re

from chatplex.config import load


def typo_config(cli) -> str:
    s = cli.provider(reply="Hello from the test server.")
    path = cli.tmp_path / "config.toml"
    path.write_text(
        f'workerz = 9\n[providers.fake]\nkind = "openai"\nbase_url = "{s.url}"\n'
        'model = "fake-small"\napi_key_env = ""\nmax_token = 5\n'
    )
    return str(path)


def test_every_command_warns_once_on_stderr_and_still_works(cli):
    path = typo_config(cli)
    warnings = [
        f'chatplex: warning: {path}, line 1: unknown key "workerz" (did you mean "workers"?)',
        (
            f'chatplex: warning: {path}, line 7: unknown key "max_token" in [providers.fake] '
            '(did you mean "max_tokens"?)'
        ),
    ]
    sent = cli.run("send", "hi")
    assert sent.out == b"Hello from the test server.\n" and sent.err_lines == warnings
    listed = cli.run("sessions", "--json")
    assert len(json.loads(listed.out)) == 1 and listed.err_lines == warnings
    assert cli.run("config", "show").err_lines == warnings


def test_doctor_shows_warnings_as_lines_and_keeps_its_exit_code(cli):
    path = typo_config(cli)
    done = cli.run("doctor", code=0)
    out = done.out.decode().splitlines()
    assert out[0] == f"✓ config: {path} (1 provider)"
    assert out[1] == f'⚠ config: {path}, line 1: unknown key "workerz" (did you mean "workers"?)'
    assert out[2].startswith(f'⚠ config: {path}, line 7: unknown key "max_token"')
    assert out[3].startswith("✓ database: ") and out[-1].startswith("✓ provider fake: ")
    assert done.err == b""  # once: as doctor lines, not also on stderr
    checks = json.loads(cli.run("doctor", "--json").out)
    assert checks[1] == {"check": "config", "ok": True, "warning": True, "detail": out[1].removeprefix("⚠ config: ")}


def test_the_starter_file_names_only_known_keys_and_where_binding_ids_are(cli, tmp_path):
    path = tmp_path / "config.toml"
    path.unlink()
    cli.run("config", "init")
    text = path.read_text()
    assert re.search(r"^# \[keys\] .*press F1 in the app for every binding id", text, re.MULTILINE)
    # every commented-out example, switched on, is a key load() reads
    uncommented = re.sub(r"^# (?=\[|\w+ = )", "", text, flags=re.MULTILINE)
    uncommented = uncommented.replace('model_path = "~/models', f'model_path = "{tmp_path}')
    assert uncommented.count("[providers.") == 7
    path.write_text(uncommented)
    assert load(path).warnings == []
