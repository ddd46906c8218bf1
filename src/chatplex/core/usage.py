"""What replies cost: tokens, speed, money (from config's price table) and how full the
context window is. Plain arithmetic on stored figures, no I/O.

Prices are the user's own: `[prices."MODEL"] input = 3.0, output = 15.0`, in dollars per
million tokens. A model matches its exact name, else the longest price name it starts with
("claude-sonnet-4-5" prices "claude-sonnet-4-5-20250929"). Thinking tokens are counted in
the completion and billed as output, as both APIs do. No built-in table: a stale price is
worse than none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from chatplex.config import Price
from chatplex.core.db.usage import Spent
from chatplex.core.models import Message

MILLION = 1_000_000


@dataclass(slots=True)
class Totals:
    """A session's tokens and cost over its replies; `cost` is None when no reply had a price."""

    prompt: int = 0
    completion: int = 0
    reasoning: int = 0
    cost: float | None = None
    unpriced: int = 0  # replies with tokens but no price
    context: int | None = None  # the newest reply's request and answer: how full the window is


def price_of(model: str, prices: Mapping[str, Price]) -> Price | None:
    if model in prices:
        return prices[model]
    found = [name for name in prices if model.startswith(name)]
    return prices[max(found, key=len)] if found else None


def cost_of(message: Message, prices: Mapping[str, Price], model: str = "") -> float | None:
    """The dollars `message` (a reply) cost, or None: no price for its model, or no counts."""
    price = price_of(message.model or model, prices)
    if price is None or (message.prompt_tokens is None and message.completion_tokens is None):
        return None
    return ((message.prompt_tokens or 0) * price.input + (message.completion_tokens or 0) * price.output) / MILLION


def money(dollars: float) -> str:
    """$0.0042, $0.42, $12.30: enough digits to see a small reply's cost."""
    if dollars >= 1:
        return f"${dollars:,.2f}"
    if dollars >= 0.01:
        return f"${dollars:.3f}"
    return f"${dollars:.4f}" if dollars >= 0.0001 else ("$0" if dollars == 0 else "<$0.0001")


def tokens(n: int) -> str:
    """1,234 / 12.3k / 1.2M."""
    if n >= MILLION:
        return f"{n / MILLION:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.1f}k"
    return f"{n:,}"


def reply_line(message: Message, prices: Mapping[str, Price], model: str = "") -> str:
    """A reply's dim line: "812 in · 240 out (120 thinking) · 31 tok/s · $0.0036"; "" when the
    server sent no counts."""
    said = []
    if message.prompt_tokens is not None:
        said.append(f"{message.prompt_tokens:,} in")
    if message.completion_tokens is not None:
        out = f"{message.completion_tokens:,} out"
        if message.reasoning_tokens:
            out += f" ({message.reasoning_tokens:,} thinking)"
        said.append(out)
        if message.seconds and message.seconds > 0:
            said.append(f"{message.completion_tokens / message.seconds:,.0f} tok/s")
    cost = cost_of(message, prices, model)
    if cost is not None:
        said.append(money(cost))
    return " · ".join(said)


def totals_of(spent: Iterable[Spent], context: int | None, prices: Mapping[str, Price], model: str = "") -> Totals:
    """A session's totals from its spending per model (core/db/usage.py); `model` is the
    session's, for replies stored without theirs."""
    t = Totals(context=context)
    for s in spent:
        t.prompt += s.prompt
        t.completion += s.completion
        t.reasoning += s.reasoning
        price = price_of(s.model or model, prices)
        if price is None:
            t.unpriced += s.replies
        else:
            t.cost = (t.cost or 0.0) + (s.prompt * price.input + s.completion * price.output) / MILLION
    return t


def context_line(totals: Totals, window: int | None) -> str:
    """The status bar's "12.3k tok · $0.12 · context 45% of 32k" for the session on screen."""
    if not totals.prompt and not totals.completion:
        return f"context {size(window)}" if window else ""
    said = [f"{tokens(totals.prompt + totals.completion)} tok"]
    if totals.cost is not None:
        said.append(money(totals.cost) + ("+" if totals.unpriced else ""))
    if window and totals.context is not None:
        said.append(f"context {min(999, round(100 * totals.context / window))}% of {size(window)}")
    return " · ".join(said)


def size(window: int) -> str:
    """A context window as people name it: 32768 is "32k", 128000 "128k", 1048576 "1M"."""
    if window >= 1_000_000:
        return f"{round(window / (MILLION if window % 1000 == 0 else 1 << 20), 1):g}M"
    if window % 1000 == 0 and window >= 1000:
        return f"{window // 1000}k"
    return f"{window // 1024}k" if window % 1024 == 0 and window >= 1024 else tokens(window)


FIT = 0.85  # of the context window a request may fill: the rest is for the reply
AFTER_DROP = 0.6  # what dropping old turns aims at, so the next few turns fit too
CHARS_PER_TOKEN = 4.0  # until the server has counted a reply of the session


@dataclass(frozen=True, slots=True)
class Overflow:
    """A message that would not fit in the model's context window with the session's history.
    `drop_from`: the first message to keep sending (a user message, or one past the newest
    to send none of the turns: ids only grow), the turns before it stored and shown but not
    sent; None when even the message alone does not fit. `turns`: how many turns it drops."""

    tokens: int  # the estimated tokens of the request
    window: int
    drop_from: int | None
    turns: int


def overflow(sizes: list[tuple[int, str, int, int | None]], new: int, system: int, window: int) -> Overflow | None:
    """Would a message of `new` characters overflow `window` tokens? `sizes` are what the
    request would send (core/db/usage.sizes: id, role, characters, tokens counted for a
    reply's request and answer). Characters become tokens at the rate the server's newest
    count shows for this session (4 characters a token before it has counted any)."""
    rate, chars = 1 / CHARS_PER_TOKEN, 0
    for _, _, n, counted in sizes:
        chars += n
        if counted and chars + system:
            rate = counted / (chars + system)
    tokens = round((system + chars + new) * rate)
    if tokens <= FIT * window:
        return None
    if (system + new) * rate > FIT * window:
        return Overflow(tokens, window, None, 0)
    left, turns = system + chars + new, 0
    for mid, role, n, _ in sizes:
        if role == "user":
            if turns and left * rate <= AFTER_DROP * window:
                return Overflow(tokens, window, mid, turns)
            turns += 1
        left -= n
    return Overflow(tokens, window, sizes[-1][0] + 1, turns)  # sizes is not empty: it overflowed
