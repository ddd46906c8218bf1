"""Tokens, speed, cost and the context window (issue 17, item 5): each finished reply's dim
line on its box, the session's totals and context fill in the status bar, the price table's
arithmetic, and the figures stored (a restart shows them the same). The model is the fake
server, which reports 7 prompt tokens and one completion token per piece it streams."""

from __future__ import annotations

import dataclasses
import re

import pytest

from chatplex.config import ConfigError, Price, load
from chatplex.core.db.usage import Spent
from chatplex.core.models import Message, Role, SessionStatus
from chatplex.core.usage import context_line, cost_of, money, price_of, reply_line, size, totals_of
from chatplex.tui.app import ChatplexApp
from tests.helpers import make_config, provider_for
from tests.tui.helpers import until
from tests.tui.test_app import status

PRICES = {"fake-small": Price(input=1000.0, output=2000.0)}  # dollars per million: big, to show


def reply(prompt: int | None, completion: int | None, **kw) -> Message:
    return Message(0, 1, Role.ASSISTANT, "x", prompt_tokens=prompt, completion_tokens=completion, **kw)


def test_the_cost_of_a_reply_follows_the_price_table():
    prices = {"claude-sonnet-4-5": Price(3.0, 15.0), "claude": Price(1.0, 1.0), "gpt-5": Price(1.25, 10.0)}
    assert price_of("claude-sonnet-4-5-20250929", prices) == Price(3.0, 15.0)  # the longest name it starts with
    assert price_of("claude-haiku", prices) == Price(1.0, 1.0)
    assert price_of("llama3.2", prices) is None
    spent = reply(12_000, 3_000, reasoning_tokens=1_000, model="claude-sonnet-4-5-20250929")
    assert cost_of(spent, prices) == pytest.approx(12_000 * 3 / 1e6 + 3_000 * 15 / 1e6)  # thinking is output
    assert cost_of(reply(None, None, model="gpt-5"), prices) is None  # no counts: no figure
    assert cost_of(reply(10, 10), prices, model="gpt-5") == pytest.approx((10 * 1.25 + 10 * 10) / 1e6)
    assert [money(d) for d in (0.081, 0.0036, 12.3, 0, 0.00001)] == ["$0.081", "$0.0036", "$12.30", "$0", "<$0.0001"]


def test_a_replys_line_says_what_it_knows():
    line = reply_line(reply(812, 240, reasoning_tokens=120, seconds=8.0, model="m"), {"m": Price(3.0, 15.0)})
    assert line == "812 in · 240 out (120 thinking) · 30 tok/s · $0.0060"
    assert reply_line(reply(812, None), {}) == "812 in"
    assert reply_line(reply(None, None), PRICES) == ""  # the server sent no counts


def test_a_sessions_totals_and_context_fill():
    spent = [Spent("fake-small", 1_000, 500, 0, 2), Spent(None, 200, 100, 50, 1), Spent("other", 10, 10, 0, 1)]
    totals = totals_of(spent, context=1_600, prices=PRICES, model="fake-small")  # None: the session's model
    assert (totals.prompt, totals.completion, totals.reasoning, totals.unpriced) == (1_210, 610, 50, 1)
    assert totals.cost == pytest.approx((1_200 * 1000 + 600 * 2000) / 1e6)
    # "+": a reply had no price, so the cost is at least that
    assert context_line(totals, 32_768) == "1,820 tok · $2.40+ · context 5% of 32k"
    assert context_line(totals, None) == "1,820 tok · $2.40+"
    assert context_line(totals_of([], None, PRICES), 200_000) == "context 200k"
    sizes = (4096, 200_000, 131_072, 128_000, 1_000_000, 1_048_576, 1234)
    assert [size(n) for n in sizes] == ["4k", "200k", "128k", "128k", "1M", "1M", "1,234"]


def test_config_reads_prices_and_the_context_window(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(
        '[prices."gpt-5"]\ninput = 1.25\noutput = 10\n\n'
        '[providers.o]\nkind = "openai"\nmodel = "gpt-5"\ncontext_window = 400000\n'
    )
    config = load(path)
    assert config.prices == {"gpt-5": Price(1.25, 10.0)} and config.providers["o"].context_window == 400_000
    path.write_text('[prices."gpt-5"]\ninput = "cheap"\n')
    with pytest.raises(ConfigError, match="dollars per million tokens"):
        load(path)
    path.write_text('[prices."gpt-5"]\ninput = 1\ncached = 0.1\n')
    with pytest.raises(ConfigError, match="takes input and output"):
        load(path)


def subtitle(app) -> str:
    [box] = list(app.chat.replies.values())[-1:]
    return str(box.border_subtitle)


async def test_a_finished_reply_shows_its_tokens_speed_and_cost_and_the_status_bar_the_session(fake, tmp_path):
    window = {"fake-small": {"context_length": 100}}  # what the server's /models says of the model
    s = fake.scenario(reply="one two three four five six", token_delay=0.01, model_info=window)
    config = dataclasses.replace(make_config(tmp_path, provider_for(s)), prices=PRICES)
    app = ChatplexApp(config)
    async with app.run_test(size=(120, 30)) as pilot:
        await app.ready.wait()
        sid = (await app.coord.create_session("Costly")).id
        await app.focus_session(sid)
        await app.coord.send(sid, "count")
        await until(pilot, lambda: status(app, sid) is SessionStatus.WAITING and bool(subtitle(app)))
        [_, stored] = await app.coord.messages(sid)
        c = stored.completion_tokens
        assert stored.prompt_tokens == 7 and c and stored.seconds and stored.seconds > 0
        cost = money((7 * 1000 + c * 2000) / 1e6)
        assert re.fullmatch(rf"7 in · {c} out · [\d,]+ tok/s · \{cost}", subtitle(app)), subtitle(app)
        fill = round(100 * (7 + c) / 100)
        await until(pilot, lambda: app.status.spent == f"{7 + c} tok · {cost} · context {fill}% of 100")
        await app.coord.send(sid, "again")
        await until(pilot, lambda: len(app.chat.replies) == 2 and status(app, sid) is SessionStatus.WAITING)
        both = money(2 * (7 * 1000 + c * 2000) / 1e6)
        await until(pilot, lambda: app.status.spent.startswith(f"{2 * (7 + c)} tok · {both} · context {fill}%"))
    again = ChatplexApp(config)  # restarted: the same figures, from the database
    async with again.run_test(size=(120, 30)) as pilot:
        await again.ready.wait()
        await again.focus_session(sid)
        await until(pilot, lambda: bool(again.chat.replies) and bool(subtitle(again)))
        assert re.fullmatch(rf"7 in · {c} out · [\d,]+ tok/s · \{cost}", subtitle(again))
        await until(pilot, lambda: again.status.spent.startswith(f"{2 * (7 + c)} tok · {both}"))


async def test_a_reply_being_generated_again_drops_its_old_figures(fake, tmp_path):
    import threading

    from tests.fakeserver import Fault

    release = threading.Event()
    s = fake.scenario(reply="first answer")
    app = ChatplexApp(make_config(tmp_path, provider_for(s)))
    async with app.run_test(size=(120, 30)) as pilot:
        await app.ready.wait()
        sid = (await app.coord.create_session("Again")).id
        await app.focus_session(sid)
        await app.coord.send(sid, "q")
        await until(pilot, lambda: status(app, sid) is SessionStatus.WAITING and bool(subtitle(app)))
        assert "$" not in subtitle(app)  # no price for it: no cost, never a made-up one
        s.faults.append(Fault(hold_after=1, hold=release))
        await app.coord.retry(sid)
        await until(pilot, lambda: s.active == 1)
        await until(pilot, lambda: subtitle(app) == "")  # streaming again: its figures are not known yet
        assert s.active == 1
        release.set()
        await until(pilot, lambda: status(app, sid) is SessionStatus.WAITING and bool(subtitle(app)))
