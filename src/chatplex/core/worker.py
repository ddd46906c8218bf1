"""The worker loop: claim a job, run it, settle it, preempt.

The pool streams replies for the coordinator; it reaches the rows only through `JobQueue`
and the store's message reads, and tells the UI what happens through the bus.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from chatplex.config import Config, ConfigError
from chatplex.core.agent import Offered, decide_calls, tool_defs
from chatplex.core.db import LeaseLost, Store, StoreError
from chatplex.core.db.parts import StreamWrite
from chatplex.core.db.steps import Settled
from chatplex.core.events import (
    EventBus,
    JobChanged,
    Notification,
    ReplyFinished,
    ReplyStarted,
    SessionChanged,
)
from chatplex.core.models import Job, JobState, Message, Priority, Session, preview_of
from chatplex.core.preempt import victims
from chatplex.core.queue import Finished, JobQueue
from chatplex.core.running import Beat, Ending, Running, ending, turn_of
from chatplex.core.streaming import StreamedParts
from chatplex.core.tool_step import publish_settled, run_tool_step
from chatplex.providers.base import (
    ChatRequest,
    Finish,
    Provider,
    ReasoningDelta,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    Usage,
)

if TYPE_CHECKING:
    from chatplex.tools.toolbox import Toolbox

log = logging.getLogger("chatplex.worker")

FLUSH_INTERVAL = 0.1  # seconds between coalesced writes of streamed text
END_WRITE_PATIENCE = 120.0  # seconds to keep trying to write how a reply ended (locked, disk full)
# vLLM continues the final assistant message only when asked to
VLLM_CONTINUE: dict[str, object] = {"continue_final_message": True, "add_generation_prompt": False}


class Workers:
    """This process's workers, the replies they stream, and the flush beat that stores them.

    `focused` and `only_session` are the coordinator's (it exposes them): who gets unread
    marks and deltas at once, and the one session `chatplex send` may work on."""

    def __init__(
        self,
        config: Config,
        store: Store,
        queue: JobQueue,
        bus: EventBus,
        provider: Callable[[str], Provider],
        *,
        count: int,
        on_change: Callable[[], None],
        tools: Callable[[], Toolbox | None] = lambda: None,
    ) -> None:
        self.config, self.store, self.queue, self.bus = config, store, queue, bus
        self.count = count
        self.focused: int | None = None
        self.only_session: int | None = None
        self.tokens_streamed = 0  # by this pool since start (the status bar's tokens/s)
        self.stopping = False
        self._provider = provider
        self._tools = tools  # the process's MCP servers (None: config.toml names none)
        self.approve_all = False  # `chatplex send --approve-all`: calls whose policy asks run
        self._on_change = on_change  # queue stats may have changed
        self._running: dict[str, Running] = {}  # by claim token: a new run never replaces a live one
        self._idle = 0
        self._nothing_in: tuple[int, tuple[str, ...]] | None = None  # see _claim
        self._nothing_until = 0.0
        self._claim_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._flusher: asyncio.Task[None] | None = None
        # providers whose server continues a partial reply (config `resume`)
        self._continuing = frozenset(n for n, pc in config.providers.items() if pc.resume == "continue")

    # ---------------------------------------------------------------- life cycle
    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker(n), name=f"worker-{n}") for n in range(self.count)]
        self._flusher = asyncio.create_task(self._flush_loop(), name="flush")

    async def stop(self) -> None:
        """Interrupt running replies (kept, resumable) and let the workers write that."""
        self.stopping = True
        for rj in list(self._running.values()):
            rj.interrupt("shutdown")
        self.queue.notify()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=10)
            for task in pending:
                task.cancel()
        flusher = [self._flusher] if self._flusher else []
        await asyncio.gather(*self._tasks, *flusher, return_exceptions=True)  # flush ends by itself

    # ---------------------------------------------------------------- reads
    def running(self) -> tuple[Running, ...]:
        return tuple(self._running.values())

    @property
    def busy(self) -> int:
        return len(self._running)

    def live_tokens(self) -> set[str]:
        """Claim tokens running here now: recovery must never take them."""
        return set(self._running)

    def run_of(self, *, job_id: int | None = None, message_id: int | None = None) -> Running | None:
        for rj in self._running.values():
            if rj.job.id == job_id or rj.job.message_id == message_id:
                return rj
        return None

    # ---------------------------------------------------------------- events
    def publish_finished(self, job: Job, message: Message, session: Session, notify: bool = False) -> None:
        self.bus.publish(JobChanged(job))
        self.bus.publish(ReplyFinished(message))
        self.bus.publish(SessionChanged(session))
        if notify and session.id != self.focused and job.state in (JobState.SUCCEEDED, JobState.FAILED):
            ok = job.state is JobState.SUCCEEDED
            text = preview_of(message.content if ok else message.error or "failed", 60)
            self.bus.publish(Notification(session.id, session.title, text, "information" if ok else "error"))

    # ---------------------------------------------------------------- claim
    def _saturated(self) -> list[str]:
        busy: dict[str, int] = {}
        for rj in self._running.values():
            busy[rj.session.provider] = busy.get(rj.session.provider, 0) + 1
        providers = self.config.providers
        return [name for name, n in busy.items() if name in providers and 0 < providers[name].max_concurrency <= n]

    async def _worker(self, n: int) -> None:
        while not self.stopping:
            token = self.queue.token()
            try:
                async with self._claim_lock:
                    claimed = await self._claim()
                    if claimed:
                        rj = Running(*claimed)
                        if rj.token in self._running:  # cannot happen: each claim has its own token
                            raise RuntimeError(f"claim token {rj.token} is already running")
                        self._running[rj.token] = rj
                if claimed is None:
                    self._idle += 1
                    try:
                        due = self._nothing_until - time.time()
                        await self.queue.wait(token, None if due == math.inf else max(due, 0.0) + 0.001)
                    finally:
                        self._idle -= 1
                    continue
                await self._run(rj)
            except Exception as e:  # disk full, database locked for too long, a bug: keep serving
                log.exception("worker %d: %s", n, e)
                self.bus.publish(Notification(0, "chatplex", f"internal error: {e}", "error"))
                await self.queue.wait(token, 1.0)

    async def _claim(self) -> tuple[Job, Session] | None:
        """Claim a job; or None at once if another worker found nothing to claim in this same
        state (no notify since, same providers saturated, no delayed job due yet). Without
        that, every finished reply woke all idle workers into a claim and a read each:
        quadratic in the number of workers (B4, 50 workers)."""
        saturated = self._saturated()
        state = (self.queue.version, tuple(saturated))
        if state == self._nothing_in and time.time() < self._nothing_until:
            return None
        looked = time.time()  # a job falling due after this is not in the claim: the look counts it
        claimed = await self.queue.claim(saturated, self.only_session, self._continuing)
        if claimed is None:
            due = await self.queue.next_run_after(looked)
            self._nothing_in, self._nothing_until = state, math.inf if due is None else due
        return claimed

    # ---------------------------------------------------------------- run
    async def _run(self, rj: Running) -> None:
        if rj.job.is_tool:
            return await run_tool_step(self, rj)
        job, session = rj.job, rj.session
        try:
            history, reply = await self.store.context(session.id, job.message_id)
        except BaseException:
            self._running.pop(rj.token, None)  # recovered once its lease is seen unrenewed
            raise
        partial = reply.content if reply is not None and job.resumed_from else ""
        if partial:  # kept by the claim: this run continues it (config `resume`)
            assert reply is not None
            rj.resumed_from = len(partial)
            rj.parts = StreamedParts(reply.all_parts())
            texts = [p.text for p in rj.parts.parts() if type(p) is TextPart]
            rj.chunks.extend(texts)
            rj.flushed = rj.published = len(texts)
            rj.published_length = len(partial)
            log.info("job %d continues a partial reply of %d characters", job.id, len(partial))
        self.bus.publish(ReplyStarted(session.id, job.message_id, job.id, kept=len(partial)))
        self.bus.publish(JobChanged(job))
        self.bus.publish(SessionChanged(session))
        self._on_change()
        try:
            try:
                provider = self._provider(session.provider)
            except ConfigError as e:
                provider, setup_error = None, str(e)
            pc = self.config.providers.get(session.provider)
            rj.offered, rj.notice = await self._offer(session)
            limit = self.config.tool_result_limit
            own = session.settings  # the session's settings (coordinator.set_settings checked them)
            request = ChatRequest(
                model=session.model,
                system=session.system_prompt,
                temperature=own.get("temperature"),
                max_tokens=own.get("max_tokens"),
                reasoning_effort=own.get("reasoning_effort", ""),
                messages=[turn_of(m, limit) for m in history],
                prefill=partial,
                extra=VLLM_CONTINUE if partial and pc and pc.kind == "vllm" else {},
                tools=tool_defs(rj.offered),
            )
            if provider is None:
                unread = session.id != self.focused
                result: Finished | Settled | None = await self.queue.fail(
                    job, "", setup_error, retryable=False, unread=unread
                )
            else:
                if self.stopping:  # claimed while stop() interrupted the others: give it back
                    rj.interrupt("shutdown")
                if rj.reason is None:
                    rj.task = asyncio.create_task(self._pump(provider, request, rj))
                    await asyncio.wait({rj.task})  # meanwhile _flush_loop writes and publishes its text
                rj.publish_deltas(self.bus.publish)
                result = await self._settle(rj)
        except LeaseLost:
            log.warning("job %d: lease lost (cancelled elsewhere or taken over); reply not written", job.id)
            result = None
        finally:
            self._running.pop(rj.token, None)
            if rj.task and not rj.task.done():
                rj.task.cancel()
        if isinstance(result, Settled):
            self.publish_settled(result)
        elif result:
            self.publish_finished(*result, notify=True)
        self._on_change()

    async def _offer(self, session: Session) -> tuple[Offered, str | None]:
        """The tools a model step offers, and what its reply says of the servers that could
        not start (also a notification; the other servers' tools are offered)."""
        toolbox = self._tools()
        if toolbox is None or not toolbox.servers:
            return {}, None
        offered, problems = await toolbox.offered(session.servers)
        for problem in problems:
            log.warning("session %d: %s", session.id, problem)
            self.bus.publish(Notification(session.id, session.title, problem, "warning"))
        if not problems:
            return offered, None
        return offered, "without the tools of " + "; ".join(problems)

    async def _pump(self, provider: Provider, request: ChatRequest, rj: Running) -> None:
        chunks, session_id, parts = rj.chunks, rj.session.id, rj.parts
        async for event in provider.stream(request):
            if type(event) is TextDelta:  # once per token: kept lean (B4)
                if not rj.tokens:
                    rj.first_token = time.monotonic()
                    rj.first_piece = rj.first_piece or rj.first_token
                chunks.append(event.text)
                parts.text(event.text)
                rj.tokens += 1
                self.tokens_streamed += 1
                if session_id == self.focused:
                    rj.publish_deltas(self.bus.publish)
            elif type(event) is ReasoningDelta:
                rj.first_piece = rj.first_piece or time.monotonic()
                rj.other_events += 1
                self.tokens_streamed += bool(event.text)
                parts.reasoning(event)
                if session_id == self.focused:
                    rj.publish_deltas(self.bus.publish)
            elif isinstance(event, ToolCallDelta):
                rj.first_piece = rj.first_piece or time.monotonic()
                rj.other_events += 1
                parts.tool_call(event)
                if session_id == self.focused:
                    rj.publish_deltas(self.bus.publish)
            elif isinstance(event, Usage):
                rj.usage = (event.prompt_tokens, event.completion_tokens, event.reasoning_tokens)
            elif isinstance(event, Finish):
                rj.finish_reason = event.reason

    def publish_settled(self, settled: Settled) -> None:
        """The events of one agent step's write (see tool_step.publish_settled)."""
        publish_settled(self.bus, settled)
        self.queue.notify()

    def forget(self, rj: Running) -> None:
        """`rj` has ended here (its job's row says how)."""
        self._running.pop(rj.token, None)

    def tools(self) -> Toolbox | None:
        return self._tools()

    def changed(self) -> None:
        self._on_change()

    # ---------------------------------------------------------------- flush beat
    async def _flush_loop(self) -> None:
        """Every FLUSH_INTERVAL: the new text of every running reply, and their lease
        extensions, in one transaction (not one per stream: 50 streams made 500 writes a
        second); the background sessions' deltas go out at the same beat, and the deadlines
        are checked. Nothing in one stream can end this loop, which every stream needs."""
        while not self.stopping:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                await self._flush()
            except Exception:
                log.exception("flush beat failed; the next one tries again")

    async def _flush(self) -> None:
        now = time.monotonic()
        batch: list[Beat] = []
        for rj in list(self._running.values()):
            renew = now - rj.last_write > self.queue.lease / 3
            if rj.task is None or rj.task.done():  # its worker writes the end; keep its lease
                if renew:
                    batch.append(Beat(rj, rj.flushed, [], rj.mark, StreamWrite()))
                continue
            try:
                rj.publish_deltas(self.bus.publish)
                if not rj.job.is_tool:  # a tool call streams nothing: its own timeout bounds it
                    rj.check_deadlines(self.config.providers.get(rj.session.provider), now)
                if beat := rj.beat(renew):
                    batch.append(beat)
            except Exception:
                log.exception("job %d: cannot handle its stream; stopping it", rj.job.id)
                rj.interrupt("error")
        if not batch:
            return
        try:
            lost, marked = await self.queue.stream_writes([(b.run.job, b.write) for b in batch])
        except Exception as e:  # locked too long, disk full: the text stays pending, sent again
            log.warning("writing streamed text failed (kept, tried again next beat): %s", e)
            return
        for beat in batch:
            if beat.run.job.id in lost:
                beat.run.interrupt("lease_lost")
            else:
                beat.stored(now)
        for session in marked:
            self.bus.publish(SessionChanged(session))

    # ---------------------------------------------------------------- settle
    async def _settle(self, rj: Running) -> Finished | Settled | None:
        """Write how the run ended, with the reply's whole text (see Store.finish)."""
        write = self._ending(rj)
        if write is None:
            raise LeaseLost(rj.job.id)
        delay, deadline = 0.25, time.monotonic() + END_WRITE_PATIENCE
        while True:
            try:
                return await write()
            except StoreError as e:  # locked by another process, disk full: the text is in memory
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("job %d: could not write how its reply ended (%s); trying again", rj.job.id, e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                write = self._ending(rj) or write  # a cancel meanwhile changes the ending

    def _ending(self, rj: Running) -> Ending | Callable[[], Awaitable[Settled]] | None:
        unread = rj.job.session_id != self.focused
        task = rj.task
        ended_well = task is not None and task.done() and not task.cancelled() and task.exception() is None
        toolbox = self._tools() if rj.offered and ended_well and not rj.cancel_requested else None
        parts = rj.parts.parts() if toolbox is not None else []  # a plain reply pays nothing here
        calls = [p for p in parts if type(p) is ToolCallPart]
        if calls and toolbox is not None:
            decided = decide_calls(toolbox, rj.offered, rj.session, calls, self.approve_all)
            priority = Priority.LOW if unread else Priority.HIGH
            text, job, spent = rj.text, rj.job, rj.spent()
            return lambda: self.store.open_round(
                job.id,
                rj.token,
                text,
                parts,
                usage=spent,
                finish_reason=rj.finish_reason,
                unread=unread,
                calls=decided,
                priority=priority,
                max_rounds=self.config.max_tool_rounds,
                notice=rj.notice,
            )
        return ending(rj, self.queue, self.config, unread=unread, no_prefill=self._no_prefill)

    def _no_prefill(self, provider: str) -> None:
        """A model refused to continue a partial reply (e.g. Claude 4.6 and extended thinking
        refuse an assistant prefill): this process regenerates its cut replies from now on."""
        self._continuing -= {provider}

    # ---------------------------------------------------------------- preempt
    async def maybe_preempt(self) -> None:
        """A runnable HIGH job no worker can take: interrupt the LOW job that started last
        (see preempt.victims)."""
        if self.stopping or not self._running:
            return
        idle = self._idle  # before the read: a worker it wakes meanwhile takes the job it finds
        high = await self.queue.runnable_high()
        for victim, session_id in victims(high, self._running.values(), idle, self.config, self.focused):
            log.info("job %d preempted by a HIGH job of session %d", victim.job.id, session_id)
            victim.interrupt("preempt")
