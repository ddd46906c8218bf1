"""Helpers shared by tests of every layer: configs pointed at the fake server, a recorder of
bus events, llama.cpp's real server as a child, the environment for a chatplex child. Plain
functions and classes, imported by the tests that use them; the fixtures built on them live
in tests/conftest.py."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chatplex.config import Config, ProviderConfig
from chatplex.core.events import Event, EventBus
from tests.fakeserver import Scenario

HERE = Path(__file__).parent


def provider_for(s: Scenario, name: str = "fake", kind: str = "openai", **kw: Any) -> ProviderConfig:
    return ProviderConfig(
        name=name,
        kind=kind,
        base_url=s.url,
        model=kw.pop("model", "fake-small"),
        api_key_env=kw.pop("api_key_env", None),
        **kw,
    )


def make_config(tmp_path: Path, *providers: ProviderConfig, workers: int = 4, max_attempts: int = 5) -> Config:
    return Config(
        path=None,
        db_path=tmp_path / "chatplex.db",
        log_dir=tmp_path / "logs",
        providers={p.name: p for p in providers},
        default_provider=providers[0].name,
        workers=workers,
        max_attempts=max_attempts,
    )


class Recorder:
    """Collects bus events; `wait` returns once a predicate holds for some event."""

    def __init__(self, bus: EventBus):
        self.events: list[Event] = []
        self.times: list[float] = []  # time.monotonic() when each event arrived
        self._waiters: list[tuple[Callable[[Event], bool], asyncio.Future[Event]]] = []
        bus.subscribe(self._on)

    def _on(self, event: Event) -> None:
        self.events.append(event)
        self.times.append(time.monotonic())
        for pred, fut in list(self._waiters):
            if not fut.done() and pred(event):
                fut.set_result(event)

    async def wait(
        self, pred: Callable[[Event], bool], timeout: float = 60.0, past: bool = True, after: Event | None = None
    ) -> Event:
        """The first event matching `pred` (only those later than `after`, if given; only
        new ones if not `past`)."""
        if past:
            start = 0 if after is None else next(i for i, e in enumerate(self.events) if e is after) + 1
            for event in self.events[start:]:
                if pred(event):
                    return event
        fut: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._waiters.append((pred, fut))
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._waiters.remove((pred, fut))

    def time_of(self, event: Event) -> float:
        return self.times[next(i for i, e in enumerate(self.events) if e is event)]

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


class TinyServer:
    """llama.cpp's real server with the tiny model, as a child process."""

    REPLY = " the of and to in is."

    def __init__(self, model: Path, api_key: str | None = None):
        self.model = model
        self.api_key = api_key
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self, port: int = 0) -> None:
        from chatplex.providers.llamacpp import free_port

        self.port = port or self.port or free_port()
        args = [sys.executable, str(HERE / "tinyllm" / "serve.py"), str(self.model), str(self.port)]
        if self.api_key:
            args.append(self.api_key)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith(b"listening"), line

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def make_tiny_model(directory: Path) -> Path:
    """The tiny GGUF model (tests/tinyllm/make_tiny_gguf.py), written into `directory`."""
    path = directory / "tiny.gguf"
    subprocess.run([sys.executable, str(HERE / "tinyllm" / "make_tiny_gguf.py"), str(path)], check=True)
    return path


def make_agent_model(directory: Path, *flags: str, call: tuple[str, str] | None = None) -> Path:
    """The tiny agent model (tests/tinyllm/make_tiny_agent.py), written into `directory`;
    `call`: the tool and arguments it calls (default get_current_time({"timezone": "UTC"}))."""
    path = directory / "agent.gguf"
    args = [sys.executable, str(HERE / "tinyllm" / "make_tiny_agent.py"), *flags, str(path), *(call or ())]
    subprocess.run(args, check=True)
    return path


def env_with_src() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), str(HERE.parent / "src"), env.get("PYTHONPATH", "")])
    return env
