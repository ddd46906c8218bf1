"""One MCP server: configured, started on first use, shared by every session of the process,
restarted with backoff after it dies, stopped on exit. Its stderr goes to its own log file
beside chatplex's, and the tail of it explains a server that would not start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, TextIO

import mcp
import mcp.types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
from mcp.shared.exceptions import MCPError

from chatplex.redact import redact
from chatplex.tools.results import ToolOutcome, outcome_of
from chatplex.tools.spec import McpServerConfig, ServerState, ToolServerError, ToolSpec

log = logging.getLogger("chatplex.tools")
START_TIMEOUT = 30.0  # seconds from spawn to a listed set of tools
BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)  # before restart n after consecutive failures
MAX_EVENT = 64 * 1024 * 1024  # a streamable-HTTP event may carry a big result


class ToolServer:
    def __init__(self, config: McpServerConfig, log_dir: Path | None = None) -> None:
        self.config = config
        self.name = config.name
        self.state = ServerState.STOPPED
        self.last_error = ""
        self.tools: list[ToolSpec] = []
        self.log_path = (log_dir / f"mcp-{config.name}.log") if log_dir else None
        self._client: mcp.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()  # one start at a time
        self._failures = 0  # consecutive: the backoff before the next start
        self._retry_at = 0.0
        self._calls = asyncio.Semaphore(max(1, config.max_parallel))
        self._errlog: TextIO | None = None
        self._copier: threading.Thread | None = None  # copies the server's stderr to its log

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> list[ToolSpec]:
        """Start the server if it is not running (callers at once share one start) and return
        its tools. Raises ToolServerError with the reason and the tail of its stderr."""
        async with self._lock:
            if self.state is ServerState.READY and self._client is not None:
                return self.tools
            if self.state is ServerState.FAILED and time.monotonic() < self._retry_at:
                wait = self._retry_at - time.monotonic()
                raise ToolServerError(f"{self.last_error} (trying again in {wait:.0f} s)")
            await self._end()
            self.state = ServerState.STARTING
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._stop = asyncio.Event()
            self._task = asyncio.create_task(self._run(ready), name=f"mcp-{self.name}")
            try:
                await asyncio.wait_for(asyncio.shield(ready), START_TIMEOUT)
            except TimeoutError:
                await self._end()
                self._failed(f"{self.name}: the MCP server did not answer within {START_TIMEOUT:.0f} s")
            except ToolServerError as e:
                await self._end()
                self._failed(str(e))
            self.state = ServerState.READY
            self._failures = 0
            log.info("MCP server %s ready with %d tools", self.name, len(self.tools))
            return self.tools

    def _failed(self, reason: str) -> None:
        tail = self.stderr_tail()
        self.last_error = reason + (f" — its stderr: {tail}" if tail else "")
        self.state = ServerState.FAILED
        self._retry_at = time.monotonic() + BACKOFF[min(self._failures, len(BACKOFF) - 1)]
        self._failures += 1
        log.warning("%s", self.last_error)
        raise ToolServerError(self.last_error)

    async def _run(self, ready: asyncio.Future[None]) -> None:
        """The connection's own task: the SDK's contexts must be entered and left by one task."""
        try:
            async with mcp.Client(self._transport()) as client:
                tools: list[ToolSpec] = []
                cursor: str | None = None
                while True:
                    listed = await client.list_tools(cursor=cursor) if cursor else await client.list_tools()
                    tools += [
                        ToolSpec(self.name, t.name, t.description or "", dict(t.input_schema or {}))
                        for t in listed.tools
                    ]
                    cursor = listed.next_cursor
                    if not cursor:
                        break
                self.tools, self._client = tools, client
                if not ready.done():
                    ready.set_result(None)
                await self._stop.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # the SDK raises exception groups from its task groups
            reason = str(e) if isinstance(e, ToolServerError) else f"{self.name}: {_describe(e)}"
            if not ready.done():
                ready.set_exception(ToolServerError(reason))
            elif not self._stop.is_set():
                log.warning("MCP server %s stopped: %s", self.name, reason)
        finally:
            self._client = None
            if self._errlog is not None:
                self._errlog.close()
                self._errlog = None

    def _transport(self) -> Any:
        c = self.config
        if c.url:
            http = create_mcp_http_client(headers=c.resolve(c.headers) or None)
            return streamable_http_client(c.url, http_client=http, max_sse_event_size=MAX_EVENT)
        params = mcp.StdioServerParameters(
            command=c.command, args=list(c.args), env=c.resolve(c.env) or None, cwd=c.cwd or None
        )
        self._errlog = self._stderr_pipe()
        return stdio_client(params, errlog=self._errlog)

    def _stderr_pipe(self) -> TextIO:
        """The server's stderr: a pipe whose lines a thread copies to mcp-NAME.log with the
        secrets its env was given masked (a server may print its own token when it fails)."""
        read_fd, write_fd = os.pipe()
        secrets = self.config.secrets()
        path = self.log_path

        def copy() -> None:
            with open(read_fd, encoding="utf-8", errors="replace") as lines:
                out = None
                if path is not None:
                    try:  # the log directory may not exist yet (chatplex's own log made elsewhere)
                        path.parent.mkdir(parents=True, exist_ok=True)
                        out = open(path, "a", encoding="utf-8")  # noqa: SIM115
                    except OSError as e:
                        log.warning("cannot write %s: %s", path, e)  # the pipe is still drained
                try:
                    for line in lines:
                        if out is not None:
                            out.write(redact(line, secrets))
                            out.flush()
                finally:
                    if out is not None:
                        out.close()

        self._copier = threading.Thread(target=copy, name=f"mcp-{self.name}-stderr", daemon=True)
        self._copier.start()
        return open(write_fd, "w", encoding="utf-8")  # noqa: SIM115 - closed when the connection ends

    async def _end(self) -> None:
        """Stop the connection task, if any, and wait for it (the server process goes with it)."""
        task, self._task = self._task, None
        self._client = None
        if task is None:
            return
        self._stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), 10)
        except (TimeoutError, Exception):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        copier, self._copier = self._copier, None
        if copier is not None:  # its last lines reach the log before anyone reads the tail
            await asyncio.to_thread(copier.join, 2.0)

    async def aclose(self) -> None:
        async with self._lock:
            await self._end()
            self.state = ServerState.STOPPED

    def stderr_tail(self, lines: int = 5, limit: int = 400) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            text = f.read().decode("utf-8", "replace")
        tail = " | ".join(line.strip() for line in text.strip().splitlines()[-lines:] if line.strip())
        return tail[-limit:]

    # ------------------------------------------------------------------ calls
    async def call(self, tool: str, arguments: dict[str, Any], timeout: float | None = None) -> ToolOutcome:
        """Run one call. Whatever goes wrong comes back as an error result for the model
        (a timeout, a server that dies mid-call, a malformed answer), never as an exception:
        the turn goes on. A server that died is marked failed and restarts on its next use."""
        limit = timeout or self.config.timeout
        try:
            await self.start()
        except ToolServerError as e:
            return ToolOutcome.error(str(e))
        async with self._calls:
            client = self._client
            if client is None:
                return ToolOutcome.error(f"{self.name}: the MCP server is not running")
            try:
                async with asyncio.timeout(limit):
                    result = await client.call_tool(tool, arguments, read_timeout_seconds=limit)
            except TimeoutError:
                return self._timed_out(tool, limit)
            except MCPError as e:
                if e.error.code == mcp.types.REQUEST_TIMEOUT:
                    return self._timed_out(tool, limit)
                if e.error.code == mcp.types.CONNECTION_CLOSED:
                    return await self._died(tool)
                return ToolOutcome.error(f"{self.name}: {e.error.message}")
            except Exception as e:  # a result the SDK could not read, a broken pipe, …
                if self._task is None or self._task.done() or _is_closed(e):
                    return await self._died(tool)
                return ToolOutcome.error(f"{self.name}: the server's answer could not be read: {_describe(e)}")
        try:
            return outcome_of(result)
        except Exception as e:  # content the SDK let through but we cannot describe
            return ToolOutcome.error(f"{self.name}: the server's answer could not be read: {_describe(e)}")

    def _timed_out(self, tool: str, limit: float) -> ToolOutcome:
        return ToolOutcome.error(f"{self.name}: {tool} took longer than {limit:g} s (the call was abandoned)")

    async def _died(self, tool: str) -> ToolOutcome:
        async with self._lock:
            await self._end()
            with contextlib.suppress(ToolServerError):
                self._failed(f"{self.name}: the MCP server stopped during a call of {tool} (its outcome is unknown)")
        return ToolOutcome.error(self.last_error)


def _is_closed(e: BaseException) -> bool:
    import anyio

    return isinstance(e, anyio.ClosedResourceError | anyio.BrokenResourceError | BrokenPipeError | ConnectionError)


def _describe(e: BaseException) -> str:
    """One line for an exception, looking inside the SDK's exception groups."""
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    if isinstance(e, FileNotFoundError):
        return f"cannot start the MCP server: {e.filename or e} was not found"
    if isinstance(e, MCPError) and e.error.code == mcp.types.CONNECTION_CLOSED:
        return "the MCP server closed the connection (it exited?)"
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
