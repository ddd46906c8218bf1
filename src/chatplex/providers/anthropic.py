"""Anthropic Messages API streaming (`/v1/messages`, `stream: true`)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from chatplex.providers.base import (
    ChatMessage,
    ChatRequest,
    Finish,
    ReasoningDelta,
    ReasoningPart,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    TransientError,
    Usage,
    token_count,
)
from chatplex.providers.http import HttpProvider, stream_error

API_VERSION = "2023-06-01"
# a session's reasoning effort as a thinking budget (type "enabled"); "off" sends none
BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}
log = logging.getLogger("chatplex.provider")


def blocks(m: ChatMessage, model: str) -> list[dict[str, Any]]:
    """A turn's parts as content blocks. Thinking goes back unchanged, signature and all,
    while `model` is the one that wrote it; after a model change it is dropped (a stale
    signature is a 400), as is thinking without a signature (llama.cpp's server sends an
    empty one: nothing the real API would take back)."""
    out: list[dict[str, Any]] = []
    for p in m.parts:
        if isinstance(p, TextPart):
            if p.text:
                out.append({"type": "text", "text": p.text})
        elif isinstance(p, ReasoningPart):
            if m.model != model:
                continue
            if p.redacted:
                out.append({"type": "redacted_thinking", "data": p.redacted})
            elif p.signature:
                out.append({"type": "thinking", "thinking": p.text, "signature": p.signature})
        elif isinstance(p, ToolCallPart):
            try:
                arguments = json.loads(p.arguments) if p.arguments.strip() else {}
            except ValueError:
                arguments = None
            out.append(
                {
                    "type": "tool_use",
                    "id": p.id,
                    "name": p.name,
                    "input": arguments if isinstance(arguments, dict) else {},  # it must be an object
                }
            )
        elif isinstance(p, ToolResultPart):
            out.append({"type": "tool_result", "tool_use_id": p.call_id, "content": p.content, "is_error": p.is_error})
    return out


def merge_turns(messages: list[ChatMessage], model: str = "") -> list[dict[str, Any]]:
    """The Messages API wants alternating roles starting with the user: merge neighbours
    of the same role (a message sent while the previous reply failed) and drop a leading
    assistant turn. Tool results go in a user turn. Plain turns stay plain strings; a turn
    with parts becomes a list of blocks (and so does a neighbour merged into it)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        role = "user" if m.role == "tool" else m.role
        content: str | list[dict[str, Any]] = blocks(m, model) if m.parts else m.content
        if out and out[-1]["role"] == role:
            last = out[-1]["content"]
            if isinstance(last, str) and isinstance(content, str):
                out[-1]["content"] = last + "\n\n" + content
            else:
                out[-1]["content"] = _as_blocks(last) + _as_blocks(content)
        elif out or role == "user":
            out.append({"role": role, "content": content})
    return out


def _as_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


class AnthropicProvider(HttpProvider):
    kind = "anthropic"
    api = "Messages API"  # named in a malformed-stream error

    def __init__(
        self, *args: Any, thinking: dict[str, Any] | None = None, reasoning_effort: str = "", **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.thinking = dict(thinking or {})  # config's `thinking` table, sent as it is
        self.reasoning_effort = reasoning_effort  # the provider's default; a session's wins

    def thinking_for(self, effort: str) -> dict[str, Any]:
        """What `thinking` to send: none for "off"; for an effort, the configured table with
        a budget to match (type "enabled"), or an enabled one if none is configured."""
        effort = effort or self.reasoning_effort
        if effort in ("off", "none"):
            return {}
        if not effort:
            return dict(self.thinking)
        thinking = dict(self.thinking) or {"type": "enabled"}
        if thinking.get("type") == "enabled" and effort in BUDGETS:
            thinking["budget_tokens"] = BUDGETS[effort]
        return thinking

    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    def body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": merge_turns(
                request.messages + [ChatMessage("assistant", request.prefill)] if request.prefill else request.messages,
                request.model,
            ),
            "max_tokens": request.max_tokens or self.default_max_tokens or 4096,
            "stream": True,
        }
        if request.system:
            body["system"] = request.system
        thinking = self.thinking_for(request.reasoning_effort)
        if thinking:
            body["thinking"] = thinking
            budget = thinking.get("budget_tokens")
            if type(budget) is int and budget >= body["max_tokens"]:  # the budget is part of max_tokens
                body["max_tokens"] = budget + (request.max_tokens or self.default_max_tokens or 4096)
        elif request.temperature is not None:  # thinking takes no temperature
            body["temperature"] = request.temperature
        if request.tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in request.tools
            ]
        body.update(self.params)
        # a session's own settings win over the provider's params (Ctrl+G's dialog)
        if request.temperature is not None and not thinking:
            body["temperature"] = request.temperature
        if request.max_tokens and "max_tokens" in self.params:
            body["max_tokens"] = request.max_tokens
        body.update(request.extra)
        return body

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        stop: str | None = None
        stopped = False
        prompt_tokens: int | None = None
        unknown: set[str] = set()  # block and delta types this stream had that we skip
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
                                yield ReasoningDelta(value, block=self._index(data))
                        elif part == "signature_delta":
                            value = delta.get("signature")
                            if type(value) is not str:
                                raise self._malformed("signature_delta.signature", value)
                            if value:
                                yield ReasoningDelta("", signature=value, block=self._index(data))
                        elif part == "input_json_delta":
                            value = delta.get("partial_json")
                            if type(value) is not str:
                                raise self._malformed("input_json_delta.partial_json", value)
                            yield ToolCallDelta(self._index(data), arguments=value)
                        else:
                            self._unknown(unknown, "delta", part)
                    elif kind == "content_block_start":
                        block = data.get("content_block")
                        if type(block) is not dict:
                            raise self._malformed("content_block", block)
                        btype = block.get("type")
                        if btype == "tool_use":
                            name, call_id = block.get("name"), block.get("id")
                            yield ToolCallDelta(
                                self._index(data),
                                call_id if type(call_id) is str else None,
                                name if type(name) is str else "?",
                            )
                        elif btype == "text":
                            if type(block.get("text")) is str and block["text"]:
                                yield TextDelta(block["text"])
                        elif btype == "thinking":  # its place in the reply, even if it stays empty
                            thought, signature = block.get("thinking"), block.get("signature")
                            yield ReasoningDelta(
                                thought if type(thought) is str else "",
                                signature=signature if type(signature) is str else "",
                                block=self._index(data),
                            )
                        elif btype == "redacted_thinking":
                            redacted = block.get("data")
                            if type(redacted) is not str:
                                raise self._malformed("redacted_thinking.data", redacted)
                            yield ReasoningDelta("", redacted=redacted, block=self._index(data))
                        else:
                            self._unknown(unknown, "block", btype)
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
                        if "output_tokens" in usage:  # thinking is counted in it; no figure of its own
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

    def _unknown(self, seen: set[str], what: str, kind: object) -> None:
        """A block or delta type this client does not know (the API grows new ones): skipped,
        and logged once a stream so it can be added."""
        name = f"{what} {kind!r}"
        if name not in seen:
            seen.add(name)
            log.warning("%s: skipped an unknown content %s in the stream", self.name, name)

    def _index(self, data: dict[str, Any]) -> int:
        index = data.get("index", 0)
        if type(index) is not int:
            raise self._malformed("index", index)
        return index

    async def context_window(self, model: str) -> int | None:
        return None  # the Messages API does not say: config's context_window does

    async def list_models(self) -> list[str]:
        data = await self._get_json("/models")
        return sorted(str(m.get("id")) for m in data.get("data", []) if isinstance(m, dict) and m.get("id"))


def input_tokens(usage: dict[str, Any]) -> int | None:
    """The whole prompt: Anthropic counts tokens read from or written to the prompt cache
    apart from `input_tokens` (llama.cpp's server does the same for its KV cache)."""
    parts = [usage.get(k) for k in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")]
    numbers = [p for p in parts if type(p) is int]
    return sum(numbers) if numbers else None
