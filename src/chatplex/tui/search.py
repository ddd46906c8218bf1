"""Search (ctrl+f): the sessions the store finds, each with the line that matched.

The store answers which sessions match (title or any message); the line is found here, in
the session's newest matching message, reading back a page at a time, so a result says why
it is one and opening it can scroll to the match.
"""

from __future__ import annotations

import re

from chatplex.core.coordinator import Coordinator
from chatplex.tui.screens.modals import SearchHit

PAGE = 200  # messages read per step when looking for the matching one
MAX_PAGES = 10  # past 2,000 messages back (or a title match only): listed without a line
WIDTH = 72  # characters of the matching line shown around the match


async def find(coord: Coordinator, query: str) -> list[SearchHit]:
    pattern = re.compile(re.escape(query), re.IGNORECASE)
    hits = []
    for session in await coord.search(query):
        title = session.title + (" (archived: opening it restores it)" if session.archived else "")
        hits.append(await _in_messages(coord, SearchHit(session.id, title), pattern))
    return hits


async def _in_messages(coord: Coordinator, hit: SearchHit, pattern: re.Pattern[str]) -> SearchHit:
    before = None
    for _ in range(MAX_PAGES):
        messages = await coord.messages(hit.session_id, limit=PAGE, before_id=before)
        for message in reversed(messages):
            if found := pattern.search(message.content):
                line, start, end = snippet(message.content, found.start(), found.end())
                return SearchHit(hit.session_id, hit.title, message.id, line, start, end)
        if len(messages) < PAGE:
            break
        before = messages[0].id
    return hit


def snippet(text: str, start: int, end: int) -> tuple[str, int, int]:
    """The line of `text` holding text[start:end], cut to about WIDTH characters around it,
    and where the match is in what is returned."""
    first = text.rfind("\n", 0, start) + 1
    last = text.find("\n", end)
    line = text[first : last if last >= 0 else len(text)].replace("\t", " ")
    start, end = start - first, min(end, first + len(line)) - first
    if len(line) > WIDTH:
        left = max(0, min(start - WIDTH // 3, len(line) - WIDTH))
        right = left + WIDTH
        head, tail = ("…" if left else ""), ("…" if right < len(line) else "")
        line = head + line[left:right] + tail
        start, end = start - left + len(head), min(end - left, WIDTH) + len(head)
    return line, start, end
