"""OpenAI-compatible Chat Completions streaming (OpenAI, Ollama /v1, vLLM, llama.cpp,
LM Studio, OpenRouter)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from chatplex.providers.base import ChatRequest, Finish, StreamEvent, TextDelta, TransientError, Usage
from chatplex.providers.http import HttpProvider, stream_error


class OpenAIProvider(HttpProvider):
    kind = "openai"

    def auth_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def body(self, request: ChatRequest) -> dict[str, Any]:
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [{"role": m.role, "content": m.content} for m in request.messages]
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
        body.update(self.params)
        body.update(request.extra)
        return body

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        finish: str | None = None
        done = False
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
                    for choice in chunk.get("choices") or ():
                        delta = choice.get("delta") or {}
                        if content := delta.get("content"):
                            yield TextDelta(content)
                        if choice.get("finish_reason"):
                            finish = choice["finish_reason"]
                    usage = chunk.get("usage")
                    if isinstance(usage, dict):
                        yield Usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
                if done:
                    break
        if finish is None and not done:
            raise TransientError(f"{self.name}: the stream ended before the reply was finished")
        yield Finish(finish or "stop")

    async def list_models(self) -> list[str]:
        data = await self._get_json("/models")
        return sorted(str(m.get("id")) for m in data.get("data", []) if isinstance(m, dict) and m.get("id"))
