"""The `cli` fixture: chatplex as a child process (tests/cli/helpers.py) against the test's
own database and config, its children killed at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import Cli
from tests.fakeserver import FakeServer


@pytest.fixture
def cli(tmp_path: Path, fake: FakeServer) -> Iterator[Cli]:
    c = Cli(tmp_path, fake)
    c.provider(reply="Hello from the test server.")
    yield c
    c.close()
