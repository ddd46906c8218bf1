"""The SSE fast path gives exactly httpx-sse's events, however the stream is cut into reads."""

from __future__ import annotations

import random

import pytest
from httpx_sse._decoders import SSEDecoder, SSELineDecoder

from chatplex.providers.http import _decoder


def reference(chunks: list[str]) -> list[tuple]:
    lines, events = SSELineDecoder(), SSEDecoder()
    out = [e for c in chunks for line in lines.decode(c) if (e := events.decode(line)) is not None]
    return [(e.event, e.data, e.id, e.retry) for e in out]


def ours(chunks: list[str]) -> list[tuple]:
    decode = _decoder()
    return [(e.event, e.data, e.id, e.retry) for c in chunks for e in decode(c)]


def random_stream(rng: random.Random) -> str:
    newline = rng.choice(["\n"] * 6 + ["\r\n", "\r"])
    blocks = []
    for _ in range(rng.randint(1, 30)):
        lines = []
        for _ in range(rng.randint(1, 3)):
            field = rng.choice(["data"] * 8 + ["event", ": comment", "id", "retry", "data", "bogus"])
            value = rng.choice(
                ['{"choices":[{"delta":{"content":"hi"}}]}', "[DONE]", "", " spaced", "id: inside", "5", "x:y"]
            )
            lines.append(field if field.startswith(":") else f"{field}:{rng.choice(['', ' '])}{value}")
        blocks.append(newline.join(lines) + newline + newline * rng.choice([1, 1, 1, 2]))
    return "".join(blocks)


def cut(text: str, rng: random.Random) -> list[str]:
    """Whole events per read most of the time (what servers send), or arbitrary cuts."""
    if rng.random() < 0.5:
        parts, start = [], 0
        while start < len(text):
            end = text.find("\n\n", start)
            end = len(text) if end < 0 else end + 2
            parts.append(text[start:end])
            start = end
        return parts
    points = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(0, 20))))
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]


@pytest.mark.parametrize("seed", range(300))
def test_fast_path_matches_httpx_sse(seed):
    rng = random.Random(seed)
    chunks = cut(random_stream(rng), rng)
    assert ours(chunks) == reference(chunks)


def test_typical_openai_and_anthropic_chunks():
    openai = ['data: {"choices":[{"delta":{"content":"a"}}]}\n\n', "data: [DONE]\n\n"]
    anthropic = [
        'event: content_block_delta\ndata: {"type":"content_block_delta"}\n\n',
        "event: message_stop\ndata: {}\n\nevent: ping\ndata: {}\n\n",
    ]
    for chunks in (openai, anthropic):
        assert ours(chunks) == reference(chunks) and len(ours(chunks)) == len(chunks) + (chunks is anthropic)
