"""API keys that a CRLF .env file or a paste spoilt never reach the database, the log,
a transcript, an export, stderr or `doctor` — through the real CLI and the fake server."""

from __future__ import annotations

import json
import logging
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from chatplex import logs
from chatplex.config import Config
from chatplex.core.events import ReplyFinished
from chatplex.core.models import MessageState
from chatplex.providers.anthropic import AnthropicProvider
from chatplex.providers.base import AuthError, ChatMessage, ChatRequest, ProviderError
from chatplex.providers.openai import OpenAIProvider
from tests.helpers import env_with_src, make_config, provider_for

VAR = "CHATPLEX_TEST_API_KEY"


def spoilt_keys() -> dict[str, tuple[str, list[str]]]:
    """name -> (the variable's value, parts of it that must appear nowhere). Random parts:
    finding one anywhere cannot be a coincidence."""
    a, b = secrets.token_hex(8), secrets.token_hex(8)
    return {
        "crlf": (f"sk-{a}{b}\r\n", [a, b]),  # a CRLF .env file: stripped and used
        "zero-width-space": (f"sk-{a}\u200b{b}", [a, b]),  # a paste: refused
        "inner-newline": (f"sk-{a}\n{b}", [a, b]),  # two lines pasted: refused
    }


def everything_under(folder: Path) -> bytes:
    """Every file's bytes: the database with its -wal and -shm, the log, the exports."""
    return b"\0".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


@pytest.mark.parametrize("case", ["crlf", "zero-width-space", "inner-newline"])
def test_a_spoilt_key_appears_nowhere(case, fake, tmp_path):
    key, parts = spoilt_keys()[case]
    s = fake.scenario(echo_key=True)  # a server that quotes the key it got in its 401
    (tmp_path / "config.toml").write_text(
        f'max_attempts = 1\n[providers.cloud]\nkind = "openai"\nmodel = "m"\nbase_url = "{s.url}"\n'
        f'api_key_env = "{VAR}"\n'
    )
    env = {**env_with_src(), VAR: key, "CHATPLEX_LOG": "DEBUG"}

    def run(*args: str, code: int = 0) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "chatplex", *args],
            capture_output=True,
            check=False,
            env=env,
            timeout=60,
            cwd=tmp_path,
        )
        assert result.returncode == code, (args, result.returncode, result.stdout, result.stderr)
        assert b"Traceback" not in result.stderr
        return (result.stdout + result.stderr).decode("utf-8", "backslashreplace")

    sent = run("send", "hello", code=1)
    assert len(sent.strip().splitlines()) == 1 and not any(part in sent for part in parts), sent
    if case == "crlf":  # the stripped key went out; the server's echo of it was masked
        assert s.headers[0]["Authorization"] == "Bearer " + key.strip()
        assert "HTTP 401" in sent and "****" in sent
    else:  # refused before anything was sent, with the variable's name and the reason
        assert s.requests == [] and VAR in sent and "cannot contain" in sent
    shown = [
        run("show", "1"),
        run("show", "1", "--json"),
        run("export", "1"),
        run("jobs", "--json"),
        run("export", "1", "--format", "json", "-o", str(tmp_path / "export.json")),
        run("doctor", code=1),
        run("doctor", "--json", code=1),
        run("sessions", "--json"),
    ]
    assert json.loads(shown[1])["messages"][1]["state"] == "error"
    assert "✗ provider cloud: " in shown[5]
    if case != "crlf":
        assert "cannot contain" in shown[5]
    files = everything_under(tmp_path)
    assert list(tmp_path.rglob("chatplex.log"))  # the log was written, and is searched
    for part in parts:
        for text in [sent, *shown]:
            assert part not in text
        assert part.encode() not in files


async def test_a_spoilt_key_fails_the_reply_through_the_coordinator(fake, tmp_path, coordinators, monkeypatch):
    key, parts = spoilt_keys()["zero-width-space"]
    s = fake.scenario()
    monkeypatch.setenv(VAR, key)
    config = make_config(tmp_path, provider_for(s, name="cloud", api_key_env=VAR))
    coord, rec = await coordinators(config)
    session = await coord.create_session()
    _, reply, _ = await coord.send(session.id, "hello")
    done = await rec.wait(lambda e: isinstance(e, ReplyFinished) and e.message.id == reply.id)
    assert done.message.state is MessageState.ERROR
    assert done.message.error.startswith(f"cloud: the environment variable {VAR} holds a non-ASCII character")
    assert "U+200B" in done.message.error and s.requests == []
    job = (await coord.jobs())[0]
    assert not any(p in done.message.error + (job.last_error or "") for p in parts)


def test_config_secrets_lists_each_set_key_as_found_and_as_sent(monkeypatch, tmp_path, fake):
    s = fake.scenario()
    monkeypatch.setenv("KEY_A", "sk-a\r\n")
    monkeypatch.setenv("KEY_B", "sk-b")
    monkeypatch.delenv("KEY_C", raising=False)
    config: Config = make_config(
        tmp_path,
        provider_for(s, name="a", api_key_env="KEY_A"),
        provider_for(s, name="b", api_key_env="KEY_B"),
        provider_for(s, name="c", api_key_env="KEY_C"),
        provider_for(s, name="d"),
    )
    assert config.secrets() == ["sk-a\r\n", "sk-a", "sk-b"]


def request() -> ChatRequest:
    return ChatRequest(model="m", messages=[ChatMessage("user", "hi")])


@pytest.mark.parametrize("cls", [OpenAIProvider, AnthropicProvider])
@pytest.mark.parametrize("bad", ["\r\n", "\u200b", "\n"])
async def test_provider_errors_never_carry_the_key(cls, bad, fake):
    """Built without the config's check (as a script might): the error httpx raises about
    the header, or the UnicodeEncodeError, is masked and fails at once."""
    a, b = secrets.token_hex(8), secrets.token_hex(8)
    key = f"sk-{a}{bad}{b}"
    s = fake.scenario()
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("chatplex.provider").addHandler(handler)
    provider = cls("cloud", s.url, api_key=key)
    try:
        for call in (lambda: anext(aiter(provider.stream(request()))), provider.list_models):
            with pytest.raises(ProviderError) as caught:
                await call()
            error = caught.value
            assert not error.retryable and error.__cause__ is None and error.__suppress_context__
            assert a not in str(error) + repr(error) and b not in str(error) + repr(error)
    finally:
        logging.getLogger("chatplex.provider").removeHandler(handler)
        await provider.aclose()
    logged = "\n".join(logging.Formatter().format(r) for r in records)
    assert a not in logged and b not in logged
    assert s.requests == []


@pytest.mark.parametrize("cls", [OpenAIProvider, AnthropicProvider])
async def test_a_key_the_server_echoes_is_masked(cls, fake):
    key = "sk-" + secrets.token_hex(16)
    s = fake.scenario(echo_key=True)
    provider = cls("cloud", s.url, api_key=key)
    try:
        for call in (lambda: anext(aiter(provider.stream(request()))), provider.list_models):
            with pytest.raises(AuthError) as caught:
                await call()
            assert key[3:] not in str(caught.value) and "****" in str(caught.value)
    finally:
        await provider.aclose()


@pytest.fixture
def restore_logging():
    root = logging.getLogger("chatplex")
    level, propagate = root.level, root.propagate
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    root.propagate = propagate


def test_log_filter_masks_messages_arguments_and_tracebacks(tmp_path, restore_logging):
    key = "sk-" + secrets.token_hex(16)
    path = logs.setup(tmp_path / "logs", "DEBUG", secrets=[key + "\r\n", key])
    assert path is not None
    log = logging.getLogger("chatplex.provider")
    log.info("header was %r", f"Bearer {key}\r\n".encode())
    log.warning(f"inline {key}")
    try:
        raise ValueError(f"Illegal header value b'Bearer {key}'")
    except ValueError:
        log.exception("failed")
    logging.getLogger("chatplex").handlers[0].flush()
    text = path.read_text()
    assert key[3:] not in text and text.count("****") == 3 and "Traceback" in text
