"""The provider protocol: one streaming call, typed stream events, typed errors.

Providers never touch the store or the UI; the coordinator turns their events into
messages and their errors into retry decisions.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

import httpx


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningPart:
    """The model's thinking, with what the provider needs to take it back: Anthropic's
    `signature`, or a `redacted_thinking` block's opaque `redacted` data (then text is "")."""

    text: str
    signature: str = ""
    redacted: str = ""
    # how long the model thought, measured while it streamed (None: not known): shown on the
    # folded line when the reply is read back ("thought for 38s"); not part of equality
    seconds: float | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ToolCallPart:
    id: str
    name: str
    arguments: str  # the JSON text exactly as streamed (it may not even be valid JSON)


@dataclass(frozen=True, slots=True)
class ToolResultPart:
    call_id: str
    content: str
    is_error: bool = False


ChatPart = TextPart | ReasoningPart | ToolCallPart | ToolResultPart


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One turn of the history. `content` alone is a plain text turn; `parts`, when given,
    are the turn (reasoning, text, tool calls; or, for role "tool", tool results) and
    `content` is only their text. `model` is the one that wrote an assistant turn: thinking
    signatures are only valid for it."""

    role: str  # "user" | "assistant" | "tool"
    content: str
    parts: tuple[ChatPart, ...] = ()
    model: str = ""

    def all_parts(self) -> tuple[ChatPart, ...]:
        return self.parts or ((TextPart(self.content),) if self.content else ())


@dataclass(frozen=True, slots=True)
class ToolDef:
    """A tool the model may call: its name as the model sees it, what it does, and the JSON
    schema of its arguments (an MCP tool's inputSchema). Each API gets it in its own shape."""

    name: str
    description: str = ""
    parameters: dict[str, object] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: list[ChatMessage]
    system: str = ""
    max_tokens: int | None = None
    temperature: float | None = None
    extra: dict[str, object] = field(default_factory=dict)  # passed through in the JSON body
    prefill: str = ""  # a partial reply to continue: sent as the final assistant turn
    reasoning_effort: str = ""  # "", "low", "medium", "high": the session's setting
    tools: tuple[ToolDef, ...] = ()  # offered to the model (none: a plain chat)


@dataclass(slots=True)  # not frozen: made once per token, and frozen costs twice as much
class TextDelta:
    text: str


@dataclass(slots=True)
class ReasoningDelta:
    """A piece of the model's thinking (`reasoning_content`, `reasoning`, Anthropic
    `thinking`), or of what replays it: a `signature` piece, or a whole redacted block's
    `redacted` data. `block` is Anthropic's content block index (None on other APIs): a
    signature may come after the next block has begun, so pieces are matched by it."""

    text: str
    signature: str = ""
    redacted: str = ""
    block: int | None = None


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call: `index` says which call; id and name come first, then the
    arguments' JSON text in pieces. chatplex cannot run tools yet; a reply made only of
    tool calls fails with a plain reason instead of passing for an empty success."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int | None
    completion_tokens: int | None
    reasoning_tokens: int | None = None  # part of completion_tokens, where the API says so


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str  # "stop", "length", "end_turn", "max_tokens", …


def token_count(value: object) -> int | None:
    """A usage figure from the wire, if it is one (servers have sent strings and floats)."""
    return value if type(value) is int and value >= 0 else None


StreamEvent = TextDelta | ReasoningDelta | ToolCallDelta | Usage | Finish


class ProviderError(Exception):
    """Base of provider failures; `str()` is a one-line reason fit for the user."""

    retryable = False


class AuthError(ProviderError):
    """401/403 or a missing key: retrying cannot help, the user must fix the key."""


class BadRequest(ProviderError):
    """400/404/422: the server rejected the request (unknown model, context too long, …)."""


class TransientError(ProviderError):
    """5xx, timeouts, resets, broken streams: worth retrying with backoff."""

    retryable = True


class RateLimited(TransientError):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Provider(Protocol):
    name: str

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]: ...

    async def list_models(self) -> list[str]: ...

    async def context_window(self, model: str) -> int | None:
        """The model's context window in tokens, where the server says it; None otherwise."""
        ...

    async def aclose(self) -> None: ...


def retry_after_seconds(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Retry-After as seconds or an HTTP date, or OpenAI's retry-after-ms; None if absent."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (now if now is not None else time.time()), 0.0)


def error_text(body: bytes, fallback: str) -> str:
    """The server's own message from an OpenAI- or Anthropic-shaped JSON error body."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        text = body.decode("utf-8", "replace").strip()
        return " ".join(text.split())[:300] or fallback
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or err.get("type")
            if msg:
                return str(msg)[:300]
        elif isinstance(err, str):
            return err[:300]
        if "detail" in data:
            return str(data["detail"])[:300]
    return fallback


def http_error(status: int, headers: httpx.Headers, body: bytes, who: str, key_env: str | None = None) -> ProviderError:
    """Map an HTTP error response to the typed error the coordinator acts on. A 401/403
    names where the key comes from (`key_env`, the variable the config names), or, with no
    key configured, where to name one: "check the API key" alone leaves a newcomer stuck."""
    reason = error_text(body, httpx.codes.get_reason_phrase(status) or "error")
    message = f"{who}: HTTP {status}: {reason}"
    if status in (401, 403):
        if key_env:
            return AuthError(f"{message} (check the API key in the environment variable {key_env})")
        return AuthError(
            f"{message} (the server wants an API key: set api_key_env in [providers.{who}] of config.toml)"
        )
    if status == 429:
        return RateLimited(message, retry_after_seconds(headers))
    if status in (408, 409) or status >= 500:
        return TransientError(message)
    return BadRequest(message)


def transport_error(exc: httpx.TransportError, who: str, url: str) -> ProviderError:
    """A one-line reason for a network failure. One the request itself caused (a header
    httpx refuses to send, a scheme it cannot speak) fails at once: a retry sends it again."""
    if isinstance(exc, httpx.LocalProtocolError):
        return BadRequest(f"{who}: the request could not be sent: {exc}")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return BadRequest(f"{who}: cannot reach {url}: {exc}")
    if isinstance(exc, httpx.ConnectError):
        return TransientError(f"{who}: cannot connect to {url} (is the server running?)")
    if isinstance(exc, httpx.ConnectTimeout):
        return TransientError(f"{who}: timed out connecting to {url}")
    if isinstance(exc, httpx.ReadTimeout):
        return TransientError(f"{who}: no data from the server for too long (read timeout)")
    if isinstance(exc, httpx.RemoteProtocolError):
        return TransientError(f"{who}: the connection broke mid-reply ({exc})")
    return TransientError(f"{who}: network error: {exc.__class__.__name__}: {exc}")
