"""A loopback port whose behaviour a test switches, for faults below HTTP:

- "refuse": nothing listens (connection refused);
- "blackhole": a listener whose accept queue is full, so new connections are never
  answered (connect timeout) — the kernel drops the SYNs;
- "forward": a TCP proxy to a real server (the fault has cleared).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket


class Gate:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.mode = "refuse"
        self._held: list[socket.socket] = []
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()  # forwarded connections, cut by close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def blackhole(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(0)
        self._held = [listener]
        for _ in range(3):  # fill the accept queue; later SYNs go unanswered
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", self.port))
            self._held.append(filler)
        self.mode = "blackhole"

    async def forward(self) -> None:
        self._release()

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            self._open |= {writer, up_writer}
            try:
                await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
            finally:
                self._open -= {writer, up_writer}

        self._server = await asyncio.start_server(handle, "127.0.0.1", self.port, reuse_address=True)
        self.mode = "forward"

    def _release(self) -> None:
        for sock in self._held:
            sock.close()
        self._held = []

    async def close(self) -> None:
        """Stop listening and cut the connections open through it (a server going away)."""
        self._release()
        for writer in list(self._open):
            writer.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
