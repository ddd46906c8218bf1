"""A real MCP server (the SDK's own server side, over stdio) whose tools misbehave on
request, for the faults the public servers cannot be made to show: dying mid-call, hanging,
a malformed answer on the wire, a huge result, an image.

    python tests/mcpservers/faulty.py [--name NAME]
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import sys
import zlib

from mcp.server import MCPServer
from mcp.server.mcpserver import Context, Image

NAME = sys.argv[sys.argv.index("--name") + 1] if "--name" in sys.argv else "faulty"
server = MCPServer(NAME)
WIRE = os.dup(1)  # the protocol's stdout as it is now (the SDK points fd 1 at stderr once it runs)
print(f"{NAME}: starting (pid {os.getpid()})", file=sys.stderr, flush=True)


def tiny_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@server.tool()
def echo(text: str) -> str:
    """Say `text` back."""
    return text


@server.tool()
def crash() -> str:
    """Exit the server process in the middle of the call."""
    print(f"{NAME}: crashing on purpose", file=sys.stderr, flush=True)
    os._exit(3)


@server.tool()
async def hang(seconds: float) -> str:
    """Take `seconds` to answer."""
    await asyncio.sleep(seconds)
    return "woke up"


@server.tool()
def big(kilobytes: int) -> str:
    """A result of `kilobytes` KB of text."""
    return ("0123456789abcdef" * 64)[:1024] * kilobytes


@server.tool()
def picture() -> Image:
    """A 2×3 PNG."""
    return Image(data=tiny_png(2, 3), format="png")


@server.tool()
def env(name: str) -> str:
    """The value of environment variable `name` in the server's process."""
    return os.environ.get(name, "<unset>")


@server.tool()
async def malformed(ctx: Context) -> str:
    """Answer with a result whose content breaks the protocol (a text block without text),
    written straight to stdout ahead of the SDK's own answer."""
    rid = ctx.request_id
    rid = int(rid) if isinstance(rid, str) and rid.isdigit() else rid  # the id as the client sent it
    bad = {"jsonrpc": "2.0", "id": rid, "result": {"content": [{"type": "text"}], "isError": False}}
    os.write(WIRE, (json.dumps(bad) + "\n").encode())
    await asyncio.sleep(0.2)
    return "the proper answer, too late"


if __name__ == "__main__":
    server.run("stdio")
