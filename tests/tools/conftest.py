"""The streamable-HTTP MCP peer as a session fixture. The stdio peers' configs, and where
each peer comes from: tests/tools/helpers.py."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.tools.helpers import EVERYTHING


@pytest.fixture(scope="session")
def everything_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """server-everything over streamable HTTP on a free port. Missing, it fails under CI
    (where .ci/run installs it) and skips, saying how to install it, elsewhere."""
    if not EVERYTHING.exists():
        message = "server-everything is not installed: npm ci --prefix tests/mcpservers/npm"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from chatplex.providers.llamacpp import free_port

    port = free_port()
    log = tmp_path_factory.mktemp("everything") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(EVERYTHING), "streamableHttp"], env={**os.environ, "PORT": str(port)}, stdout=out, stderr=out
        )
    deadline = time.monotonic() + 60
    while True:  # ready when it accepts a connection
        assert proc.poll() is None, f"server-everything exited at start: {log.read_text()[-500:]}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "server-everything did not listen within 60 s"
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/mcp"
    proc.terminate()
    proc.wait(10)
