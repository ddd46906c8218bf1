"""The facade the UI and the CLI call: sessions, focus, send, cancel, retry, reads.

Generations belong here, never to a widget: a reply keeps streaming whatever screen is
shown, and the UI only calls these methods and subscribes to `bus`. The worker loop that
streams the replies is `core/worker.py`; every job operation goes through `JobQueue`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from chatplex.config import Config, ConfigError
from chatplex.core.db import Store, StoreError
from chatplex.core.db.steps import Approval
from chatplex.core.events import (
    EventBus,
    ExternalChange,
    JobChanged,
    MessageAdded,
    QueueStatsChanged,
    ReplyStarted,
    SessionChanged,
    SessionDeleted,
)
from chatplex.core.models import Job, JobState, Message, Priority, QueueStats, Role, Session, preview_of
from chatplex.core.queue import JobQueue
from chatplex.core.running import Running
from chatplex.core.usage import Overflow, Totals, overflow, totals_of
from chatplex.core.worker import Workers
from chatplex.providers.base import Provider

if TYPE_CHECKING:
    from chatplex.tools.toolbox import Toolbox

__all__ = ["DEFAULT_TITLE", "MAX_MESSAGE", "Approval", "Coordinator", "Running"]

log = logging.getLogger("chatplex.coordinator")

DEFAULT_TITLE = "New chat"
WATCH_INTERVAL = 0.5  # how often another process's writes are looked for (PRAGMA data_version)
MAX_MESSAGE = 10_000_000  # characters; beyond that a paste is refused with a clear error
SETTINGS = ("temperature", "max_tokens", "reasoning_effort")  # a session's own (Session.settings)
EFFORTS = ("off", "low", "medium", "high")
WINDOW_RETRY = 300.0  # seconds before a server that did not say its context window is asked again


class Coordinator:
    """One per process. Use it as ``async with await Coordinator.open(config, start=True)``
    (or call `start` and `stop`): leaving the block stops the workers, keeping what they
    streamed, and closes the providers and the store."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        workers: int | None = None,
        providers: dict[str, Provider] | None = None,
        lease: float = 30.0,
        backoff_base: float = 1.0,
        watch_interval: float = WATCH_INTERVAL,
    ):
        self.config = config
        self.store = store
        self.bus = EventBus()
        self.queue = JobQueue(store, lease=lease, max_attempts=config.max_attempts, backoff_base=backoff_base)
        self.watch_interval = watch_interval
        self._providers: dict[str, Provider] = dict(providers or {})
        # (provider, model): the window its server said, and when it was asked (None: it did not say)
        self._windows: dict[tuple[str, str], tuple[int | None, float]] = {}
        self._asking: dict[tuple[str, str], asyncio.Task[int | None]] = {}  # lookups under way
        self._workers = Workers(
            config,
            store,
            self.queue,
            self.bus,
            self.provider,
            count=workers or config.workers,
            on_change=self._touch_stats,
            tools=self.toolbox,
        )
        self._toolbox: Toolbox | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._stats_task: asyncio.Task[None] | None = None
        self._stats_dirty = False
        self._stopping = False

    @classmethod
    async def open(cls, config: Config, **kwargs: Any) -> Coordinator:
        """A coordinator on `config`'s database, with its workers running if `start=True`;
        the other keyword arguments are the constructor's."""
        start = bool(kwargs.pop("start", False))
        coord = cls(config, await Store.open(config.db_path), **kwargs)
        if start:
            try:
                await coord.start()
            except BaseException:
                await coord.stop()
                raise
        return coord

    async def __aenter__(self) -> Coordinator:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ---------------------------------------------------------------- life cycle
    async def start(self) -> None:
        """Recover what a crashed process left running, then start the workers."""
        try:
            for job, message, session in await self.queue.recover():
                self._workers.publish_finished(job, message, session)
        except StoreError as e:  # locked by another process for now: the watch tries again
            again = 20 * self.watch_interval
            log.warning("recovery at start-up failed (%s); trying again in %.0f s", e, again)
        self._workers.start()
        self._watcher = asyncio.create_task(self._watch(), name="watch")
        self._touch_stats()
        log.info("started %d workers as %s", self.workers_total, self.queue.owner)

    async def stop(self) -> None:
        """Interrupt running replies (kept, resumable), let workers write that, close.
        Only the first call does it: later ones (an `async with` after an explicit stop,
        the UI's quit then unmount) return at once."""
        if self._stopping:
            return
        self._stopping = True
        if self._watcher:
            self._watcher.cancel()
        for task in list(self._asking.values()):
            task.cancel()
        await self._workers.stop()
        if self._toolbox is not None:  # the MCP servers stop with the process's last call
            with contextlib.suppress(Exception):
                await self._toolbox.aclose()
        if self._watcher:
            await asyncio.gather(self._watcher, return_exceptions=True)
        if self._stats_task:
            self._stats_task.cancel()
        for provider in self._providers.values():
            with contextlib.suppress(Exception):
                await provider.aclose()
        await self.store.close()
        log.info("stopped")

    @property
    def stopping(self) -> bool:
        """True once `stop` began: nothing new starts, and stopping again does nothing."""
        return self._stopping

    # ---------------------------------------------------------------- sessions
    async def create_session(
        self, title: str = DEFAULT_TITLE, provider: str | None = None, model: str | None = None, system_prompt: str = ""
    ) -> Session:
        provider = provider or self.config.default_provider
        model = model or self.config.provider(provider).model
        session = await self.store.create_session(title, provider, model, system_prompt)
        log.info("session %d created (%s/%s)", session.id, provider, model)
        self.bus.publish(SessionChanged(session))
        return session

    async def update_session(self, session_id: int, **fields: object) -> Session:
        if "provider" in fields:
            self.config.provider(str(fields["provider"]))  # unknown provider: ConfigError
        session = await self.store.update_session(session_id, **fields)
        if session is None:
            raise KeyError(f"no session {session_id}")
        self.bus.publish(SessionChanged(session))
        return session

    async def set_settings(self, session_id: int, **settings: object) -> Session:
        """The session's own temperature (0–2), max_tokens (a reply's limit) and
        reasoning_effort (off, low, medium, high), over its provider's; None (or "") for one
        of them: the provider's again. ValueError names a value out of range."""
        session = await self.store.get_session(session_id)
        if session is None:
            raise KeyError(f"no session {session_id}")
        merged = {**session.settings, **settings}
        return await self.update_session(session_id, settings=checked_settings(merged))

    async def use_servers(self, session_id: int, servers: Sequence[str] | None) -> Session:
        """The MCP servers the session's next model steps are offered tools from (None: those
        config.toml enables); a name config.toml does not know is refused (ValueError)."""
        if servers is not None:
            unknown = [name for name in servers if name not in self.config.mcp]
            if unknown:
                known = ", ".join(sorted(self.config.mcp)) or "none"
                raise ValueError(
                    f"no MCP server named {', '.join(map(repr, unknown))} in config.toml (servers: {known})"
                )
            servers = list(dict.fromkeys(servers))
        return await self.update_session(session_id, servers=servers)

    async def fork(self, session_id: int, at: int | None = None, keep_at: bool = True) -> Session:
        """A new session "title (fork)" with `session_id`'s history up to message `at` (all of
        it if None; before `at` unless `keep_at`: to send an edit of it there); the original
        stays as it is. KeyError: no such session or message."""
        source = await self.store.get_session(session_id)
        if source is None:
            raise KeyError(f"no session {session_id}")
        fork = await self.store.fork_session(session_id, at, f"{source.title} (fork)", keep_at)
        log.info("session %d forked from session %d at message %s", fork.id, session_id, at)
        self.bus.publish(SessionChanged(fork))
        return fork

    async def rename(self, session_id: int, title: str) -> Session:
        return await self.update_session(session_id, title=" ".join(title.split()) or DEFAULT_TITLE)

    async def delete_session(self, session_id: int) -> None:
        for rj in self._workers.running():
            if rj.job.session_id == session_id:
                rj.interrupt("cancel")
        await self.store.delete_session(session_id)
        if self.focused == session_id:
            self.focused = None
        log.info("session %d deleted", session_id)
        self.bus.publish(SessionDeleted(session_id))
        self._touch_stats()

    async def focus(self, session_id: int | None) -> None:
        """The user now looks at `session_id`: its work goes first, its unread count clears."""
        self.focused = session_id
        if session_id is not None:
            session = await self.store.update_session(session_id, unread=0)
            if session:
                self.bus.publish(SessionChanged(session))
        if await self.queue.reprioritise(session_id):
            self._touch_stats()
        await self._workers.maybe_preempt()

    # ---------------------------------------------------------------- messages and replies
    async def send(self, session_id: int, text: str) -> tuple[Message, Message, Job]:
        if not text.strip():
            raise ValueError("the message is empty")
        if len(text) > MAX_MESSAGE:
            raise ValueError(f"the message is too long ({len(text):,} characters; at most {MAX_MESSAGE:,})")
        priority = Priority.HIGH if session_id == self.focused else Priority.LOW
        session = await self.store.get_session(session_id)
        if session is None:
            raise KeyError(f"no session {session_id}")
        if session.title == DEFAULT_TITLE:
            session = await self.store.update_session(session_id, title=preview_of(text, 40)) or session
        if session.archived:  # a new message brings it back among the others
            session = await self.store.update_session(session_id, archived=False) or session
        user, reply, job, session = await self.queue.enqueue(session_id, text, priority)
        for event in (MessageAdded(user), MessageAdded(reply), JobChanged(job), SessionChanged(session)):
            self.bus.publish(event)
        self._touch_stats()
        if priority is Priority.HIGH:
            await self._workers.maybe_preempt()
        return user, reply, job

    async def cancel(self, session_id: int) -> bool:
        """Stop the session's reply in progress (or its first waiting one). True if any."""
        for rj in self._workers.running():
            if rj.job.session_id == session_id and rj.reason is None:
                rj.interrupt("cancel")
                return True
        active = await self.queue.active(session_id)
        if not active:
            return False
        return await self.cancel_job(active[0].id)

    async def cancel_job(self, job_id: int) -> bool:
        rj = self._workers.run_of(job_id=job_id)
        if rj is not None:
            rj.interrupt("cancel")
            return True
        result = await self.queue.cancel(job_id)  # queued, or running in another process
        if result:
            self._workers.publish_finished(*result)
        return result is not None

    async def background_work(self, keep: int | None) -> list[Job]:
        """The queued, running and held jobs of every session but `keep` (the one on screen)."""
        states = (JobState.RUNNING, JobState.QUEUED, JobState.HELD)
        return [j for s in states for j in await self.queue.jobs(s, 100_000) if j.session_id != keep]

    async def cancel_background(self, keep: int | None) -> int:
        """Cancel the background work (see background_work): partial replies are kept, held
        tool calls end their turns. How many jobs were cancelled."""
        cancelled = 0
        for job in await self.background_work(keep):
            cancelled += await self.cancel_job(job.id)
        log.info("cancelled %d background jobs (kept session %s)", cancelled, keep)
        return cancelled

    async def retry(self, session_id: int) -> Job | None:
        """Generate the session's last reply again (or now, if a retry is scheduled)."""
        last = [m for m in await self.store.messages(session_id, limit=20) if m.role is Role.ASSISTANT]
        if not last:
            return None
        return await self._retry_message(last[-1].id)

    async def retry_job(self, job_id: int) -> Job | None:
        job = await self.queue.get(job_id)
        if job is None:
            raise KeyError(f"no job {job_id}")
        return await self._retry_message(job.message_id)

    async def _retry_message(self, message_id: int) -> Job | None:
        if self._workers.run_of(message_id=message_id):
            return None  # already generating
        message = await self.store.get_message(message_id)
        if message is None:
            return None
        priority = Priority.HIGH if message.session_id == self.focused else Priority.LOW
        job, message, session = await self.queue.retry_reply(message_id, priority)
        self.bus.publish(ReplyStarted(session.id, message.id, job.id))
        for event in (JobChanged(job), SessionChanged(session)):
            self.bus.publish(event)
        self._touch_stats()
        await self._workers.maybe_preempt()
        return job

    # ---------------------------------------------------------------- tools and approvals
    def toolbox(self) -> Toolbox | None:
        """The process's MCP servers, shared by its sessions (None: config.toml names none).
        Made on first use: the MCP SDK costs a second to import."""
        if not self.config.mcp:
            return None
        if self._toolbox is None:
            from chatplex.tools.toolbox import Toolbox

            self._toolbox = Toolbox(self.config.mcp.values(), self.config.log_dir)
        return self._toolbox

    async def tool_report(self) -> list[dict[str, object]]:
        """The MCP servers, started as a session would start them (and kept: they are the
        sessions' servers), with their state and tools (see Toolbox.report)."""
        box = self.toolbox()
        return await box.report(self.config.secrets()) if box is not None else []

    @property
    def approve_all(self) -> bool:
        """`chatplex send --approve-all`: calls whose policy asks run without asking."""
        return self._workers.approve_all

    @approve_all.setter
    def approve_all(self, value: bool) -> None:
        self._workers.approve_all = value

    async def approvals(self, session_id: int | None = None) -> list[Approval]:
        """The tool calls waiting for the user (of one session, if given), oldest first."""
        return await self.store.approvals(session_id)

    async def approve(self, job_id: int, always: bool = False) -> bool:
        """Release a held tool call at once (HIGH if its session is focused), in whichever
        process claims it. `always`: that tool runs without asking in its session from now
        on. False if the call is not waiting (answered elsewhere meanwhile)."""
        job = await self.queue.get(job_id)
        if job is None:
            raise KeyError(f"no job {job_id}")
        # the session on screen goes first; elsewhere (a shell) the call keeps its rank
        priority = Priority.HIGH if job.session_id == self.focused else job.priority
        settled = await self.store.approve(job_id, always, priority)
        if settled is None:
            return False
        self._workers.publish_settled(settled)
        self._touch_stats()
        if priority is Priority.HIGH:
            await self._workers.maybe_preempt()
        return True

    async def forget_always(self, tool: str, session_id: int | None = None) -> list[Session]:
        """Calls of `tool` ask again in `session_id` (every session, if None): undoes
        approve(always=True). Returns the sessions that had said "always" for it."""
        changed = await self.store.forget_always(tool, session_id)
        for session in changed:
            self.bus.publish(SessionChanged(session))
        return changed

    async def deny(self, job_id: int, reason: str = "") -> bool:
        """Refuse a held tool call: the model gets an error result saying so (with `reason`)
        and the turn goes on. False if the call is not waiting."""
        job = await self.queue.get(job_id)
        if job is None:
            raise KeyError(f"no job {job_id}")
        priority = Priority.HIGH if job.session_id == self.focused else Priority.LOW
        settled = await self.store.deny(job_id, reason, priority, self.config.max_tool_rounds)
        if settled is None:
            return False
        self._workers.publish_settled(settled)
        self._touch_stats()
        return True

    async def set_job_priority(self, job_id: int, priority: Priority) -> Job | None:
        job = await self.queue.set_priority(job_id, priority)
        if job:
            self.bus.publish(JobChanged(job))
            self._touch_stats()
            await self._workers.maybe_preempt()
        return job

    async def run_now(self, job_id: int) -> Job | None:
        """Skip the wait before a scheduled retry."""
        job = await self.queue.run_now(job_id)
        if job:
            self.bus.publish(JobChanged(job))
            self._touch_stats()
            if job.priority is Priority.HIGH:
                await self._workers.maybe_preempt()
        return job

    # ---------------------------------------------------------------- reads for the UI
    async def sessions(self, archived: bool = False) -> list[Session]:
        """The sessions the sidebar lists, most recent first (pinned ones first); or the
        archived ones."""
        return await self.store.list_sessions(archived)

    async def session(self, session_id: int) -> Session | None:
        return await self.store.get_session(session_id)

    async def messages(self, session_id: int, limit: int | None = None, before_id: int | None = None) -> list[Message]:
        """Messages with the live text of replies this process is streaming right now."""
        messages = await self.store.messages(session_id, limit, before_id)
        live = {rj.job.message_id: rj for rj in self._workers.running()}
        for m in messages:
            if rj := live.get(m.id):  # the parts too: the stored ones lag up to a flush beat behind
                m.content, m.parts = "".join(rj.chunks), rj.parts.parts()
        return messages

    async def jobs(self, state: JobState | None = None, limit: int = 500) -> list[Job]:
        return await self.queue.jobs(state, limit)

    async def stats(self, finished: bool = False) -> QueueStats:
        return await self.queue.stats(finished)

    async def search(self, text: str) -> list[Session]:
        return await self.store.search(text)

    async def list_models(self, provider: str) -> list[str]:
        return await self.provider(provider).list_models()

    async def totals(self, session_id: int) -> Totals:
        """What the session's replies spent: tokens, dollars (config's [prices]), and how
        full its model's context window was at the newest reply (Totals.context)."""
        spent, context = await self.store.spent(session_id)
        session = await self.store.get_session(session_id)
        return totals_of(spent, context, self.config.prices, session.model if session else "")

    async def overflow(self, session_id: int, text: str) -> Overflow | None:
        """Whether sending `text` would overflow the model's context window, by an estimate
        from the session's history (core/usage.overflow); None when it fits or the window is
        not known yet. Never waits on a server: a send must not hang on a slow or dead one
        before its message is even stored. An unknown window is asked for in the background,
        for the next message."""
        session = await self.store.get_session(session_id)
        if session is None:
            raise KeyError(f"no session {session_id}")
        window = self.known_window(session.provider, session.model)
        if window is None:
            self._ask_window(session.provider, session.model)
            return None
        return overflow(await self.store.sizes(session_id), len(text), len(session.system_prompt), window)

    async def send_from(self, session_id: int, first: int | None) -> Session:
        """The session's requests send its history from message `first` on (older turns stay
        stored and shown, marked as not sent); None: all of it again."""
        return await self.update_session(session_id, context_from=first)

    def _ask_window(self, provider: str, model: str) -> None:
        """Look the window up in a task of its own (one at a time per model)."""
        key = (provider, model)
        if key in self._asking or self._stopping:
            return
        task = asyncio.create_task(self.context_window(provider, model))
        self._asking[key] = task
        task.add_done_callback(lambda t: (self._asking.pop(key, None), t.cancelled() or t.exception()))

    def known_window(self, provider: str, model: str) -> int | None:
        """The context window as known now, without asking a server."""
        pc = self.config.providers.get(provider)
        if pc is not None and pc.context_window:
            return pc.context_window
        return self._windows.get((provider, model), (None, 0.0))[0]

    async def context_window(self, provider: str, model: str) -> int | None:
        """`model`'s context window: config's context_window, else what the server says
        (asked once per model in this process), else None."""
        pc = self.config.providers.get(provider)
        if pc is not None and pc.context_window:
            return pc.context_window
        window, asked = self._windows.get((provider, model), (None, -WINDOW_RETRY))
        if window is None and time.monotonic() - asked >= WINDOW_RETRY:  # a server started since may say
            try:
                window = await self.provider(provider).context_window(model)
            except ConfigError:
                return None
            self._windows[provider, model] = (window, time.monotonic())
        return window

    async def job(self, job_id: int) -> Job | None:
        return await self.queue.get(job_id)

    def provider(self, name: str) -> Provider:
        """The client of provider `name` (configured in config.toml), made on first use and
        shared by every session on it; closed by `stop`. ConfigError if it is unknown."""
        if name not in self._providers:
            self._providers[name] = self.config.make_provider(name)
        return self._providers[name]

    # ---------------------------------------------------------------- workers, for the UI
    @property
    def focused(self) -> int | None:
        """The session the user looks at: its jobs go first, its replies bring no unread."""
        return self._workers.focused

    @focused.setter
    def focused(self, session_id: int | None) -> None:
        self._workers.focused = session_id

    @property
    def only_session(self) -> int | None:
        """`chatplex send` waiting for its reply works on its own session only: claiming
        other sessions' jobs would mean abandoning them half-streamed when it exits."""
        return self._workers.only_session

    @only_session.setter
    def only_session(self, session_id: int | None) -> None:
        self._workers.only_session = session_id

    @property
    def workers_total(self) -> int:
        return self._workers.count

    @property
    def workers_busy(self) -> int:
        return self._workers.busy

    @property
    def tokens_streamed(self) -> int:
        """Streamed by this process's workers since start (the status bar's tokens/s)."""
        return self._workers.tokens_streamed

    def running(self) -> Sequence[Running]:
        return self._workers.running()

    def live_text(self, message_id: int) -> str | None:
        """The text so far of a reply this process is generating (None if it is not)."""
        rj = self._workers.run_of(message_id=message_id)
        return rj.text if rj else None

    # ---------------------------------------------------------------- background
    async def _watch(self) -> None:
        """Notice other processes' writes (cheap PRAGMA data_version) and expired leases."""
        version = await self.store.data_version()
        ticks = 0
        while True:
            await asyncio.sleep(self.watch_interval)
            ticks += 1
            try:
                now_version = await self.store.data_version()
                if now_version != version:
                    version = now_version
                    self.bus.publish(ExternalChange())
                    self.queue.notify()
                    self._touch_stats()
                if ticks % 20 == 0:
                    for result in await self.queue.recover(live=self._workers.live_tokens()):
                        self._workers.publish_finished(*result)
                if ticks % 120 == 0:
                    await self.store.checkpoint()
            except Exception:
                log.exception("watch failed")

    def _touch_stats(self) -> None:
        """Publish queue stats soon, once for a burst of changes. A change that comes while a
        publication is under way makes it go round again, so the last word is never stale."""
        self._stats_dirty = True
        if self._stats_task is None or self._stats_task.done():
            self._stats_task = asyncio.create_task(self._publish_stats())

    async def _publish_stats(self) -> None:
        while self._stats_dirty:
            await asyncio.sleep(0.05)  # coalesce a burst of job changes into one query
            self._stats_dirty = False
            with contextlib.suppress(Exception):
                stats = await self.queue.stats()
                self.bus.publish(QueueStatsChanged(stats, self.workers_busy, self.workers_total))


def checked_settings(settings: dict[str, object]) -> dict[str, object]:
    """A session's settings, those left at the provider's dropped; ValueError otherwise."""
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise ValueError(f"no session setting {', '.join(sorted(unknown))} (settings: {', '.join(SETTINGS)})")
    out: dict[str, object] = {}
    temperature, max_tokens, effort = (settings.get(k) for k in SETTINGS)
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
            raise ValueError(f"temperature must be a number from 0 to 2, got {temperature!r}")
        out["temperature"] = float(temperature)
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= 10_000_000:
            raise ValueError(f"max_tokens must be a whole number of tokens from 1, got {max_tokens!r}")
        out["max_tokens"] = max_tokens
    if effort:
        if effort not in EFFORTS:
            raise ValueError(f"reasoning_effort must be one of {', '.join(EFFORTS)}, got {effort!r}")
        out["reasoning_effort"] = effort
    return out
