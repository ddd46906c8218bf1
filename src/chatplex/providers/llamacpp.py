"""Offline chat with a local GGUF file: start llama.cpp's own server (the optional
`xllamacpp` wheel) on a free loopback port in a child process, talk to it with the
OpenAI-compatible client, stop it on close.

A child process rather than an in-process server: xllamacpp's server has no stop call,
and a crash in native code must not take the TUI with it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from chatplex.providers.base import BadRequest, ChatRequest, StreamEvent, TransientError
from chatplex.providers.openai import OpenAIProvider

log = logging.getLogger("chatplex.provider")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaCppProvider:
    kind = "llamacpp"

    def __init__(
        self,
        name: str,
        model_path: str,
        *,
        context: int = 4096,
        parallel: int = 2,
        threads: int | None = None,
        read_timeout: float = 120.0,
        default_max_tokens: int | None = None,
        params: dict[str, object] | None = None,
        options: dict[str, Any] | None = None,
    ):
        self.name = name
        self.model_path = Path(model_path).expanduser()
        self.context = context
        self.parallel = parallel
        self.threads = threads or max(1, (os.cpu_count() or 2) // 2)
        self.read_timeout = read_timeout
        self.default_max_tokens = default_max_tokens
        self.params = dict(params or {})
        self.options = dict(options or {})  # OpenAIProvider's reasoning options (think_tags, …)
        self._proc: asyncio.subprocess.Process | None = None
        self._client: OpenAIProvider | None = None
        self._lock = asyncio.Lock()

    async def _ensure(self) -> OpenAIProvider:
        async with self._lock:
            if self._client and self._proc and self._proc.returncode is None:
                return self._client
            if importlib.util.find_spec("xllamacpp") is None:
                raise BadRequest(
                    f"{self.name}: running GGUF files needs the local extra: pip install 'chatplex[local]'"
                )
            if not self.model_path.is_file():
                raise BadRequest(f"{self.name}: model file {self.model_path} does not exist")
            await self._stop()
            port = free_port()
            log.info("starting llama.cpp server for %s on port %d", self.model_path, port)
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "chatplex.providers.llamacpp",
                str(self.model_path),
                str(port),
                str(self.context),
                str(self.parallel),
                str(self.threads),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            base = f"http://127.0.0.1:{port}"
            await self._wait_ready(base)
            self._client = OpenAIProvider(
                self.name,
                base + "/v1",
                read_timeout=self.read_timeout,
                default_max_tokens=self.default_max_tokens,
                params=self.params,
                **self.options,
            )
            return self._client

    async def _wait_ready(self, base: str, timeout: float = 120.0) -> None:
        """The child prints one line once llama.cpp has loaded the model and listens."""
        assert self._proc and self._proc.stdout
        try:
            line = await asyncio.wait_for(self._proc.stdout.readline(), timeout)
        except TimeoutError:
            raise TransientError(f"{self.name}: llama.cpp server did not start within {timeout:.0f}s") from None
        if not line.startswith(b"ready"):
            code = await self._proc.wait()
            raise BadRequest(f"{self.name}: llama.cpp could not load {self.model_path} (exit code {code})")

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        client = await self._ensure()
        async for event in client.stream(request):
            yield event

    async def list_models(self) -> list[str]:
        return [self.model_path.stem]

    async def context_window(self, model: str) -> int | None:
        return self.context  # the n_ctx its server was started with

    async def _stop(self) -> None:
        if self._client:
            await self._client.aclose()
            self._client = None
        if self._proc and self._proc.returncode is None:
            self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), 5)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        self._proc = None

    async def aclose(self) -> None:
        await self._stop()


def _serve(model: str, port: int, context: int, parallel: int, threads: int) -> None:
    """Child-process entry: run llama.cpp's server until SIGTERM or the parent dies."""
    import signal
    import threading

    import xllamacpp as xlc  # type: ignore[import-untyped]

    params = xlc.CommonParams()
    params.model.path = model
    params.model_alias = {Path(model).stem}
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = context
    params.n_parallel = parallel
    params.use_jinja = True  # the model's own chat template: llama.cpp then parses reasoning and tool calls
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
    server = xlc.Server(params)  # noqa: F841 - keeps serving while referenced
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    parent = os.getppid()
    while not stop.wait(1.0):
        if os.getppid() != parent:  # orphaned: chatplex was killed
            break


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
