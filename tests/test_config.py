"""config.load refuses base URLs that can never work, naming the file, the line and why."""

from __future__ import annotations

import subprocess
import sys

import pytest

from chatplex.config import ConfigError, load
from tests.conftest import env_with_src

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
    text = (
        GOOD
        + f'\n[providers."b"]  # the broken one\nkind = "vllm"\nmodel = "m"\n  base_url = "{url}"\n'
    )
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
        GOOD
        + '[providers.b]\nkind = "openai"\nmodel = "m"\nbase_url = "HTTPS://api.example.com/v1"\n'
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
