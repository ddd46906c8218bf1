"""config.load refuses base URLs that can never work, naming the file, the line and why."""

from __future__ import annotations

import subprocess
import sys

import pytest

from chatplex.config import ConfigError, load
from tests.helpers import env_with_src

GOOD = '# mine\ndefault_provider = "a"\n\n[providers.a]\nkind = "ollama"\nmodel = "m"\n'


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "uses file://, but only http:// and https:// can work"),
        ("ftp://example.com/v1", "uses ftp://, but only http:// and https:// can work"),
        ("localhost:8080/v1", "has no scheme: it should start with http:// or https://"),
        ("https:///v1", "has no host name"),
        ("http://", "has no host name"),
        ("http://localhost:99999/v1", "is not a valid URL"),
        ("http://local host/v1", "contains a space or a control character"),
    ],
)
def test_a_base_url_that_cannot_work_is_refused_with_its_line(tmp_path, url, reason):
    config = tmp_path / "config.toml"
    text = GOOD + f'\n[providers."b"]  # the broken one\nkind = "vllm"\nmodel = "m"\n  base_url = "{url}"\n'
    config.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "chatplex", "--config", str(config), "sessions"],
        capture_output=True,
        check=False,
        text=True,
        env=env_with_src(),
        timeout=60,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"chatplex: config: {config}, line 11: providers.b.base_url {reason}"
    )
    assert config.read_text() == text  # never rewritten


def test_good_base_urls_and_defaults_load(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        GOOD + '[providers.b]\nkind = "openai"\nmodel = "m"\nbase_url = "HTTPS://api.example.com/v1"\n'
        '[providers.c]\nkind = "vllm"\nmodel = "m"\nbase_url = "http://[::1]:8000/v1"\n'
        '[providers.d]\nkind = "llamacpp"\nmodel_path = "x.gguf"\n'
        '[providers.e]\nkind = "anthropic"\nmodel = "m"\n'
    )
    assert sorted(load(config).providers) == ["a", "b", "c", "d", "e"]


def test_a_bad_base_url_in_a_dotted_key_is_refused_without_a_line(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('providers.x = { model = "m", base_url = "gopher://h/v1" }\n')
    with pytest.raises(ConfigError) as caught:
        load(config)
    assert str(caught.value) == (
        f"{config}: providers.x.base_url uses gopher://, but only http:// and https:// can work"
    )


UNKNOWN = (
    'default_provider = "a"\n'  # 1
    "workerz = 9\n"  # 2
    "temperature = 0.5\n"  # 3
    "\n"
    '[providers."a"]  # mine\n'  # 5
    'kind = "ollama"\n'
    'model = "m"\n'
    "max_token = 5\n"  # 8
    "  temperature = 0.2\n"  # 9
    "temprature = 0.2\n"  # 10
    'system = """\n'  # 11: a multi-line string is no key
    "flibber = 1\n"
    '"""\n'
    "flibber = 2\n"  # 14
    "[providers.a.params]\n"
    "anything_goes = 1\n"  # free-form
    "[keys]\n"
    'whatever_id = "ctrl+t"\n'  # free-form
    "[providers.b]\n"
    'kind = "ollama"\n'
    'model = "m"\n'
    "contxt = 3\n"  # 22
)


def test_unknown_keys_are_warnings_with_their_line_and_the_closest_key(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(UNKNOWN)
    loaded = load(config)
    assert loaded.workers == 4 and loaded.providers["a"].max_tokens is None  # still a Config
    assert loaded.warnings == [
        f'{config}, line 2: unknown key "workerz" (did you mean "workers"?)',
        (f'{config}, line 3: unknown key "temperature" (a request parameter: it belongs in [providers.NAME.params])'),
        f'{config}, line 8: unknown key "max_token" in [providers.a] (did you mean "max_tokens"?)',
        (
            f'{config}, line 9: unknown key "temperature" in [providers.a] (a request parameter: '
            "it belongs in [providers.a.params])"
        ),
        (
            f'{config}, line 10: unknown key "temprature" in [providers.a] (did you mean '
            '"temperature" in [providers.a.params]?)'
        ),
        f'{config}, line 11: unknown key "system" in [providers.a]',
        f'{config}, line 14: unknown key "flibber" in [providers.a]',
        f'{config}, line 22: unknown key "contxt" in [providers.b] (did you mean "context"?)',
    ]


def test_keys_in_inline_tables_and_odd_names_are_reported_too(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('providers."my x" = { kind = "ollama", model = "m", modle = "q" }\nprovider.y.model = "m"\n')
    assert load(config).warnings == [
        f'{config}, line 2: unknown key "provider" (did you mean "providers"?)',
        f'{config}, line 1: unknown key "modle" in [providers."my x"] (did you mean "model"?)',
    ]


def test_every_key_load_reads_is_known(tmp_path):
    """A key that load() reads must never be reported as unknown (stall_timeout included)."""
    config = tmp_path / "config.toml"
    config.write_text(
        'default_provider = "a"\nworkers = 2\nmax_attempts = 3\nbell = true\nshow_reasoning = true\n'
        f'database = "{tmp_path / "x.db"}"\n'
        '[keys]\nnew_session = "ctrl+t"\n'
        '[providers.a]\nkind = "openai"\nbase_url = "http://127.0.0.1:1/v1"\nmodel = "m"\n'
        'api_key_env = "X"\nmax_concurrency = 2\nconnect_timeout = 1\nread_timeout = 2\n'
        'stall_timeout = 3\nreply_timeout = 4\nmax_tokens = 5\ncontext = 6\nmodel_path = ""\n'
        "[providers.a.params]\ntemperature = 0.1\n"
    )
    loaded = load(config)
    assert loaded.warnings == []
    a = loaded.providers["a"]
    assert (loaded.workers, loaded.max_attempts, loaded.bell, loaded.keys) == (2, 3, True, {"new_session": "ctrl+t"})
    assert loaded.show_reasoning is True
    assert (a.stall_timeout, a.reply_timeout, a.max_tokens, a.params) == (3.0, 4.0, 5, {"temperature": 0.1})


async def test_reasoning_settings_load_without_warnings_and_reach_the_providers(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        'default_provider = "deepseek"\n'
        '[providers.deepseek]\nkind = "openai"\nbase_url = "http://127.0.0.1:1/v1"\nmodel = "r1"\n'
        'think_tags = true\nreplay_reasoning = "always"\nreasoning_effort = "high"\n'
        '[providers.claude]\nkind = "anthropic"\nmodel = "c"\n'
        'thinking = {type = "enabled", budget_tokens = 3000}\n'
    )
    loaded = load(config)
    assert loaded.warnings == []
    deepseek, claude = loaded.make_provider("deepseek"), loaded.make_provider("claude")
    try:
        assert (deepseek.think_tags, deepseek.replay_reasoning, deepseek.reasoning_effort) == (True, "always", "high")
        assert claude.thinking == {"type": "enabled", "budget_tokens": 3000}
    finally:
        await deepseek.aclose()
        await claude.aclose()
    config.write_text(config.read_text().replace('"always"', '"sometimes"'))
    with pytest.raises(ConfigError, match='replay_reasoning must be one of "tool_turns", "always", "never"'):
        load(config)


def test_mcp_servers_load_with_their_policy_and_secrets_never_in_the_config(tmp_path, monkeypatch):
    monkeypatch.setenv("GH_TOKEN_FOR_TEST", "ghp-secret-value")
    config = tmp_path / "config.toml"
    config.write_text(
        "max_tool_rounds = 5\n"
        + GOOD
        + '[mcp.time]\ncommand = "mcp-server-time"\nargs = ["--local-timezone", "UTC"]\napproval = "allow"\n'
        '[mcp.github]\nurl = "http://127.0.0.1:9/mcp"\nheaders = {Authorization = "Bearer ${GH_TOKEN_FOR_TEST}"}\n'
        'enabled = false\ntimeout = 5\n[mcp.github.tools]\n"get_*" = "allow"\n"delete_*" = "deny"\n'
        '[mcp.typo]\ncommand = "x"\ncomand = "y"\n'
    )
    loaded = load(config)
    assert loaded.max_tool_rounds == 5
    time, github = loaded.mcp["time"], loaded.mcp["github"]
    assert (time.command, time.args, time.approval, time.enabled) == (
        "mcp-server-time",
        ["--local-timezone", "UTC"],
        "allow",
        True,
    )
    assert (github.url, github.enabled, github.timeout) == ("http://127.0.0.1:9/mcp", False, 5.0)
    assert list(github.tools.items()) == [("get_*", "allow"), ("delete_*", "deny")]  # order kept: first match wins
    assert github.headers == {"Authorization": "Bearer ${GH_TOKEN_FOR_TEST}"}  # the name, not the value
    assert "ghp-secret-value" in loaded.secrets()  # redacted from logs and errors
    assert any('unknown key "comand" in [mcp.typo]' in w and '"command"' in w for w in loaded.warnings)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('args = ["x"]\n', "needs either command"),
        ('command = "x"\nurl = "http://h/mcp"\n', "needs either command"),
        ('command = "x"\napproval = "maybe"\n', 'approval must be one of "ask", "allow", "deny"'),
        ('command = "x"\ntimeout = 0\n', "timeout must be a number of seconds above 0"),
        ('command = "x"\nenv = {A = 1}\n', "env values must be strings"),
    ],
)
def test_a_bad_mcp_table_is_refused_with_a_clear_reason(tmp_path, table, message):
    config = tmp_path / "config.toml"
    config.write_text(GOOD + "[mcp.s]\n" + table)
    with pytest.raises(ConfigError, match=message):
        load(config)
