"""What a provider says when its server is not there, or wants a key: the first things a
newcomer meets, so each must say what to do."""

from __future__ import annotations

import pytest

from chatplex.config import Config, ProviderConfig
from chatplex.providers.anthropic import AnthropicProvider
from chatplex.providers.base import AuthError, ProviderError, TransientError
from chatplex.providers.openai import OpenAIProvider
from tests.fakeserver import Fault
from tests.netgate import Gate
from tests.providers.test_providers import collect

KINDS = {"openai": OpenAIProvider, "anthropic": AnthropicProvider}


@pytest.fixture(params=list(KINDS))
def kind(request):
    return request.param


async def test_refused_before_the_server_ever_answered_is_not_retried(fake, kind):
    """Nothing listening and nothing ever answered: a server that is not running (or a wrong
    URL). Retrying it five times with backoff only kept the user waiting ~15 s for the news."""
    gate = Gate(fake.port)  # refuses until told to forward
    p = KINDS[kind]("down", gate.url(f"/s/{fake.scenario().id}/v1"))
    try:
        for call in (lambda: collect(p), p.list_models):
            with pytest.raises(ProviderError, match="cannot connect to") as info:
                await call()
            assert not info.value.retryable
            assert "is the server running?" in str(info.value)
    finally:
        await p.aclose()
        await gate.close()


async def test_refused_after_the_server_had_answered_is_a_restart_and_retried(fake, kind):
    s = fake.scenario(reply="up again")
    gate = Gate(fake.port)
    await gate.forward()
    p = KINDS[kind]("flaky", gate.url(f"/s/{s.id}/v1"))
    try:
        assert (await collect(p))[0] == "up again"
        await gate.close()  # the server goes away (a restart): connections are refused
        with pytest.raises(TransientError, match="cannot connect to") as info:
            await collect(p)
        assert info.value.retryable
        await gate.forward()  # and it is back
        assert (await collect(p))[0] == "up again"
    finally:
        await p.aclose()
        await gate.close()


async def test_an_error_status_counts_as_an_answer(fake, kind):
    """A server that answered anything (here a 503) is running: a refusal after it is retried."""
    s = fake.scenario(faults=[Fault(status=503)])
    gate = Gate(fake.port)
    await gate.forward()
    p = KINDS[kind]("flaky", gate.url(f"/s/{s.id}/v1"))
    try:
        with pytest.raises(TransientError, match="HTTP 503"):
            await collect(p)
        await gate.close()
        with pytest.raises(TransientError, match="cannot connect to"):
            await collect(p)
    finally:
        await p.aclose()
        await gate.close()


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_failure_names_the_key_variable(fake, kind, status, monkeypatch):
    s = fake.scenario(faults=[Fault(status=status)])
    echo = fake.scenario(echo_key=True)  # 401 to everything, quoting the key it got
    monkeypatch.setenv("MY_TEAM_KEY", "sk-wrong")
    config = Config(
        path=None,
        db_path=None,
        log_dir=None,
        default_provider="team",  # type: ignore[arg-type]
        providers={
            name: ProviderConfig(name=name, kind=kind, base_url=sc.url, model="m", api_key_env="MY_TEAM_KEY")
            for name, sc in (("team", s), ("echo", echo))
        },
    )
    p, q = config.make_provider("team"), config.make_provider("echo")  # the variable reaches the text
    try:
        with pytest.raises(AuthError) as info:
            await collect(p)
        assert str(info.value).endswith("(check the API key in the environment variable MY_TEAM_KEY)")
        for call in (lambda: collect(q), q.list_models):
            with pytest.raises(AuthError) as info:
                await call()
            assert "(check the API key in the environment variable MY_TEAM_KEY)" in str(info.value)
            assert "sk-wrong" not in str(info.value)
    finally:
        await p.aclose()
        await q.aclose()


async def test_auth_failure_with_no_key_configured_says_where_to_name_one(fake, kind):
    s = fake.scenario(faults=[Fault(status=401)])
    p = KINDS[kind]("local", s.url)
    try:
        with pytest.raises(AuthError) as info:
            await collect(p)
        assert str(info.value).endswith(
            "(the server wants an API key: set api_key_env in [providers.local] of config.toml)"
        )
    finally:
        await p.aclose()
