"""B10 — agent turn overhead: one think → call → answer turn through chatplex (llama.cpp's
server with the tiny agent model, the real mcp-server-time) against the same two streamed
requests and one tool call made by a plain script (httpx + the `mcp` SDK), in the same run,
rounds interleaved. Server start-up is excluded from both (the servers are up and the MCP
connection open before the clock starts). Target: ≤ 1.15× the plain script's wall time.

    python bench/b10_turn.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import mcp
from common import line  # noqa: E402  (bench/common.py; sets sys.path)

from chatplex.config import Config, ProviderConfig
from chatplex.core.coordinator import Coordinator
from chatplex.core.events import SessionChanged
from chatplex.core.models import SessionStatus
from tests.helpers import TinyServer, make_agent_model
from tests.tools.helpers import time_server

QUESTION = "what time is it?"


async def stream(http: httpx.AsyncClient, url: str, messages: list[dict], tools: list[dict]) -> dict:
    """One streamed chat completion, read to its end: the text and the tool calls it made."""
    body = {"model": "tiny", "messages": messages, "stream": True, "max_tokens": 60, "temperature": 0, "tools": tools}
    text, thought, calls = [], [], {}
    async with http.stream("POST", f"{url}/chat/completions", json=body) as r:
        async for raw in r.aiter_lines():
            if not raw.startswith("data: ") or raw == "data: [DONE]":
                continue
            delta = json.loads(raw[6:])["choices"][0].get("delta") or {}
            text.append(delta.get("content") or "")
            thought.append(delta.get("reasoning_content") or "")
            for tc in delta.get("tool_calls") or []:
                call = calls.setdefault(tc["index"], {"id": "", "name": "", "arguments": ""})
                call["id"] = tc.get("id") or call["id"]
                fn = tc.get("function") or {}
                call["name"] = fn.get("name") or call["name"]
                call["arguments"] += fn.get("arguments") or ""
    return {"text": "".join(text), "reasoning": "".join(thought), "calls": list(calls.values())}


async def plain_turn(http: httpx.AsyncClient, url: str, client: mcp.Client, tools: list[dict]) -> float:
    start = time.perf_counter()
    history: list[dict] = [{"role": "user", "content": QUESTION}]
    first = await stream(http, url, history, tools)
    [call] = first["calls"]
    result = await client.call_tool(call["name"], json.loads(call["arguments"]))
    text = "".join(getattr(b, "text", "") for b in result.content)
    history += [
        {
            "role": "assistant",
            "content": "",
            "reasoning_content": first["reasoning"],  # replayed as chatplex does on a tool turn
            "tool_calls": [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": call["arguments"]},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call["id"], "content": text},
    ]
    second = await stream(http, url, history, tools)
    assert second["text"].strip() == "and to in is.", second
    return time.perf_counter() - start


async def chatplex_turn(coord: Coordinator, n: int) -> float:
    session = await coord.create_session(f"b10-{n}", provider="agent")
    done = asyncio.Event()

    def on_event(event: object) -> None:
        if isinstance(event, SessionChanged) and event.session.id == session.id:
            if event.session.status in (SessionStatus.WAITING, SessionStatus.ERROR):
                done.set()

    unsubscribe = coord.bus.subscribe(on_event)
    start = time.perf_counter()
    await coord.send(session.id, QUESTION)
    await done.wait()
    elapsed = time.perf_counter() - start
    unsubscribe()
    messages = await coord.messages(session.id)
    assert [m.role.value for m in messages] == ["user", "assistant", "tool", "assistant"], messages
    assert messages[-1].content.strip() == "and to in is."
    return elapsed


async def main(rounds: int) -> None:
    logging.disable(logging.INFO)
    folder = Path(tempfile.mkdtemp(prefix="chatplex-b10-"))
    server = TinyServer(make_agent_model(folder))
    server.start()
    time_cfg = time_server(approval="allow")
    provider = ProviderConfig(
        name="agent", kind="openai", base_url=server.url, model="tiny", max_tokens=60, params={"temperature": 0}
    )
    config = Config(
        path=None,
        db_path=folder / "b10.db",
        log_dir=folder,
        providers={"agent": provider},
        default_provider="agent",
        workers=2,
    )
    config = dataclasses.replace(config, mcp={"time": time_cfg})
    try:
        params = mcp.StdioServerParameters(command=time_cfg.command, args=list(time_cfg.args))
        async with (
            httpx.AsyncClient(timeout=60) as http,
            mcp.Client(params) as client,
            await Coordinator.open(config, start=True) as coord,
        ):
            box = coord.toolbox()
            assert box is not None
            await box.offered()  # the server is up before the clock starts, as the plain script's
            listed = await client.list_tools()  # every tool the server offers, as chatplex offers them
            tools = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description or "", "parameters": t.input_schema},
                }
                for t in listed.tools
            ]
            await plain_turn(http, server.url, client, tools)  # warm both paths once
            await chatplex_turn(coord, 0)
            plain, ours = [], []
            for n in range(1, rounds + 1):
                plain.append(await plain_turn(http, server.url, client, tools))
                ours.append(await chatplex_turn(coord, n))
    finally:
        server.stop()
    p, c = statistics.median(plain) * 1000, statistics.median(ours) * 1000
    print(line("B10 think→call→answer turn, median ms", c, p, "≤ 1.15× plain script", c <= 1.15 * p, "ms"))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    asyncio.run(main(ap.parse_args().rounds))
