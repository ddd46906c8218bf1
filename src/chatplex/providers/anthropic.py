"""Anthropic Messages API streaming (`/v1/messages`, `stream: true`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from chatplex.providers.base import ChatMessage, ChatRequest, Finish, StreamEvent, TextDelta, TransientError, Usage
from chatplex.providers.http import HttpProvider, stream_error

API_VERSION = "2023-06-01"


def merge_turns(messages: list[ChatMessage]) -> list[dict[str, str]]:
    """The Messages API wants alternating roles starting with the user: merge neighbours
    of the same role (a message sent while the previous reply failed) and drop a leading
    assistant turn."""
    out: list[dict[str, str]] = []
    for m in messages:
        if out and out[-1]["role"] == m.role:
            out[-1]["content"] += "\n\n" + m.content
        elif out or m.role == "user":
            out.append({"role": m.role, "content": m.content})
    return out


class AnthropicProvider(HttpProvider):
    kind = "anthropic"

    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    def body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": merge_turns(request.messages),
            "max_tokens": request.max_tokens or self.default_max_tokens or 4096,
            "stream": True,
        }
        if request.system:
            body["system"] = request.system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        body.update(self.params)
        body.update(request.extra)
        return body

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        stop: str | None = None
        stopped = False
        prompt_tokens: int | None = None
        async with self._sse("/messages", self.body(request)) as (reads, decode):
            async for text in reads:
                for event in decode(text):
                    if not event.data or event.data.isspace():
                        continue
                    data = self._json(event)
                    if not isinstance(data, dict):
                        raise TransientError(f"{self.name}: unexpected data in the stream: {event.data[:80]!r}")
                    kind = data.get("type") or event.event
                    if kind == "content_block_delta":
                        delta = data.get("delta") or {}
                        if delta.get("type") == "text_delta" and delta.get("text"):
                            yield TextDelta(delta["text"])
                    elif kind == "message_start":
                        prompt_tokens = input_tokens((data.get("message") or {}).get("usage") or {})
                    elif kind == "message_delta":
                        stop = (data.get("delta") or {}).get("stop_reason") or stop
                        usage = data.get("usage") or {}
                        if "output_tokens" in usage:
                            yield Usage(input_tokens(usage) or prompt_tokens, usage["output_tokens"])
                    elif kind == "message_stop":
                        stopped = True
                        break
                    elif kind == "error":
                        raise stream_error(self.name, data.get("error"))
                if stopped:
                    break
        if not stopped:
            raise TransientError(f"{self.name}: the stream ended before the reply was finished")
        yield Finish(stop or "end_turn")

    async def list_models(self) -> list[str]:
        data = await self._get_json("/models")
        return sorted(str(m.get("id")) for m in data.get("data", []) if isinstance(m, dict) and m.get("id"))


def input_tokens(usage: dict[str, Any]) -> int | None:
    """The whole prompt: Anthropic counts tokens read from or written to the prompt cache
    apart from `input_tokens` (llama.cpp's server does the same for its KV cache)."""
    parts = [usage.get(k) for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")]
    numbers = [p for p in parts if isinstance(p, int)]
    return sum(numbers) if numbers else None
