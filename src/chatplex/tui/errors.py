"""Where every failure in the TUI lands: the traceback in the log, one line in an error toast.

Textual ends the whole app when an exception escapes an action, a message handler, a timer
or a worker — which interrupts every running session for one bad export. So each of those
entry points in tui/ is wrapped in `guarded`: the failure is reported here and the app keeps
serving keys. (tests/tui/test_errors.py checks that no entry point is left unwrapped.)
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from textual.actions import SkipAction

log = logging.getLogger("chatplex.tui")
QUIET = 30.0  # seconds: the same failure again (a timer failing every tick) is not toasted again

F = TypeVar("F", bound=Callable[..., Any])


def reason(error: BaseException) -> str:
    """One line, whatever the exception's text (tracebacks and newlines stay in the log)."""
    text = " ".join(str(error).split())
    line = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return line if len(line) <= 160 else line[:159] + "…"


class Failures:
    """One app's failures. Each is logged with its traceback and shown as an error toast,
    except a repeat of the same one within QUIET seconds (logged at DEBUG)."""

    def __init__(self) -> None:
        self.count = 0
        self._last: dict[str, float] = {}

    def report(self, app: Any, where: str, error: BaseException) -> None:
        self.count += 1
        line = f"{where} failed — {reason(error)}"
        now = time.monotonic()
        if now - self._last.get(line, -QUIET) < QUIET:
            log.debug("again: %s", line)
            return
        self._last[line] = now
        log.exception("%s", line, exc_info=error)
        if app is not None:
            app.notify(line, title="Something went wrong", severity="error", markup=False, timeout=10)


def report(node: Any, where: str, error: BaseException) -> None:
    """Report `error` through the app `node` belongs to (its `failures`, if it has them)."""
    try:
        app = node.app
    except Exception:  # noqa: BLE001  (no active app (shutting down): the log is all there is)
        app = None
    failures = getattr(app, "failures", None)
    try:
        (failures if isinstance(failures, Failures) else Failures()).report(app, where, error)
    except Exception:  # the toast failed (the app is closing): never raise here
        log.exception("reporting a failure failed; it was: %s", reason(error))


def guarded(fn: F) -> F:
    """Wrap a method of a widget, screen or app that Textual calls (action, handler, timer,
    worker body): an exception it raises is reported instead of ending the app.
    Cancellation (BaseException) and SkipAction (Textual's own control flow) pass through."""
    where = fn.__name__.removeprefix("action_").removeprefix("on_").strip("_").replace("_", " ")

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(self, *args, **kwargs)
            except SkipAction:
                raise
            except Exception as e:  # noqa: BLE001  (the point: report it, keep the app)
                report(self, where, e)
                return None

        wrapper: Any = run_async
    else:

        @functools.wraps(fn)
        def run_sync(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except SkipAction:
                raise
            except Exception as e:  # noqa: BLE001  (the point: report it, keep the app)
                report(self, where, e)
                return None

        wrapper = run_sync
    wrapper.guarded = True
    return wrapper
