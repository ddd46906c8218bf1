"""What the OpenAI and Anthropic clients share: one pooled httpx client, the POST that
opens an SSE stream, and the mapping of HTTP and transport failures to typed errors."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from httpx_sse import SSEError, ServerSentEvent, aconnect_sse

from chatplex.providers.base import (
    AuthError,
    BadRequest,
    ProviderError,
    RateLimited,
    TransientError,
    http_error,
    transport_error,
)

log = logging.getLogger("chatplex.provider")


class HttpProvider:
    """Base for SSE-over-HTTP providers. Subclasses build the body and read the events."""

    kind = "http"

    def __init__(self, name: str, base_url: str, *, api_key: str | None = None,
                 missing_key_env: str | None = None, connect_timeout: float = 10.0,
                 read_timeout: float = 120.0, default_max_tokens: int | None = None,
                 params: dict[str, Any] | None = None):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._missing_key_env = missing_key_env
        self.default_max_tokens = default_max_tokens
        self.params = dict(params or {})  # extra JSON body fields from config ([providers.x.params])
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=connect_timeout, read=read_timeout, write=30.0, pool=None),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=32),
            headers={"user-agent": "chatplex"},
        )

    def __repr__(self) -> str:  # never shows the key
        return f"<{type(self).__name__} {self.name} {self.base_url}>"

    def auth_headers(self) -> dict[str, str]:
        raise NotImplementedError

    def _check_key(self) -> None:
        if self._missing_key_env:
            raise AuthError(f"{self.name}: the environment variable {self._missing_key_env} is not set "
                            "(it should hold the API key)")

    async def _sse(self, path: str, body: dict[str, Any]) -> AsyncIterator[ServerSentEvent]:
        """POST `body` and yield its server-sent events; errors arrive typed."""
        self._check_key()
        url = self.base_url + path
        try:
            async with aconnect_sse(self._client, "POST", url, json=body, headers=self.auth_headers()) as source:
                response = source.response
                if response.status_code >= 400:
                    raw = await response.aread()
                    raise http_error(response.status_code, response.headers, raw, self.name)
                async for event in source.aiter_sse():
                    yield event
        except httpx.TransportError as e:
            raise transport_error(e, self.name, url) from e
        except SSEError as e:
            raise BadRequest(f"{self.name}: the server did not answer with a stream ({e})") from e

    async def _get_json(self, path: str) -> Any:
        self._check_key()
        url = self.base_url + path
        try:
            response = await self._client.get(url, headers=self.auth_headers())
        except httpx.TransportError as e:
            raise transport_error(e, self.name, url) from e
        if response.status_code >= 400:
            raise http_error(response.status_code, response.headers, response.content, self.name)
        try:
            return response.json()
        except ValueError as e:
            raise TransientError(f"{self.name}: {url} did not return JSON") from e

    def _json(self, event: ServerSentEvent) -> Any:
        try:
            return json.loads(event.data)
        except ValueError as e:
            raise TransientError(f"{self.name}: malformed data in the stream: {event.data[:80]!r}") from e

    async def aclose(self) -> None:
        await self._client.aclose()


def stream_error(who: str, error: Any) -> ProviderError:
    """An error object sent inside a 200 stream (both APIs have one)."""
    if not isinstance(error, dict):
        return TransientError(f"{who}: error in stream: {str(error)[:200]}")
    kind = str(error.get("type") or error.get("code") or "")
    message = f"{who}: {error.get('message') or kind or 'error in stream'}"
    if kind in ("authentication_error", "permission_error", "invalid_api_key"):
        return AuthError(message)
    if kind in ("invalid_request_error", "not_found_error", "invalid_request"):
        return BadRequest(message)
    if kind in ("rate_limit_error", "rate_limit_exceeded"):
        return RateLimited(message)
    return TransientError(message)
