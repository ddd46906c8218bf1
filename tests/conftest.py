"""Fixtures shared by every test directory. The helpers they are built on (and that tests
import) live in tests/helpers.py."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chatplex.config import Config
from chatplex.core.coordinator import Coordinator
from tests.fakeserver import FakeServer
from tests.helpers import Recorder, TinyServer, make_agent_model, make_tiny_model


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeServer]:
    server = FakeServer()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's real config, data or logs."""
    monkeypatch.setenv("CHATPLEX_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("CHATPLEX_DB", str(tmp_path / "chatplex.db"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
async def coordinators(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Factory: `await coordinators(config, workers=...)` gives a started coordinator and a
    recorder; all are stopped at the end of the test."""
    async with contextlib.AsyncExitStack() as made:

        async def make(config: Config, start: bool = True, **kw: Any) -> tuple[Coordinator, Recorder]:
            kw.setdefault("backoff_base", 0.05)
            coord = await made.enter_async_context(await Coordinator.open(config, **kw))
            rec = Recorder(coord.bus)
            if start:
                await coord.start()
            return coord, rec

        yield make


# ---------------------------------------------------------------------- tiny llama.cpp
@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_server(tiny_model: Path) -> Iterator[TinyServer]:
    server = TinyServer(tiny_model)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def agent_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyServer]:
    """llama.cpp's server with the tiny *agent* model: tools offered and no result yet, it
    thinks " the of" and calls get_current_time({"timezone": "UTC"}); after a tool result
    (or with no tools) it answers "and to in is." (tests/tinyllm/make_tiny_agent.py)."""
    server = TinyServer(make_agent_model(tmp_path_factory.mktemp("agent")))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def think_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyServer]:
    """llama.cpp's server with the think-only model: reasoning " you that", then text " it was for on."."""
    server = TinyServer(make_agent_model(tmp_path_factory.mktemp("agent"), "--think-only"))
    server.start()
    yield server
    server.stop()
