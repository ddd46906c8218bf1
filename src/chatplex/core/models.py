"""Plain dataclasses and enums shared by every layer. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

# moved to core.text (one preview function); this name stays while code written against it
# on other branches merges. New code imports it from chatplex.core.text.
from chatplex.core.text import preview_of as preview_of
from chatplex.providers.base import ChatPart, ReasoningPart, TextPart, ToolCallPart


class Role(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"  # tool results of an agent turn


class MessageState(StrEnum):
    COMPLETE = "complete"
    STREAMING = "streaming"
    INTERRUPTED = "interrupted"
    ERROR = "error"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    HELD = "held"  # a tool call waiting for the user's yes or no: it holds no worker
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class JobKind(StrEnum):
    """An agent turn is a chain of steps, each a job: a model step streams one reply; a tool
    step runs one of its tool calls; when a round's calls are all settled, the next model
    step follows."""

    REPLY = "reply"
    TOOL = "tool"


class Priority(IntEnum):
    """Lower sorts first in the claim query, so HIGH is 0."""

    HIGH = 0
    LOW = 1


class SessionStatus(StrEnum):
    IDLE = "idle"
    QUEUED = "queued"
    STREAMING = "streaming"
    THINKING = "thinking"  # streaming, and the model is reasoning (no answer text yet)
    WAITING = "waiting"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    RUNNING_TOOL = "running_tool"  # a tool call of an agent turn runs
    NEEDS_APPROVAL = "needs_approval"  # a tool call waits for the user: the loudest mark


@dataclass(slots=True)
class Session:
    id: int
    title: str
    provider: str
    model: str
    system_prompt: str = ""
    status: SessionStatus = SessionStatus.IDLE
    unread: int = 0
    preview: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    allowed_tools: tuple[str, ...] = ()  # tools the user approved "always" in this session
    servers: tuple[str, ...] | None = None  # the MCP servers it uses; None: config.toml's default
    forked_from: int | None = None  # a fork: the session it was copied from…
    forked_at: int | None = None  # …and the message of that session it was copied up to
    pinned: bool = False  # kept at the top of the sidebar
    archived: bool = False  # put away: not in the sidebar, still searchable; a new message restores it
    # its own request settings, over the provider's: temperature, max_tokens, reasoning_effort
    settings: Mapping[str, Any] = field(default_factory=dict)  # replaced whole, never changed in place
    context_from: int | None = None  # the first message its requests send (older turns dropped); None: all


@dataclass(slots=True)
class Message:
    id: int
    session_id: int
    role: Role
    content: str
    state: MessageState = MessageState.COMPLETE
    error: str | None = None
    job_id: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    model: str | None = None  # the model that wrote it (assistant messages)
    reasoning_tokens: int | None = None  # of completion_tokens, those spent thinking
    seconds: float | None = None  # its last run streamed this long, first token to end (speed)
    # the message as the model made it, in order; `content` is their text alone
    parts: list[ChatPart] = field(default_factory=list)

    def all_parts(self) -> list[ChatPart]:
        """The parts, or for a message read without them, its text as one part."""
        return self.parts or ([TextPart(self.content)] if self.content else [])

    @property
    def reasoning(self) -> str:
        return "".join(p.text for p in self.parts if type(p) is ReasoningPart)

    @property
    def tool_calls(self) -> list[ToolCallPart]:
        return [p for p in self.parts if type(p) is ToolCallPart]


@dataclass(slots=True)
class Job:
    id: int
    session_id: int
    message_id: int
    priority: Priority
    state: JobState
    attempts: int = 0
    max_attempts: int = 5
    run_after: float = 0.0
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    last_error: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    crashes: int = 0  # recent runs cut by a process that died with nothing progressing (see recover)
    resumed_from: int = 0  # characters of partial text the current run started from
    kind: str = "reply"  # JobKind: a model step streaming a reply, or one tool call
    call_id: str | None = None  # a tool step: the call it runs (a tool_call part of `parent`)
    parent: int | None = None  # a tool step: the assistant message that asked for the call
    approved: bool = False  # a tool step the user said yes to (it may run though its policy asks)

    @property
    def is_tool(self) -> bool:
        return self.kind == JobKind.TOOL


@dataclass(slots=True)
class QueueStats:
    """Counts of jobs by state and priority, and how long the oldest runnable job has waited."""

    counts: dict[tuple[JobState, Priority], int] = field(default_factory=dict)
    oldest_wait: float | None = None

    def count(self, state: JobState, priority: Priority | None = None) -> int:
        return sum(n for (s, p), n in self.counts.items() if s == state and (priority is None or p == priority))

    @property
    def queued_high(self) -> int:
        return self.count(JobState.QUEUED, Priority.HIGH)

    @property
    def queued_low(self) -> int:
        return self.count(JobState.QUEUED, Priority.LOW)

    @property
    def running(self) -> int:
        return self.count(JobState.RUNNING)
