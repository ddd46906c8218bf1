"""How a command line names a session: an id (ASCII digits), a title, or title:NAME for a
title made of digits; and the titles a command may give one."""

from __future__ import annotations

from chatplex.cli.output import UsageError, ago
from chatplex.core.db import Store
from chatplex.core.models import Session

SESSION_REF = "session id, or title (title:NAME for a title made of digits)"
NAME_LIMIT = 1_000  # characters in a title, provider or model name: one line on screen


def is_id(ref: str) -> bool:
    """Whether a session reference is an id (see Store.find_session)."""
    return ref.isascii() and ref.isdigit()


def only_session(ref: str, found: list[Session]) -> Session:
    """The one session `ref` names; two sessions with its title are an error listing them
    (never a silent pick: `rm notes` must not delete whichever was used last)."""
    if not found:
        hint = f"; title:{ref} names a session with that title" if is_id(ref) else ""
        raise UsageError(f"no session {ref!r} (see `chatplex sessions`{hint})")
    if len(found) > 1:
        shown = ", ".join(f"{s.id} {s.title!r} (last activity {ago(s.updated_at)})" for s in found[:5])
        more = f", and {len(found) - 5} more (see `chatplex sessions`)" if len(found) > 5 else ""
        raise UsageError(
            f"{len(found)} sessions are titled {ref.removeprefix('title:')!r}; name one by its id: {shown}{more}"
        )
    return found[0]


async def find_session(store: Store, ref: str) -> Session:
    return only_session(ref, await store.find_session(ref))


def new_title(text: str) -> str:
    """A new session's title as the app keeps titles (whitespace collapsed), checked."""
    title = " ".join(text.split())
    if not title:
        raise UsageError("the session title is empty")
    if len(title) > NAME_LIMIT:
        raise UsageError(f"the session title is too long ({len(title):,} characters; at most {NAME_LIMIT:,})")
    return title
