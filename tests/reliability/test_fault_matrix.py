"""The fault matrix: every way a provider can misbehave, for both wire formats, through the
whole coordinator. Each row asserts what the user sees (session status, message state and
text, job state and attempts, the log line) and that other sessions keep being served.

Retried faults happen once and then clear: the reply must complete on attempt 2.
Non-retried faults must fail at once (attempt 1) with the server's own message."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from email.utils import formatdate

import pytest

from chatplex.core.events import ReplyDelta, ReplyFinished, ReplyStarted
from chatplex.core.models import JobState, MessageState, SessionStatus
from tests.fakeserver import Fault
from tests.helpers import make_config, provider_for
from tests.netgate import Gate

KINDS = ("openai", "anthropic")
REPLY = "the reply arrived in full"


RETRY_DATES: dict[str, float] = {}  # kind -> the moment a Retry-After HTTP date named


def _date_in(seconds: float, kind: str) -> str:
    """A Retry-After date `seconds` from now. The test checks the retry against the date
    itself, not against a wait: a slow set-up may spend some of those seconds already."""
    RETRY_DATES[kind] = time.time() + seconds
    return formatdate(RETRY_DATES[kind], usegmt=True)


def error_body(kind: str, message: str, etype: str) -> dict:
    if kind == "anthropic":
        return {"type": "error", "error": {"type": etype, "message": message}}
    return {"error": {"message": message, "type": etype, "code": None}}


@dataclass
class Row:
    faults: object = None  # list[Fault], or a function of the kind giving one
    said: str | dict = ""  # words the user must see in the error (or per kind)
    gate: str | None = None  # "refuse" / "blackhole": a fault below HTTP
    provider: dict = field(default_factory=dict)
    backoff: float = 0.05
    min_wait: float = 0.0  # the retry must not come sooner (Retry-After)

    def words(self, kind: str) -> str:
        return self.said[kind] if isinstance(self.said, dict) else self.said

    def fault_list(self, kind: str) -> list[Fault]:
        f = self.faults(kind) if callable(self.faults) else self.faults
        return list(f or [])


RETRIED = {
    "429 Retry-After seconds": Row([Fault(status=429, headers={"Retry-After": "1"})], "HTTP 429", min_wait=0.9),
    "429 Retry-After HTTP date": Row(
        lambda k: [Fault(status=429, headers={"Retry-After": _date_in(2, k)})], "HTTP 429"
    ),
    "429 without Retry-After": Row([Fault(status=429)], "HTTP 429"),
    "500": Row([Fault(status=500)], "HTTP 500"),
    "502": Row([Fault(status=502)], "HTTP 502"),
    "503": Row([Fault(status=503)], "HTTP 503"),
    "connection refused": Row(gate="refuse", said="cannot connect to", backoff=0.6),
    "connect timeout": Row(
        gate="blackhole", said="timed out connecting", backoff=0.6, provider={"connect_timeout": 0.5}
    ),
    "read timeout between tokens": Row([Fault(hang_after=2)], "read timeout", provider={"read_timeout": 0.5}),
    "connection reset mid-stream": Row([Fault(reset_after=2)], "connection broke mid-reply"),
    "stream ends without finish": Row([Fault(no_finish=True)], "stream ended before the reply was finished"),
    "valid SSE, invalid JSON": Row([Fault(bad_json=True)], "malformed data in the stream"),
    "error event in a 200 stream": Row(
        [Fault(error_event=True)], {"openai": "injected stream error", "anthropic": "Overloaded"}
    ),
}

FAILED = {
    "401": Row([Fault(status=401)] * 3, "set api_key_env in [providers.flaky]"),
    "403": Row([Fault(status=403)] * 3, "set api_key_env in [providers.flaky]"),
    "400 with a JSON error body": Row(
        lambda k: (
            [Fault(status=400, body=error_body(k, "prompt is too long: 9000 tokens > 4096", "invalid_request_error"))]
            * 3
        ),
        "prompt is too long: 9000",
    ),
    "404 unknown model": Row(
        lambda k: [Fault(status=404, body=error_body(k, "model 'nope' not found", "not_found_error"))] * 3,
        "model 'nope' not found",
    ),
    "422": Row(
        lambda k: [Fault(status=422, body=error_body(k, "temperature: must be <= 2", "invalid_request_error"))] * 3,
        "temperature: must be <= 2",
    ),
}


async def setup(fake, tmp_path, coordinators, kind, row, reply=REPLY, **scenario):
    bad = fake.scenario(reply=reply, faults=row.fault_list(kind), **scenario)
    good = fake.scenario(reply="other sessions are fine")
    gate = None
    bad_provider = provider_for(bad, "flaky", kind, **row.provider)
    if row.gate:
        gate = Gate(fake.port)
        bad_provider.base_url = gate.url(f"/s/{bad.id}/v1")
        if row.gate == "blackhole":
            gate.blackhole()
    config = make_config(tmp_path, bad_provider, provider_for(good, "steady", kind), workers=2, max_attempts=3)
    coord, rec = await coordinators(config, backoff_base=row.backoff)
    if row.gate == "refuse":  # a restart: the server answered before (never answered: not retried)
        await gate.forward()
        await coord.list_models("flaky")
        await gate.close()
    flaky = await coord.create_session("flaky", provider="flaky")
    steady = await coord.create_session("steady", provider="steady")
    return coord, rec, flaky, steady, gate, bad


async def other_sessions_still_served(coord, rec, steady):
    _, reply, _ = await coord.send(steady.id, "are you there?")
    done = await rec.wait(lambda e: isinstance(e, ReplyFinished) and e.message.id == reply.id)
    assert done.message.state is MessageState.COMPLETE and done.message.content == "other sessions are fine"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", list(RETRIED))
async def test_retried_fault_recovers_when_it_clears(fake, tmp_path, coordinators, caplog, kind, name):
    caplog.set_level(logging.INFO, logger="chatplex")
    row = RETRIED[name]
    coord, rec, flaky, steady, gate, bad = await setup(fake, tmp_path, coordinators, kind, row)
    try:
        _, reply, job = await coord.send(flaky.id, "hello")
        await rec.wait(lambda e: isinstance(e, ReplyStarted) and e.message_id == reply.id)
        await other_sessions_still_served(coord, rec, steady)
        interim = await rec.wait(lambda e: isinstance(e, ReplyFinished) and e.message.id == reply.id)
        # What the user sees meanwhile: the reply marked interrupted, the reason, and when it retries.
        assert interim.message.state is MessageState.INTERRUPTED
        assert row.words(kind) in interim.message.error and "retrying in" in interim.message.error
        assert "(attempt 2/3)" in interim.message.error
        opened = rec.events[-1]
        if gate is not None:
            # the server is reachable again. On a busy machine the second attempt may have run
            # (and been refused) before this line: then the third one gets through.
            await gate.forward()
        again = await rec.wait(lambda e: isinstance(e, ReplyStarted) and e.message_id == reply.id, after=interim)
        assert rec.time_of(again) - rec.time_of(interim) >= row.min_wait
        if name == "429 Retry-After HTTP date":  # not before the date (it has whole seconds)
            started_at = time.time() - (time.monotonic() - rec.time_of(again))
            assert started_at >= int(RETRY_DATES[kind]) - 0.05
        done = await rec.wait(
            lambda e: (
                isinstance(e, ReplyFinished) and e.message.id == reply.id and e.message.state is MessageState.COMPLETE
            ),
            after=opened if gate is not None else again,
        )
        assert done.message.content == REPLY and done.message.error is None
        final = await coord.job(job.id)
        assert final.state is JobState.SUCCEEDED and final.attempts in ((2, 3) if gate is not None else (2,))
        assert (await coord.session(flaky.id)).status in (SessionStatus.WAITING, SessionStatus.IDLE)
        assert f"job {job.id} retry in" in caplog.text and f"job {job.id} succeeded" in caplog.text
    finally:
        if gate is not None:
            await gate.close()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", list(FAILED))
async def test_permanent_fault_fails_at_once_with_the_servers_message(fake, tmp_path, coordinators, caplog, kind, name):
    caplog.set_level(logging.INFO, logger="chatplex")
    row = FAILED[name]
    coord, rec, flaky, steady, _, bad = await setup(fake, tmp_path, coordinators, kind, row)
    _, reply, job = await coord.send(flaky.id, "hello")
    done = await rec.wait(lambda e: isinstance(e, ReplyFinished) and e.message.id == reply.id)
    assert done.message.state is MessageState.ERROR
    assert row.said in done.message.error and f"HTTP {name[:3]}" in done.message.error
    assert "retrying" not in done.message.error
    final = await coord.job(job.id)
    assert final.state is JobState.FAILED and final.attempts == 1 and row.said in final.last_error
    assert len(bad.requests) == 1
    session = await coord.session(flaky.id)
    assert session.status is SessionStatus.ERROR
    assert f"job {job.id} failed" in caplog.text and row.said in caplog.text
    await other_sessions_still_served(coord, rec, steady)


@pytest.mark.parametrize("kind", KINDS)
async def test_429_exhausting_every_attempt_fails_with_the_reason(fake, tmp_path, coordinators, kind):
    row = Row([Fault(status=429, body=error_body(kind, "slow down", "rate_limit_error"))] * 5)
    coord, rec, flaky, steady, _, bad = await setup(fake, tmp_path, coordinators, kind, row)
    _, reply, job = await coord.send(flaky.id, "hello")
    done = await rec.wait(
        lambda e: isinstance(e, ReplyFinished) and e.message.id == reply.id and e.message.state is MessageState.ERROR
    )
    assert "HTTP 429: slow down" in done.message.error and "retrying" not in done.message.error
    final = await coord.job(job.id)
    assert final.state is JobState.FAILED and final.attempts == 3 and len(bad.requests) == 3
    assert (await coord.session(flaky.id)).status is SessionStatus.ERROR
    await other_sessions_still_served(coord, rec, steady)


@pytest.mark.parametrize("kind", KINDS)
async def test_malformed_sse_line_is_ignored_as_the_sse_spec_says(fake, tmp_path, coordinators, kind):
    coord, rec, flaky, steady, _, bad = await setup(fake, tmp_path, coordinators, kind, Row([Fault(malformed=True)]))
    _, reply, job = await coord.send(flaky.id, "hello")
    done = await rec.wait(lambda e: isinstance(e, ReplyFinished) and e.message.id == reply.id)
    assert done.message.state is MessageState.COMPLETE and done.message.content == REPLY
    assert (await coord.job(job.id)).attempts == 1
    await other_sessions_still_served(coord, rec, steady)


@pytest.mark.parametrize("kind", KINDS)
async def test_five_megabyte_reply_is_kept_whole(fake, tmp_path, coordinators, kind):
    words = [f"{i:07d}" + "x" * 992 for i in range(5 * 1024)]  # 5,120 tokens of 1,000 bytes
    big = " ".join(words)
    coord, rec, flaky, steady, _, bad = await setup(fake, tmp_path, coordinators, kind, Row(), reply=big)
    _, reply, job = await coord.send(flaky.id, "write a lot")
    await rec.wait(lambda e: isinstance(e, ReplyStarted) and e.message_id == reply.id)
    await other_sessions_still_served(coord, rec, steady)
    done = await rec.wait(lambda e: isinstance(e, ReplyFinished) and e.message.id == reply.id, timeout=60)
    assert done.message.state is MessageState.COMPLETE
    stored = await coord.store.get_message(reply.id)
    assert len(stored.content) == len(big) > 5_000_000 and stored.content == big


@pytest.mark.parametrize("kind", KINDS)
async def test_non_utf8_bytes_become_replacement_characters(fake, tmp_path, coordinators, kind):
    row = Row([Fault(raw_bytes=b"caf\xe9 \xff\xfe ")])
    coord, rec, flaky, steady, _, bad = await setup(fake, tmp_path, coordinators, kind, row)
    _, reply, job = await coord.send(flaky.id, "hello")
    done = await rec.wait(lambda e: isinstance(e, ReplyFinished) and e.message.id == reply.id)
    assert done.message.state is MessageState.COMPLETE
    assert done.message.content == "caf\ufffd \ufffd\ufffd " + REPLY
    await other_sessions_still_served(coord, rec, steady)


@pytest.mark.parametrize("kind", KINDS)
async def test_endless_stream_is_stopped_by_cancel_within_a_second(fake, tmp_path, coordinators, kind):
    coord, rec, flaky, steady, _, bad = await setup(
        fake, tmp_path, coordinators, kind, Row(), reply="more", forever=True, token_delay=0.002
    )
    _, reply, job = await coord.send(flaky.id, "never stop")
    await rec.wait(lambda e: isinstance(e, ReplyDelta) and e.message_id == reply.id)
    await other_sessions_still_served(coord, rec, steady)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await coord.cancel(flaky.id)
    done = await rec.wait(lambda e: isinstance(e, ReplyFinished) and e.message.id == reply.id, timeout=1.0)
    assert loop.time() - t0 < 1.0
    assert done.message.state is MessageState.INTERRUPTED and done.message.error == "cancelled"
    assert done.message.content.startswith("moremore")
    assert (await coord.job(job.id)).state is JobState.CANCELLED
    for _ in range(50):  # the server sees the client go away (it stops generating)
        if bad.active == 0:
            break
        await asyncio.sleep(0.02)
    assert bad.active == 0 and bad.disconnects == 1


THOUGHT = " ".join(f"think{i}" for i in range(20))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "cut", [{"openai": 5, "anthropic": 5}, {"openai": 23, "anthropic": 26}], ids=["thinking", "answering"]
)
async def test_a_reasoning_then_answer_stream_cut_is_retried_and_ends_whole(fake, tmp_path, coordinators, kind, cut):
    """A reset mid-stream, in the thinking or in the answer: the retry (or the continued
    partial answer) ends as the whole thought then the whole answer, in order, once each."""
    from chatplex.providers.base import ReasoningPart, TextPart

    row = Row([Fault(reset_after=cut[kind])], "connection broke mid-reply")  # pieces sent before the reset
    coord, rec, flaky, steady, _, bad = await setup(
        fake, tmp_path, coordinators, kind, row, parts=[("reasoning", THOUGHT), ("text", REPLY)]
    )
    _, reply, job = await coord.send(flaky.id, "think, then say")
    interim = await rec.wait(lambda e: isinstance(e, ReplyFinished) and e.message.id == reply.id)
    assert interim.message.state is MessageState.INTERRUPTED and "retrying in" in interim.message.error
    assert interim.message.parts and type(interim.message.parts[0]) is ReasoningPart  # kept, visible
    if cut[kind] > 20:  # the answer had begun
        assert type(interim.message.parts[-1]) is TextPart and REPLY.startswith(interim.message.content)
    done = await rec.wait(
        lambda e: isinstance(e, ReplyFinished) and e.message.id == reply.id and e.message.state is MessageState.COMPLETE
    )
    parts = done.message.parts
    assert [type(p) for p in parts] == [ReasoningPart, TextPart]
    assert parts[0].text == THOUGHT and parts[1].text == REPLY and done.message.content == REPLY
    assert (await coord.job(job.id)).attempts == 2
    await other_sessions_still_served(coord, rec, steady)
