"""Both wire formats against the fault-injecting server and against llama.cpp's real server."""

from __future__ import annotations

import httpx
import pytest

from chatplex.providers.anthropic import AnthropicProvider, merge_turns
from chatplex.providers.base import (
    AuthError,
    BadRequest,
    ChatMessage,
    ChatRequest,
    Finish,
    RateLimited,
    TextDelta,
    TransientError,
    Usage,
    retry_after_seconds,
)
from chatplex.providers.openai import OpenAIProvider
from tests.fakeserver import Fault

KINDS = {"openai": OpenAIProvider, "anthropic": AnthropicProvider}


def request(text: str = "hi", system: str = "") -> ChatRequest:
    return ChatRequest(model="fake-small", messages=[ChatMessage("user", text)], system=system)


async def collect(provider, req=None):
    text, usage, finish = [], None, None
    async for ev in provider.stream(req or request()):
        if isinstance(ev, TextDelta):
            text.append(ev.text)
        elif isinstance(ev, Usage):
            usage = ev
        elif isinstance(ev, Finish):
            finish = ev.reason
    return "".join(text), usage, finish


@pytest.fixture(params=sorted(KINDS))
def kind(request) -> str:
    return request.param


async def test_streams_reply_with_usage_and_finish(fake, kind):
    s = fake.scenario(reply="one two three")
    p = KINDS[kind]("fake", s.url, api_key="sk-test")
    text, usage, finish = await collect(p, request("hello", system="be brief"))
    await p.aclose()
    assert text == "one two three"
    assert usage.completion_tokens == 3
    assert finish in ("stop", "end_turn")
    body = s.requests[0]
    assert body["stream"] is True
    if kind == "openai":
        assert body["messages"][0] == {"role": "system", "content": "be brief"}
        assert s.headers[0]["Authorization"] == "Bearer sk-test"
    else:
        assert body["system"] == "be brief" and body["max_tokens"] == 4096
        assert s.headers[0]["x-api-key"] == "sk-test"
        assert s.headers[0]["anthropic-version"] == "2023-06-01"


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault(status=401), AuthError),
        (Fault(status=403), AuthError),
        (Fault(status=400, body={"error": {"message": "context too long"}}), BadRequest),
        (Fault(status=404), BadRequest),
        (Fault(status=422), BadRequest),
        (Fault(status=429, headers={"Retry-After": "7"}), RateLimited),
        (Fault(status=500), TransientError),
        (Fault(status=503), TransientError),
        (Fault(reset_after=1), TransientError),
        (Fault(no_finish=True), TransientError),
        (Fault(bad_json=True), TransientError),
        (Fault(error_event=True), TransientError),
    ],
)
async def test_errors_are_typed(fake, kind, fault, error):
    s = fake.scenario(reply="a b c", faults=[fault])
    p = KINDS[kind]("fake", s.url)
    with pytest.raises(error) as info:
        await collect(p)
    await p.aclose()
    assert str(info.value).startswith("fake: ")
    if fault.body:
        assert "context too long" in str(info.value)
    if fault.status == 429:
        assert info.value.retry_after == 7.0


async def test_connection_refused_names_the_url(kind):
    """Refused before the server ever answered: not retried (tests/providers/test_first_contact.py)."""
    from chatplex.providers.base import ProviderError
    from chatplex.providers.llamacpp import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    p = KINDS[kind]("down", url)
    with pytest.raises(ProviderError, match="cannot connect to") as info:
        await collect(p)
    assert url in str(info.value) and not info.value.retryable
    await p.aclose()


async def test_missing_key_variable_is_an_auth_error_naming_it(fake, kind):
    s = fake.scenario()
    p = KINDS[kind]("fake", s.url, missing_key_env="MY_KEY")
    with pytest.raises(AuthError, match="MY_KEY"):
        await collect(p)
    await p.aclose()
    assert s.requests == []


async def test_list_models(fake):
    s = fake.scenario()
    p = OpenAIProvider("fake", s.url)
    assert await p.list_models() == ["fake-large", "fake-small"]
    await p.aclose()


def test_retry_after_forms():
    assert retry_after_seconds(httpx.Headers({"retry-after": "3"})) == 3.0
    assert retry_after_seconds(httpx.Headers({"retry-after-ms": "1500"})) == 1.5
    assert (
        retry_after_seconds(httpx.Headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}), now=1445412470.0) == 10.0
    )
    assert retry_after_seconds(httpx.Headers({})) is None


def test_anthropic_turns_alternate():
    msgs = [
        ChatMessage("assistant", "x"),
        ChatMessage("user", "a"),
        ChatMessage("user", "b"),
        ChatMessage("assistant", "c"),
    ]
    assert merge_turns(msgs) == [{"role": "user", "content": "a\n\nb"}, {"role": "assistant", "content": "c"}]


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_real_llamacpp_server_both_apis(tiny_server, kind):
    p = KINDS[kind]("tiny", tiny_server.url)
    req = ChatRequest(model="tiny", messages=[ChatMessage("user", "hi")], system="sys", temperature=0)
    text, usage, finish = await collect(p, req)
    await p.aclose()
    assert text == tiny_server.REPLY
    assert finish in ("stop", "end_turn")
    assert usage and usage.completion_tokens


async def test_real_llamacpp_server_length_limit(tiny_server):
    p = OpenAIProvider("tiny", tiny_server.url)
    req = ChatRequest(model="tiny", messages=[ChatMessage("user", "hi")], max_tokens=2, temperature=0)
    text, usage, finish = await collect(p, req)
    await p.aclose()
    assert finish == "length" and usage.completion_tokens == 2


async def test_real_llamacpp_server_says_its_context_window(tiny_server):
    """llama.cpp's /props: the context one request gets (n_ctx 4096 split between 2 slots)."""
    p = OpenAIProvider("tiny", tiny_server.url)
    window = await p.context_window("tiny")
    await p.aclose()
    assert window == 2048
