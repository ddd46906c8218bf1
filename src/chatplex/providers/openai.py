"""OpenAI-compatible Chat Completions streaming (OpenAI, Ollama /v1, vLLM, llama.cpp,
LM Studio, OpenRouter)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from chatplex.providers.base import (
    ChatMessage,
    ChatRequest,
    Finish,
    ProviderError,
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
from chatplex.providers.parts import ThinkTags

REPLAY_REASONING = ("tool_turns", "always", "never")


class OpenAIProvider(HttpProvider):
    kind = "openai"
    api = "Chat Completions API"  # named in a malformed-stream error

    def __init__(
        self,
        *args: Any,
        think_tags: bool = False,
        replay_reasoning: str = "tool_turns",
        reasoning_effort: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.think_tags = think_tags  # reasoning inline in content as <think>…</think>
        # which earlier assistant turns carry their reasoning back (`reasoning_content`):
        # DeepSeek requires it on turns that called tools and rejects it on the others
        self.replay_reasoning = replay_reasoning
        self.reasoning_effort = reasoning_effort  # the provider's default; a session's wins

    def auth_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def turn(self, m: ChatMessage) -> list[dict[str, Any]]:
        """One history turn in Chat Completions' shape: tool results are one `tool` message
        each; an assistant turn carries its tool calls and, as `replay_reasoning` says, its
        reasoning."""
        if not m.parts:
            return [{"role": m.role, "content": m.content}]
        if m.role == "tool":
            return [
                {"role": "tool", "tool_call_id": p.call_id, "content": p.content}
                for p in m.parts
                if isinstance(p, ToolResultPart)
            ]
        text = "".join(p.text for p in m.parts if isinstance(p, TextPart))
        calls = [
            {"id": p.id, "type": "function", "function": {"name": p.name, "arguments": p.arguments}}
            for p in m.parts
            if isinstance(p, ToolCallPart)
        ]
        out: dict[str, Any] = {"role": m.role, "content": text if text or not calls else None}
        if calls:
            out["tool_calls"] = calls
        if m.role == "assistant" and (
            self.replay_reasoning == "always" or self.replay_reasoning == "tool_turns" and calls
        ):
            thought = "".join(p.text for p in m.parts if isinstance(p, ReasoningPart))
            if thought:
                out["reasoning_content"] = thought
        return [out]

    def body(self, request: ChatRequest) -> dict[str, Any]:
        messages = [{"role": "system", "content": request.system}] if request.system else []
        for m in request.messages:
            messages += self.turn(m)
        if request.prefill:
            messages.append({"role": "assistant", "content": request.prefill})
        body: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        max_tokens = request.max_tokens or self.default_max_tokens
        if max_tokens:
            body["max_tokens"] = max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if self.reasoning_effort:
            body["reasoning_effort"] = self.reasoning_effort
        body.update(self.params)
        # the session's settings win over the provider's (its params included: Ctrl+G's dialog)
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens:
            body["max_tokens"] = request.max_tokens
        if request.reasoning_effort:
            body["reasoning_effort"] = request.reasoning_effort
        if body.get("reasoning_effort") == "off":  # chatplex's word for "send none"
            del body["reasoning_effort"]
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                }
                for t in request.tools
            ]
        body.update(request.extra)
        return body

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        finish: str | None = None
        done = False
        tags = ThinkTags() if self.think_tags else None
        async with self._sse("/chat/completions", self.body(request)) as (reads, decode):
            async for text in reads:
                for event in decode(text):
                    data = event.data
                    if data[:1] != "{":  # not the usual JSON object: the end, a blank, or junk
                        if data.strip() == "[DONE]":
                            done = True
                            break
                        if not data or data.isspace():
                            continue
                    chunk = self._json(event)
                    if not isinstance(chunk, dict):
                        raise TransientError(f"{self.name}: unexpected data in the stream: {data[:80]!r}")
                    if "error" in chunk:
                        raise stream_error(self.name, chunk["error"])
                    choices = chunk.get("choices")
                    if choices is None:
                        choices = ()
                    elif type(choices) is not list:
                        raise self._malformed("choices", choices)
                    for choice in choices:
                        if type(choice) is not dict:
                            raise self._malformed("a choice", choice)
                        delta = choice.get("delta")
                        if type(delta) is not dict:
                            if delta is not None:
                                raise self._malformed("delta", delta)
                            delta = {}
                        content = delta.get("content")
                        if type(content) is str:  # the per-token path: kept lean (B4)
                            if content:
                                if tags is None:
                                    yield TextDelta(content)
                                else:
                                    for split in tags.feed(content):
                                        yield split
                        elif content is not None:
                            if joined := self._content_parts(content):
                                for split in tags.feed(joined) if tags is not None else (TextDelta(joined),):
                                    yield split
                        if len(delta) > 1 or content is None:
                            for other in self._other_fields(delta):
                                yield other
                        if reason := choice.get("finish_reason"):
                            if type(reason) is not str:
                                raise self._malformed("finish_reason", reason)
                            finish = reason
                    usage = chunk.get("usage")
                    if isinstance(usage, dict):
                        details = usage.get("completion_tokens_details")
                        yield Usage(
                            token_count(usage.get("prompt_tokens")),
                            token_count(usage.get("completion_tokens")),
                            token_count(details.get("reasoning_tokens")) if isinstance(details, dict) else None,
                        )
                if done:
                    break
        if tags is not None:
            for split in tags.end():
                yield split
        if finish is None and not done:
            raise TransientError(f"{self.name}: the stream ended before the reply was finished")
        yield Finish(finish or "stop")

    def _content_parts(self, content: Any) -> str:
        """`content` given as a list of parts (some servers do): the text parts, joined."""
        if type(content) is not list:
            raise self._malformed("delta.content", content)
        texts = []
        for part in content:
            if type(part) is dict and part.get("type") in ("text", "output_text"):
                text = part.get("text")
                if type(text) is not str:
                    raise self._malformed("a content part's text", text)
                texts.append(text)
            elif type(part) is str:
                texts.append(part)
            elif type(part) is not dict:
                raise self._malformed("a content part", part)
        return "".join(texts)

    def _other_fields(self, delta: dict[str, Any]) -> list[StreamEvent]:
        """Reasoning and tool-call fragments (rare next to text, so off the hot path)."""
        out: list[StreamEvent] = []
        # llama.cpp, DeepSeek, LM Studio say reasoning_content; vLLM, OpenRouter, Ollama say
        # reasoning. A server sending both means the same text: take one.
        thought = delta.get("reasoning_content")
        if thought is None:
            thought = delta.get("reasoning")
        if thought is not None:
            if type(thought) is not str:
                raise self._malformed("delta.reasoning", thought)
            if thought:
                out.append(ReasoningDelta(thought))
        calls = delta.get("tool_calls")
        if calls is not None:
            if type(calls) is not list:
                raise self._malformed("delta.tool_calls", calls)
            for n, call in enumerate(calls):
                if type(call) is not dict:
                    raise self._malformed("a tool call", call)
                fn = call.get("function") or {}
                if type(fn) is not dict:
                    raise self._malformed("a tool call's function", fn)
                index, name, args = call.get("index", n), fn.get("name"), fn.get("arguments") or ""
                if type(index) is not int or type(args) is not str or not isinstance(name, str | None):
                    raise self._malformed("a tool call", call)
                call_id = call.get("id")
                out.append(ToolCallDelta(index, call_id if type(call_id) is str else None, name, args))
        return out

    async def list_models(self) -> list[str]:
        data = await self._get_json("/models")
        return sorted(str(m.get("id")) for m in data.get("data", []) if isinstance(m, dict) and m.get("id"))

    async def context_window(self, model: str) -> int | None:
        """The window a /models entry states (context_length: OpenRouter, LM Studio;
        max_model_len: vLLM), else llama.cpp's server's /props (n_ctx, what it runs with)."""
        with contextlib.suppress(ProviderError):
            data = await self._get_json("/models")
            entries = data.get("data") if isinstance(data, dict) else None
            for m in entries if isinstance(entries, list) else []:
                if isinstance(m, dict) and m.get("id") == model:
                    for key in ("context_length", "max_model_len", "context_window"):
                        if type(size := m.get(key)) is int and size > 0:
                            return size
        with contextlib.suppress(ProviderError):
            props = await self._get_json("/props", root=self.base_url.removesuffix("/v1"))
            settings = props.get("default_generation_settings") if isinstance(props, dict) else None
            size = settings.get("n_ctx") if isinstance(settings, dict) else None
            if type(size) is int and size > 0:
                return size
        return None
