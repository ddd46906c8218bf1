"""An HTTP server on 127.0.0.1 that speaks the OpenAI Chat Completions and Anthropic
Messages streaming wire formats, with switches to inject faults.

It runs aiohttp in a background thread, so tests drive chatplex in their own event loop
against real sockets. Each test makes its own `Scenario` (a URL prefix), so tests never
share state: `fake.scenario(reply=..., faults=[...]).url`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Fault:
    """One request's misbehaviour; fields combine (e.g. status + headers)."""

    status: int | None = None  # answer with this HTTP status and an error body
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # error body (JSON-able or bytes); default: an API-shaped error
    reset_after: int | None = None  # tokens, then drop the connection
    no_finish: bool = False  # end the stream with no finish event / [DONE]
    malformed: bool = False  # a line that is not SSE
    bad_json: bool = False  # a data: line that is not JSON
    error_event: bool = False  # an error object inside the 200 stream
    hang_after: int | None = None  # tokens, then stall (read timeout)
    raw_bytes: bytes | None = None  # extra raw bytes sent as a delta's text (e.g. non-UTF-8)
    content_parts: bool = False  # OpenAI: delta.content as a list of parts, not a string
    bad_content: Any = None  # OpenAI: one delta whose content is this JSON value (a bad type)
    trickle_after: int | None = None  # tokens, then only SSE keep-alive comments, forever
    hold_after: int | None = None  # tokens, then wait for `hold` (a threading.Event) to be set
    hold: threading.Event | None = None
    bare_done: bool = False  # OpenAI: nothing but "data: [DONE]"
    tool_call: str | None = None  # stream a call of this tool (and no text)


@dataclass
class Scenario:
    id: int
    port: int
    reply: str = "Hello from the fake server."
    token_delay: float = 0.0
    forever: bool = False  # stream tokens until the client goes away
    finish: str | None = None  # the finish/stop reason sent (default "stop" / "end_turn")
    echo_key: bool = False  # answer every request 401, quoting the key it got (as some proxies do)
    faults: list[Fault] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)  # bodies received
    headers: list[dict[str, str]] = field(default_factory=list)
    models: list[str] = field(default_factory=lambda: ["fake-small", "fake-large"])
    model_info: dict[str, dict[str, Any]] = field(default_factory=dict)  # more fields of a /models entry
    count_prompt: bool = False  # OpenAI: prompt_tokens = the request's characters / 4, not 7
    models_hold: threading.Event | None = None  # /models answers once this is set (a slow server)
    arrivals: list[float] = field(default_factory=list)  # time.perf_counter() as each request came in
    refuse_prefill: bool = False  # 400 for a request ending in an assistant turn (Claude 4.6)
    chaos: float = 0.0  # OpenAI: the chance that a stream carries one odd chunk (see _odd_chunk)
    chaos_seed: int = 0
    odd_chunks: list[str] = field(default_factory=list)  # which odd chunks were sent
    disconnects: int = 0  # streams the client closed early
    # A reply made of parts instead of `reply`: ("reasoning", text), ("text", text),
    # ("tool", name, arguments_text), ("redacted", data) (Anthropic only). Texts stream a word
    # at a time; the switches below choose how each API's wire carries them.
    parts: list[tuple[str, ...]] | None = None
    after_tool: str | None = None  # with `parts`: the answer to a request whose last turn is a tool result
    split_args: bool = False  # tool arguments one character per delta
    interleave: bool = False  # Anthropic: open the next block before stopping this one; signatures late
    signature: str = "sig-abc"  # Anthropic: each thinking block's signature
    reasoning_field: str = "reasoning_content"  # OpenAI: "reasoning_content", "reasoning" or "both"
    think_inline: bool = False  # OpenAI: reasoning inline in content as <think>…</think>, tags cut
    unknown_types: bool = False  # an unknown block/delta type (Anthropic) or delta field (OpenAI)
    reasoning_tokens: int | None = None  # OpenAI: completion_tokens_details.reasoning_tokens
    active: int = 0  # streams open right now
    max_active: int = 0  # the most streams open at once

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/s/{self.id}/v1"

    def tokens(self, prefill: str = "") -> list[str]:
        """The reply's tokens; after a `prefill` the reply starts with, only the rest (a
        server continuing a final assistant message, as Anthropic and llama.cpp do)."""
        text = self.reply[len(prefill) :] if prefill and self.reply.startswith(prefill) else self.reply
        words = text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]


class FakeServer:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.scenarios: dict[int, Scenario] = {}
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self.port = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._started.wait(10)

    def scenario(self, **kwargs: Any) -> Scenario:
        faults = kwargs.pop("faults", [])
        s = Scenario(id=next(self._ids), port=self.port, faults=list(faults), **kwargs)
        self.scenarios[s.id] = s
        return s

    def close(self) -> None:
        async def stop() -> None:
            await self._runner.cleanup()
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:  # handlers stalled on purpose (hang_after)
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    # ------------------------------------------------------------------ server side
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/s/{sid}/v1/chat/completions", self._openai)
        app.router.add_post("/s/{sid}/v1/messages", self._anthropic)
        app.router.add_get("/s/{sid}/v1/models", self._models)
        runner = self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._started.set()
        self._loop.run_forever()

    async def _begin(self, request: web.Request) -> tuple[Scenario, Fault, dict[str, Any]]:
        s = self.scenarios[int(request.match_info["sid"])]
        s.arrivals.append(time.perf_counter())
        body = await request.json()
        s.requests.append(body)
        s.headers.append(dict(request.headers))
        fault = s.faults.pop(0) if s.faults else Fault()
        if s.echo_key:
            fault = Fault(status=401, body=self._key_echo(request))
        return s, fault, body

    @staticmethod
    def _key_echo(request: web.Request) -> dict[str, Any]:
        got = request.headers.get("authorization") or request.headers.get("x-api-key") or "none"
        return {"error": {"message": f"Incorrect API key provided: {got}", "type": "invalid_request_error"}}

    async def _models(self, request: web.Request) -> web.Response:
        s = self.scenarios[int(request.match_info["sid"])]
        if s.echo_key:
            return web.json_response(self._key_echo(request), status=401)
        if s.models_hold is not None:
            await asyncio.get_running_loop().run_in_executor(None, s.models_hold.wait, 60)
        data = [{"id": m, "object": "model", **s.model_info.get(m, {})} for m in s.models]
        return web.json_response({"object": "list", "data": data})

    @staticmethod
    def _error_response(fault: Fault, anthropic: bool) -> web.Response:
        body = fault.body
        if body is None:
            message = f"injected error {fault.status}"
            body = (
                {"type": "error", "error": {"type": "api_error", "message": message}}
                if anthropic
                else {"error": {"message": message, "type": "server_error", "code": fault.status}}
            )
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return web.Response(
            status=fault.status or 500, body=data, headers=fault.headers, content_type="application/json"
        )

    async def _stream(self, request: web.Request, s: Scenario, fault: Fault, events: Any) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
        await response.prepare(request)
        s.active += 1
        s.max_active = max(s.max_active, s.active)
        try:
            async for chunk in events:
                await response.write(chunk)
        except ConnectionResetError:  # the client went away: count it, nothing to answer
            s.disconnects += 1
        except asyncio.CancelledError:
            s.disconnects += 1
            raise
        finally:
            s.active -= 1
        return response

    @staticmethod
    def _prefill(body: dict[str, Any]) -> str:
        """The text of a final assistant turn: a partial reply the client asks to continue."""
        messages = body.get("messages") or [{}]
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        prefill = last.get("content") if last.get("role") == "assistant" else ""
        if isinstance(prefill, list):  # Anthropic blocks
            prefill = "".join(b.get("text", "") for b in prefill if isinstance(b, dict) and b.get("type") == "text")
        return prefill if isinstance(prefill, str) else ""

    @staticmethod
    def _parts_after(s: Scenario, prefill: str, request: web.Request | None = None) -> list[tuple[str, ...]]:
        """The scenario's parts; after a prefill (a partial answer to continue), only the rest
        of the answer: a server continuing a final assistant message does not think again.
        After a tool result (`after_tool`), the answer as one text part."""
        if s.after_tool is not None and request is not None and request.get(AFTER_TOOL):
            return [("text", s.after_tool)]
        parts = s.parts or []
        whole = "".join(p[1] for p in parts if p[0] == "text")
        if prefill and whole.startswith(prefill):
            return [("text", whole[len(prefill) :])]
        return parts

    async def _token_source(self, s: Scenario, fault: Fault, request: web.Request, body: dict[str, Any]):
        prefill = self._prefill(body)
        tokens = itertools.cycle(s.tokens()) if s.forever else iter(s.tokens(prefill))
        for n, token in enumerate(tokens):
            if fault.reset_after is not None and n >= fault.reset_after:
                request.transport.abort()  # type: ignore[union-attr]
                return
            if fault.hang_after is not None and n >= fault.hang_after:
                await asyncio.sleep(3600)
            if fault.hold_after is not None and n == fault.hold_after and fault.hold is not None:
                while not fault.hold.is_set():  # the test releases it from its own thread
                    await asyncio.sleep(0.01)
            if fault.trickle_after is not None and n >= fault.trickle_after:
                while True:
                    yield None  # a keep-alive comment
                    await asyncio.sleep(0.05)
            if s.token_delay:
                await asyncio.sleep(s.token_delay)
            yield token

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        s, fault, body = await self._begin(request)
        if fault.status:
            return self._error_response(fault, anthropic=False)
        model = body.get("model", "fake")

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return b"data: " + json.dumps(data).encode() + b"\n\n"

        async def events():
            if fault.bare_done:
                yield b"data: [DONE]\n\n"
                return
            yield chunk({"role": "assistant", "content": ""})
            if s.parts is not None:
                request[AFTER_TOOL] = _ends_in_tool_result(body)
                async for piece in self._openai_parts(s, fault, request, chunk, self._prefill(body)):
                    yield piece
                return
            if fault.bad_content is not None:
                yield chunk({"content": fault.bad_content})
            if fault.tool_call:
                yield chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": fault.tool_call, "arguments": ""},
                            }
                        ]
                    }
                )
                for piece in ('{"timezone"', ': "UTC"}'):
                    yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                yield chunk({}, "tool_calls")
                yield b"data: [DONE]\n\n"
                return
            if fault.malformed:
                yield b"this is not server-sent events\n\n"
            if fault.bad_json:
                yield b"data: {not json\n\n"
            if fault.raw_bytes is not None:
                yield b'data: {"choices":[{"index":0,"delta":{"content":"' + fault.raw_bytes + b'"}}]}\n\n'
            if fault.error_event:
                yield b'data: {"error": {"message": "injected stream error", "type": "server_error"}}\n\n'
                return
            count = 0
            odd_at = -1
            if s.chaos:
                rng = random.Random(s.chaos_seed * 1_000_003 + len(s.requests))
                if rng.random() < s.chaos:
                    odd_at, odd = rng.randrange(len(s.tokens())), rng.choice(ODD_CHUNKS)
            async for token in self._token_source(s, fault, request, body):
                if token is None:
                    yield b": keep-alive\n\n"
                    continue
                if count == odd_at:
                    s.odd_chunks.append(odd)
                    if odd == "parts":  # valid: this token's text as a list of parts
                        yield chunk({"content": [{"type": "text", "text": token}]})
                        count += 1
                        continue
                    yield ODD_BODIES[odd]
                count += 1
                yield chunk({"content": [{"type": "text", "text": token}] if fault.content_parts else token})
            if fault.no_finish or request.transport is None or request.transport.is_closing():
                return
            yield chunk({}, s.finish or "stop")
            prompt = _characters(body) // 4 if s.count_prompt else 7
            usage = {"prompt_tokens": prompt, "completion_tokens": count, "total_tokens": prompt + count}
            yield b"data: " + json.dumps({"id": "c1", "choices": [], "usage": usage}).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"

        return await self._stream(request, s, fault, events())

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        s, fault, body = await self._begin(request)
        if fault.status:
            return self._error_response(fault, anthropic=True)
        messages = body.get("messages") or [{}]
        if s.refuse_prefill and isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant":
            return web.json_response(
                {
                    "type": "error",
                    "error": {
                        "type": "invalid_request_error",
                        "message": "This model does not support assistant message prefill.",
                    },
                },
                status=400,
            )

        def ev(kind: str, data: dict[str, Any]) -> bytes:
            return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

        async def events():
            yield ev(
                "message_start",
                {
                    "message": {
                        "id": "m1",
                        "type": "message",
                        "role": "assistant",
                        "model": body.get("model"),
                        "content": [],
                        "usage": {"input_tokens": 7, "output_tokens": 1},
                    }
                },
            )
            if s.parts is None:
                yield ev("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
            if s.parts is not None:
                request[AFTER_TOOL] = _ends_in_tool_result(body)
                async for piece in self._anthropic_parts(s, fault, request, ev, self._prefill(body)):
                    yield piece
                return
            yield b'event: ping\ndata: {"type": "ping"}\n\n'
            if fault.malformed:
                yield b"this is not server-sent events\n\n"
            if fault.bad_json:
                yield b"event: content_block_delta\ndata: {not json\n\n"
            if fault.raw_bytes is not None:
                yield (
                    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
                    b'"delta":{"type":"text_delta","text":"' + fault.raw_bytes + b'"}}\n\n'
                )
            if fault.error_event:
                yield ev("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})
                return
            if fault.tool_call:
                yield ev("content_block_stop", {"index": 0})
                yield ev(
                    "content_block_start",
                    {
                        "index": 1,
                        "content_block": {"type": "tool_use", "id": "toolu_1", "name": fault.tool_call, "input": {}},
                    },
                )
                for piece in ('{"timezone"', ': "UTC"}'):
                    yield ev(
                        "content_block_delta",
                        {"index": 1, "delta": {"type": "input_json_delta", "partial_json": piece}},
                    )
                yield ev("content_block_stop", {"index": 1})
                yield ev(
                    "message_delta",
                    {"delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 9}},
                )
                yield ev("message_stop", {})
                return
            count = 0
            async for token in self._token_source(s, fault, request, body):
                if token is None:
                    yield b": keep-alive\n\n"
                    continue
                count += 1
                yield ev("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": token}})
            if fault.no_finish or request.transport is None or request.transport.is_closing():
                return
            yield ev("content_block_stop", {"index": 0})
            yield ev(
                "message_delta",
                {
                    "delta": {"stop_reason": s.finish or "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": count},
                },
            )
            yield ev("message_stop", {})

        return await self._stream(request, s, fault, events())

    @staticmethod
    def _words(text: str) -> list[str]:
        words = text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]

    async def _paced(self, s: Scenario, fault: Fault, request: web.Request, pieces: list[Any]):
        """`pieces` one by one, with the scenario's pace and its faults (reset, hang, hold)."""
        for n, piece in enumerate(pieces):
            if fault.reset_after is not None and n >= fault.reset_after:
                request.transport.abort()  # type: ignore[union-attr]
                return
            if fault.hang_after is not None and n >= fault.hang_after:
                await asyncio.sleep(3600)
            if fault.hold_after is not None and n == fault.hold_after and fault.hold is not None:
                while not fault.hold.is_set():
                    await asyncio.sleep(0.01)
            if s.token_delay:
                await asyncio.sleep(s.token_delay)
            yield piece

    async def _openai_parts(self, s: Scenario, fault: Fault, request: web.Request, chunk: Any, prefill: str = ""):
        """A parts reply on the Chat Completions wire: reasoning as `reasoning_content` /
        `reasoning` (or inline <think> tags), text as content, tool calls as `tool_calls[i]`
        fragments (id and name first, then the arguments)."""
        pieces: list[dict[str, Any]] = []
        calls = 0
        inline_open = False
        for part in self._parts_after(s, prefill, request):
            kind = part[0]
            if kind == "reasoning":
                words = self._words(part[1])
                if s.think_inline:
                    text = ("" if inline_open else "<think>") + part[1]
                    inline_open = True
                    # cut the tag itself across deltas: "<th" + "ink>…"
                    pieces += [{"content": text[i : i + 3]} for i in range(0, len(text), 3)]
                    continue
                for w in words:
                    if s.reasoning_field == "both":
                        pieces.append({"reasoning_content": w, "reasoning": w})
                    else:
                        pieces.append({s.reasoning_field: w})
            elif kind == "text":
                if inline_open:
                    pieces += [{"content": "</thi"}, {"content": "nk>\n\n"}]
                    inline_open = False
                pieces += [{"content": w} for w in self._words(part[1])]
            elif kind == "tool":
                name, args = part[1], part[2]
                index = calls
                calls += 1
                pieces.append(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "id": f"call_{index + 1}",
                                "type": "function",
                                "function": {"name": name, "arguments": ""},
                            }
                        ]
                    }
                )
                cuts = list(args) if s.split_args else [args[: len(args) // 2], args[len(args) // 2 :]]
                pieces += [{"tool_calls": [{"index": index, "function": {"arguments": c}}]} for c in cuts if c]
            if s.unknown_types:
                pieces.append({"annotations": [{"type": "unknown-v9"}]})
        if inline_open:
            pieces += [{"content": "</thi"}, {"content": "nk>"}]
        async for delta in self._paced(s, fault, request, pieces):
            yield chunk(delta)
        if fault.no_finish or request.transport is None or request.transport.is_closing():
            return
        yield chunk({}, s.finish or ("tool_calls" if calls else "stop"))
        usage: dict[str, Any] = {"prompt_tokens": 7, "completion_tokens": len(pieces), "total_tokens": 7 + len(pieces)}
        if s.reasoning_tokens is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": s.reasoning_tokens}
        yield b"data: " + json.dumps({"id": "c1", "choices": [], "usage": usage}).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"

    async def _anthropic_parts(self, s: Scenario, fault: Fault, request: web.Request, ev: Any, prefill: str = ""):
        """A parts reply on the Messages wire: thinking blocks (thinking_delta, then a
        signature_delta), redacted_thinking blocks whole at their start, text blocks and
        tool_use blocks (input_json_delta). With `interleave`, as llama.cpp's server does,
        the next block opens before this one stops and the signature comes after it."""
        out: list[bytes] = []  # built first, then paced
        late: list[bytes] = []  # a block's signature and stop, sent after the next block's deltas
        tools = 0
        parts = self._parts_after(s, prefill, request)
        for index, part in enumerate(parts):
            kind = part[0]
            ending: list[bytes] = []
            if kind == "reasoning":
                out.append(
                    ev("content_block_start", {"index": index, "content_block": {"type": "thinking", "thinking": ""}})
                )
                out += [
                    ev("content_block_delta", {"index": index, "delta": {"type": "thinking_delta", "thinking": w}})
                    for w in self._words(part[1])
                ]
                ending.append(
                    ev(
                        "content_block_delta",
                        {"index": index, "delta": {"type": "signature_delta", "signature": s.signature}},
                    )
                )
            elif kind == "redacted":
                out.append(
                    ev(
                        "content_block_start",
                        {"index": index, "content_block": {"type": "redacted_thinking", "data": part[1]}},
                    )
                )
            elif kind == "text":
                out.append(ev("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}}))
                out += [
                    ev("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": w}})
                    for w in self._words(part[1])
                ]
            elif kind == "tool":
                tools += 1
                block = {"type": "tool_use", "id": f"toolu_{tools}", "name": part[1], "input": {}}
                out.append(ev("content_block_start", {"index": index, "content_block": block}))
                args = part[2]
                cuts = list(args) if s.split_args else [args[: len(args) // 2], args[len(args) // 2 :]]
                out += [
                    ev(
                        "content_block_delta",
                        {"index": index, "delta": {"type": "input_json_delta", "partial_json": c}},
                    )
                    for c in cuts
                    if c
                ]
            ending.append(ev("content_block_stop", {"index": index}))
            out += late
            late = []
            if s.interleave:
                late = ending
            else:
                out += ending
        out += late
        if s.unknown_types:
            n = len(parts)
            out += [
                ev("content_block_start", {"index": n, "content_block": {"type": "server_gadget_v9", "x": 1}}),
                ev("content_block_delta", {"index": n, "delta": {"type": "gadget_delta_v9", "y": 2}}),
                ev("content_block_stop", {"index": n}),
            ]
        async for piece in self._paced(s, fault, request, out):
            yield piece
        if fault.no_finish or request.transport is None or request.transport.is_closing():
            return
        stop = s.finish or ("tool_use" if tools else "end_turn")
        yield ev(
            "message_delta",
            {"delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": len(out)}},
        )
        yield ev("message_stop", {})


# Odd chunks a real OpenAI-compatible server has been seen to send, or could: some are valid
# (content as parts, an unknown field, a comment), the rest must fail the attempt cleanly.
ODD_BODIES = {
    "unknown_field": b'data: {"choices":[{"index":0,"delta":{"annotations":[1,2]}}]}\n\n',
    "comment": b": this is a comment\n\n",
    "dict_content": b'data: {"choices":[{"index":0,"delta":{"content":{"text":"x"}}}]}\n\n',
    "number_content": b'data: {"choices":[{"index":0,"delta":{"content":42}}]}\n\n',
    "choices_object": b'data: {"choices":{"index":0}}\n\n',
    "delta_list": b'data: {"choices":[{"index":0,"delta":["x"]}]}\n\n',
    "bad_json": b"data: {not json\n\n",
}
ODD_CHUNKS = ["parts", *ODD_BODIES]


def serve_forever() -> None:
    """`python -m tests.fakeserver '[{"reply": ...}, ...]'`: serve scenarios in this process
    (for benchmarks that keep the server off the measured process's CPU); prints their URLs
    as a JSON list, serves until stdin closes."""
    import sys

    server = FakeServer()
    urls = [server.scenario(**spec).url for spec in json.loads(sys.argv[1])]
    print(json.dumps(urls), flush=True)
    sys.stdin.read()
    server.close()


AFTER_TOOL = web.RequestKey("after_tool", bool)


def _ends_in_tool_result(body: dict[str, Any]) -> bool:
    """The request's last turn is a tool result (OpenAI: role tool; Anthropic: a user turn of
    tool_result blocks)."""
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        return True
    content = last.get("content")
    return isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


if __name__ == "__main__":
    serve_forever()


def _characters(body: dict[str, Any]) -> int:
    """The characters of a chat request's messages (their string contents)."""
    return sum(len(m["content"]) for m in body.get("messages", []) if isinstance(m.get("content"), str))
