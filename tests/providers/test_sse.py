"""Our SSE decoder (providers/sse.py) against httpx-sse's public API on random streams cut
at random, and against the WHATWG rules where httpx-sse bends them; then the same checks
run on broken copies of the decoder, each of which they must catch."""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import httpx_sse
import pytest

from chatplex.providers import sse

SEEDS = 300
Decoder = Callable[[], Any]  # makes an object with .decode(text) -> events
Row = tuple[str, str, str, int | None]


def response(chunks: list[bytes]) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=iter(chunks))


def theirs(chunks: list[bytes]) -> list[Row]:
    """httpx-sse's events, through its public API, from the same reads."""
    return [(e.event, e.data, e.id, e.retry) for e in httpx_sse.EventSource(response(chunks)).iter_sse()]


def ours(chunks: list[bytes], make: Decoder = sse.SSEDecoder) -> list[Row]:
    """Our events as the providers get them: httpx's text of each read, fed to the decoder."""
    decode = make().decode
    return [(e.event, e.data, e.id, e.retry) for text in response(chunks).iter_text() for e in decode(text)]


# ---------------------------------------------------------------------- random streams
VALUES = ['{"choices":[{"delta":{"content":"hi"}}]}', "[DONE]", "", " spaced", "id: x", "x:y", "ü€😀", "a\0b"]


def random_stream(rng: random.Random) -> tuple[bytes, list[str]]:
    """A stream within what httpx-sse gets right (the spec's rules it bends are tested in
    SPEC below): a block without data has no event/id/retry field, and once an id is set
    no block lacks data (httpx-sse would dispatch an empty event for either). Returns the
    bytes and the offsets of the ends of its blocks (whole-event reads)."""
    style = rng.choice(["\n", "\n", "\n", "\r\n", "\r", "mixed"])
    out: list[str] = []
    ends: list[int] = []
    last = ""

    def end_line() -> None:
        nonlocal last
        ending = style if style != "mixed" else rng.choice(["\n", "\r\n", "\r"])
        if last == "\r" and ending == "\n":  # that would be one CRLF, not two line ends
            ending = "\r\n"
        out.append(ending)
        last = ending

    sticky = False  # an id is set: from now on every blank line dispatches, for httpx-sse
    for _ in range(rng.randint(1, 30)):
        if sticky or rng.random() < 0.85:
            fields = ["data"] + [rng.choice(["data"] * 4 + ["event", "id", "retry", ":", "bogus"]) for _ in range(2)]
            fields = rng.sample(fields, rng.randint(1, 3)) if rng.random() < 0.3 else fields[: rng.randint(1, 3)]
            if "data" not in fields:
                fields.append("data")
        else:
            fields = [rng.choice([":", "bogus", "Data"]) for _ in range(rng.randint(1, 2))]
        for name in fields:
            if name == ":":
                out.append(":" + rng.choice(["", " keep-alive", ":"]))
            else:
                value = rng.choice(["5", "1000", "x", "5x", ""]) if name == "retry" else rng.choice(VALUES)
                out.append(rng.choice([name, f"{name}:{rng.choice(['', ' '])}{value}"]))
                if name == "id" and ":" in out[-1] and "\0" not in value:
                    sticky = value != ""
                elif name == "id" and ":" not in out[-1]:
                    sticky = False  # `id` alone: an empty id
            end_line()
        end_line()  # the blank line
        if not sticky and rng.random() < 0.15:
            end_line()  # a blank line too many
        ends.append(len("".join(out).encode()))
    return "".join(out).encode(), ends


def cut(data: bytes, ends: list[int], rng: random.Random) -> list[bytes]:
    """Whole events per read half the time (what servers send), else arbitrary byte cuts
    (inside a CRLF, inside a UTF-8 character)."""
    if rng.random() < 0.5:
        points = ends[:-1]
    else:
        points = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 20))))
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def random_case(seed: int) -> tuple[list[bytes], list[bytes]]:
    """(reads for httpx-sse, reads for ours): ours sometimes start with a BOM, which the
    spec drops (httpx-sse keeps it, so it gets none)."""
    rng = random.Random(seed)
    chunks = cut(*random_stream(rng), rng)
    if rng.random() < 0.2:
        bom = "\ufeff".encode()
        if rng.random() < 0.5:
            return chunks, [bom + chunks[0], *chunks[1:]]
        return chunks, [bom[:1], bom[1:] + chunks[0], *chunks[1:]]  # cut inside the BOM
    return chunks, chunks


# ---------------------------------------------------------------------- the rules httpx-sse bends
R = "message"
SPEC: list[tuple[str, str, list[Row]]] = [
    ("a BOM first is dropped", "\ufeffdata: a\n\n", [(R, "a", "", None)]),
    ("only the first BOM", "\ufeff\ufeffdata: a\n\ndata: b\n\n", [(R, "b", "", None)]),
    ("no data, no event", "event: ping\n\ndata: b\n\n", [(R, "b", "", None)]),
    ("an id alone dispatches nothing", "id: 7\n\ndata: b\n\n", [(R, "b", "7", None)]),
    ("the id is kept", "id: 7\ndata: a\n\n\n\n: hi\n\ndata: b\n\n", [(R, "a", "7", None), (R, "b", "7", None)]),
    ("id with NUL is ignored", "id: 1\ndata: a\n\nid: 2\0\ndata: b\n\n", [(R, "a", "1", None), (R, "b", "1", None)]),
    ("an empty id resets it", "id: 1\ndata: a\n\nid\ndata: b\n\n", [(R, "a", "1", None), (R, "b", "", None)]),
    ("retry alone: no event", "retry: 5\n\ndata: b\n\n", [(R, "b", "", None)]),
    ("retry: ASCII digits only", "retry: +5\nretry:  5\nretry: ٣\ndata: a\n\n", [(R, "a", "", None)]),
    ("retry per event", "retry: 5\ndata: a\n\ndata: b\n\n", [(R, "a", "", 5), (R, "b", "", None)]),
    ("event type is reset", "event: e\ndata: 1\n\ndata: 2\n\n", [("e", "1", "", None), (R, "2", "", None)]),
    ("reset by an empty dispatch", "event: e\n\ndata: 2\n\n", [(R, "2", "", None)]),
    ("CR, LF, CRLF", "data: a\rdata: b\r\ndata: c\n\r\n", [(R, "a\nb\nc", "", None)]),
    ("LF CR is two line ends", "data: a\n\rdata: b\n\n", [(R, "a", "", None), (R, "b", "", None)]),
    ("one space is stripped", "data:  two\ndata\ndata:\n\n", [(R, " two\n\n", "", None)]),
    ("no colon: the whole line is the name", "data\n\nevent\ndata: x\n\n", [(R, "", "", None), (R, "x", "", None)]),
    ("names are case-sensitive", "Data: a\nDATA: b\ndata: c\n\n", [(R, "c", "", None)]),
    ("a comment", ": data: a\ndata: b\n\n", [(R, "b", "", None)]),
    ("an unfinished event is dropped", "data: a\n\ndata: b\n", [(R, "a", "", None)]),
    ("colons after the first are data", "data: a: b:c\n\n", [(R, "a: b:c", "", None)]),
]


def spec_reads(text: str) -> Iterator[list[str]]:
    """The text whole, one character per read, and cut in two at every point; each also
    after a first read of one blank line (which dispatches nothing), so that whole events
    meet the fast path, which never takes a stream's first read (it may start with a BOM)."""
    cuts = [[text], list(text), *([text[:i], text[i:]] for i in range(1, len(text)))]
    for reads in cuts:
        yield reads
        if not text.startswith("\ufeff"):
            yield ["\n", *reads]


def spec_breaks(make: Decoder) -> str | None:
    for rule, text, expected in SPEC:
        for reads in spec_reads(text):
            decode = make().decode
            got = [(e.event, e.data, e.id, e.retry) for r in reads for e in decode(r)]
            if got != expected:
                return f"{rule}: {reads!r} gave {got!r}, not {expected!r}"
    return None


def random_breaks(make: Decoder, seeds: range = range(SEEDS)) -> str | None:
    for seed in seeds:
        for_them, for_us = random_case(seed)
        if ours(for_us, make) != theirs(for_them):
            return f"seed {seed}: {for_us!r}"
    return None


# ---------------------------------------------------------------------- the tests
@pytest.mark.parametrize("seed", range(SEEDS))
def test_random_streams_give_httpx_sses_events(seed):
    for_them, for_us = random_case(seed)
    assert ours(for_us) == theirs(for_them)


@pytest.mark.parametrize(("rule", "text", "expected"), SPEC, ids=[rule for rule, _, _ in SPEC])
def test_spec_rules_however_the_text_is_cut(rule, text, expected):
    for reads in spec_reads(text):
        decode = sse.SSEDecoder().decode
        assert [(e.event, e.data, e.id, e.retry) for r in reads for e in decode(r)] == expected, reads


def test_retry_sets_the_streams_reconnection_time():
    decoder = sse.SSEDecoder()
    assert decoder.decode("retry: 2500\n\n") == [] and decoder.retry == 2500
    decoder.decode("retry: soon\ndata: x\n\n")
    assert decoder.retry == 2500


def test_typical_openai_and_anthropic_reads():
    openai = [b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n', b"data: [DONE]\n\n"]
    anthropic = [
        b'event: content_block_delta\ndata: {"type":"content_block_delta"}\n\n',
        b"event: message_stop\ndata: {}\n\nevent: ping\ndata: {}\n\n",
    ]
    for chunks in (openai, anthropic):
        assert ours(chunks) == theirs(chunks) and len(ours(chunks)) == len(chunks) + (chunks is anthropic)


# A rule broken in a copy of the decoder: (what the copy's source has, what it gets instead).
MUTANTS = {
    "fast path: one space": ('body[1:] if body[:1] == " " else body', "body"),
    "fast path: id": ('body[1:] if body[:1] == " " else body, self._id)', 'body[1:] if body[:1] == " " else body)'),
    "fast path: event type": (
        'SSEEvent(kind or "message", "\\n".join(data), self._id)',
        'SSEEvent("message", "\\n".join(data), self._id)',
    ),
    "fast path: dispatch without data": ("            if data:  # a block", "            if True:  # a block"),
    "fast path: other fields": (
        "else:  # a comment, another field, a blank line too many: the full rules decide",
        "elif False:",
    ),
    "fast path on a CR": ('and "\\r" not in text:', ":"),
    "fast path mid-event": ("if self._clean and", "if"),
    "no BOM rule": ("if text[0] == BOM:", "if False:"),
    "every BOM dropped": ("if not self._started and text:", "if text:"),
    "CRLF cut in two": ('            if text[:1] == "\\n":\n                text = text[1:]', "            pass"),
    "CR alone": ('.replace("\\r", "\\n")', ""),
    "CR last": ('self._cr = text[-1] == "\\r"', "self._cr = False"),
    "lines cut in two": ("lines[0] = self._line + lines[0]", "pass"),
    "dispatch without data": ("                if self._data:\n", "                if True:\n"),
    "data buffer kept": ("                    self._data = []\n", ""),
    "event type kept": ('self._event, self._retry = "", None', "self._retry = None"),
    "retry kept": ('self._event, self._retry = "", None', 'self._event = ""'),
    "all spaces": (
        '            if value[:1] == " ":\n                value = value[1:]\n            if name',
        "            value = value.lstrip()\n            if name",
    ),
    "id with NUL": ('if "\\0" not in value:\n                    self._id', "if True:\n                    self._id"),
    "lenient retry": (
        "value.isascii() and value.isdigit() and len(value) <= 4300",
        "value.strip().lstrip('+-').isdigit()",
    ),
    "data joined wrong": (
        '"\\n".join(self._data), self._id, self._retry',
        '"".join(self._data), self._id, self._retry',
    ),
    "last line ends": ("self._line = lines.pop()", "self._line = ''"),
    "clean with a line pending": ("pending = self._line or", "pending ="),
}


def mutant(old: str, new: str) -> Decoder:
    source = inspect.getsource(sse)
    assert source.count(old) == 1, f"the decoder changed: update this mutant ({old!r})"
    namespace: dict[str, Any] = {"__name__": sse.__name__}
    exec(compile(source.replace(old, new), "<mutant>", "exec"), namespace)  # noqa: S102
    return namespace["SSEDecoder"]


@pytest.mark.parametrize("name", MUTANTS)
def test_a_decoder_that_breaks_a_rule_is_caught(name):
    make = mutant(*MUTANTS[name])
    assert spec_breaks(make) or random_breaks(make), f"nothing catches the mutant {name!r}"


def test_the_real_decoder_passes_the_same_checks():
    assert spec_breaks(sse.SSEDecoder) is None and random_breaks(sse.SSEDecoder) is None
