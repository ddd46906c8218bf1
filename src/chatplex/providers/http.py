"""What the OpenAI and Anthropic clients share: one pooled httpx client, the POST that
opens an SSE stream, and the mapping of HTTP and transport failures to typed errors."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from chatplex.providers.base import (
    AuthError,
    BadRequest,
    ProviderError,
    RateLimited,
    TransientError,
    http_error,
    transport_error,
)
from chatplex.providers.sse import SSEDecoder, SSEEvent
from chatplex.redact import redact

log = logging.getLogger("chatplex.provider")
_raw_decode = json.JSONDecoder().raw_decode


class NotAnswering(ProviderError):
    """The server refused the connection and has never answered this process: not retried
    (five attempts with backoff kept a newcomer staring at an empty reply for ~15 s)."""


class HttpProvider:
    """Base for SSE-over-HTTP providers. Subclasses build the body and read the events."""

    kind = "http"
    api = "API"

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        api_key: str | None = None,
        missing_key_env: str | None = None,
        key_error: str | None = None,
        key_env: str | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 120.0,
        default_max_tokens: int | None = None,
        params: dict[str, Any] | None = None,
    ):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        if missing_key_env and not key_error:
            key_error = f"{name}: the environment variable {missing_key_env} is not set (it should hold the API key)"
        self._key_error = key_error  # raised as an AuthError on first use: nothing is sent
        self.key_env = key_env or missing_key_env  # named by a 401/403 (never the key itself)
        # Whether the server ever answered this process. A refused connection before it has
        # is a server that is not running (or a wrong URL): retrying for a minute helps
        # nobody. After it has, it is a restart, which retries ride out.
        self._answered = False
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
        if self._key_error:
            raise AuthError(self._key_error)

    def _scrubbed(self, error: BaseException) -> ProviderError:
        """`error` as a ProviderError whose text cannot carry the key: httpx quotes a bad
        header whole (``b'Bearer sk-..'``), a UnicodeEncodeError's repr holds the header,
        and a server may echo the key in its error body."""
        secrets = [self._api_key] if self._api_key else []
        if not isinstance(error, ProviderError):  # a bug, or a header httpx cannot encode
            trace = redact("".join(traceback.format_exception(error)), secrets).rstrip()
            log.error("%s: unexpected error in a request\n%s", self.name, trace)
            error = ProviderError(f"{self.name}: {type(error).__name__}: {error}")
        if secrets:
            text = redact(str(error), secrets)
            if text != str(error):
                error.args = (text,)
        return error

    @asynccontextmanager
    async def _sse(self, path: str, body: dict[str, Any]) -> AsyncIterator[tuple[AsyncIterator[str], Decode]]:
        """POST `body` and open its event stream, as ``(reads, decode)``: iterate `reads`
        (the response's text as it arrives) and `decode(text)` gives the server-sent events
        it completed. Errors, also those raised while reading, arrive typed.

        Why not ``EventSource.aiter_sse()``: its events pass through three stacked async
        generators, which at 50 streams cost more than the rest of chatplex's per-token work
        (B4). The provider's own loop feeds our decoder instead (providers/sse.py)."""
        self._check_key()
        url = self.base_url + path
        try:
            async with aconnect_sse(self._client, "POST", url, json=body, headers=self.auth_headers()) as source:
                response = source.response
                self._answered = True
                if response.status_code >= 400:
                    raw = await response.aread()
                    raise http_error(response.status_code, response.headers, raw, self.name, self.key_env)
                kind = response.headers.get("content-type", "").partition(";")[0]
                if "text/event-stream" not in kind:
                    raise BadRequest(
                        f"{self.name}: the server did not answer with a stream (content-type {kind or 'missing'!r})"
                    )
                yield response.aiter_text(), SSEDecoder().decode
        # `from None` everywhere: a chained cause would print the unscrubbed text in a traceback
        except httpx.TransportError as e:
            raise self._scrubbed(self._transport_error(e, url)) from None
        except Exception as e:  # noqa: BLE001 - also what the caller's loop raised in the stream
            raise self._scrubbed(e) from None

    async def _get_json(self, path: str, root: str | None = None) -> Any:
        """GET base_url + `path` (or `root` + `path`) as JSON; errors typed and scrubbed."""
        self._check_key()
        url = (self.base_url if root is None else root) + path
        try:
            try:
                response = await self._client.get(url, headers=self.auth_headers())
            except httpx.TransportError as e:
                raise self._transport_error(e, url) from None
            self._answered = True
            if response.status_code >= 400:
                raise http_error(response.status_code, response.headers, response.content, self.name, self.key_env)
            try:
                return response.json()
            except ValueError:
                raise TransientError(f"{self.name}: {url} did not return JSON") from None
        except Exception as e:  # noqa: BLE001 - every error leaves scrubbed and typed
            raise self._scrubbed(e) from None

    def _transport_error(self, exc: httpx.TransportError, url: str) -> ProviderError:
        """`transport_error`, except that a connection that fails before the server ever
        answered this process is not retried (see `_answered`)."""
        if isinstance(exc, httpx.ConnectError) and not self._answered:
            return NotAnswering(
                f"{self.name}: cannot connect to {url} (is the server running? "
                "it has not answered since chatplex started)"
            )
        return transport_error(exc, self.name, url)

    def _json(self, event: SSEEvent) -> Any:
        data = event.data
        try:  # json.loads minus its two whitespace scans (~40 % of its time; once per token)
            value, end = _raw_decode(data)
            if end == len(data):
                return value
        except ValueError:
            pass
        try:  # surrounding whitespace, or an error to report
            return json.loads(data)
        except ValueError as e:
            raise TransientError(f"{self.name}: malformed data in the stream: {event.data[:80]!r}") from e

    def _malformed(self, what: str, value: object) -> TransientError:
        """A field of a stream event of the wrong type: this attempt fails (and is retried)."""
        return TransientError(
            f"{self.name}: malformed stream: {what} is {type(value).__name__}, "
            f"not what the {self.api} sends ({str(value)[:60]!r})"
        )

    async def aclose(self) -> None:
        await self._client.aclose()


Decode = Callable[[str], list[SSEEvent]]


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
