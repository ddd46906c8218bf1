"""Anthropic Messages API streaming (`/v1/messages`, `stream: true`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from chatplex.providers.base import (
    ChatMessage,
    ChatRequest,
    Finish,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    TransientError,
    Usage,
    token_count,
)
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
    api = "Messages API"  # named in a malformed-stream error

    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    def body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": merge_turns(
                request.messages + [ChatMessage("assistant", request.prefill)] if request.prefill else request.messages
            ),
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
                        delta = data.get("delta")
                        if type(delta) is not dict:
                            raise self._malformed("delta", delta)
                        part = delta.get("type")
                        if part == "text_delta":  # the per-token path
                            value = delta.get("text")
                            if type(value) is not str:
                                raise self._malformed("text_delta.text", value)
                            if value:
                                yield TextDelta(value)
                        elif part == "thinking_delta":
                            value = delta.get("thinking")
                            if type(value) is not str:
                                raise self._malformed("thinking_delta.thinking", value)
                            if value:
                                yield ReasoningDelta(value)
                        elif part == "input_json_delta":
                            value = delta.get("partial_json")
                            if type(value) is not str:
                                raise self._malformed("input_json_delta.partial_json", value)
                            yield ToolCallDelta(self._index(data), arguments=value)
                    elif kind == "content_block_start":
                        block = data.get("content_block")
                        if type(block) is not dict:
                            raise self._malformed("content_block", block)
                        if block.get("type") == "tool_use":
                            name, call_id = block.get("name"), block.get("id")
                            yield ToolCallDelta(
                                self._index(data),
                                call_id if type(call_id) is str else None,
                                name if type(name) is str else "?",
                            )
                        elif block.get("type") == "text" and type(block.get("text")) is str and block["text"]:
                            yield TextDelta(block["text"])
                    elif kind == "message_start":
                        message = data.get("message") or {}
                        usage = message.get("usage") or {} if type(message) is dict else None
                        if type(usage) is not dict:
                            raise self._malformed("message_start", data)
                        prompt_tokens = input_tokens(usage)
                    elif kind == "message_delta":
                        delta, usage = data.get("delta") or {}, data.get("usage") or {}
                        if type(delta) is not dict or type(usage) is not dict:
                            raise self._malformed("message_delta", data)
                        reason = delta.get("stop_reason")
                        if reason is not None and type(reason) is not str:
                            raise self._malformed("stop_reason", reason)
                        stop = reason or stop
                        if "output_tokens" in usage:
                            yield Usage(input_tokens(usage) or prompt_tokens, token_count(usage["output_tokens"]))
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

    def _index(self, data: dict[str, Any]) -> int:
        index = data.get("index", 0)
        if type(index) is not int:
            raise self._malformed("index", index)
        return index

    async def list_models(self) -> list[str]:
        data = await self._get_json("/models")
        return sorted(str(m.get("id")) for m in data.get("data", []) if isinstance(m, dict) and m.get("id"))


def input_tokens(usage: dict[str, Any]) -> int | None:
    """The whole prompt: Anthropic counts tokens read from or written to the prompt cache
    apart from `input_tokens` (llama.cpp's server does the same for its KV cache)."""
    parts = [usage.get(k) for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")]
    numbers = [p for p in parts if type(p) is int]
    return sum(numbers) if numbers else None
