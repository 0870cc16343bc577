"""The market_data step's full-history check: symbols counted as ample once are not counted again,
and the answer stays the one a fresh count gives."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from marketdata import calendar, repository
from marketdata.history_memo import AmpleHistory
from marketdata.market_data import thin_history_symbols

pytestmark = pytest.mark.integration

AS_OF = date(2026, 11, 24)
COUNT_PRICES = repository.price_counts  # the unpatched count (the tests below spy on the module's)


@pytest.fixture
async def env(md_env):
    async with md_env.db.transaction() as session:
        await session.execute(sa.text("TRUNCATE marketdata.daily_price"))
    md_env.ctx.ample_history.forget()
    yield md_env
    md_env.ctx.ample_history.forget()


async def _store_closes(env, symbol: str, days: int, *, up_to: date = AS_OF) -> None:
    """`days` consecutive trading days of closes ending on `up_to`."""
    start = calendar.shift_trading_days(up_to, days - 1)  # n > 0 steps back
    async with env.db.transaction() as session:
        await session.execute(
            sa.text(
                "INSERT INTO marketdata.daily_price (symbol, price_date, close, source) "
                "SELECT :s, d, 100, 'fixture' FROM unnest(CAST(:days AS date[])) AS d"
            ),
            {"s": symbol, "days": calendar.trading_days(start, up_to)},
        )


async def _counted_thin(env, symbols: list[str], up_to: date) -> set[str]:
    """The former check: every symbol counted."""
    async with env.db.session() as session:
        counts = await COUNT_PRICES(session, symbols, up_to=up_to)
    rows = env.ctx.settings.min_history_rows
    return {s for s in symbols if counts.get(s, 0) < rows}


async def test_thin_symbols_match_a_full_count_and_ample_ones_are_counted_once(env, monkeypatch) -> None:
    rows = env.ctx.settings.min_history_rows
    await _store_closes(env, "AAPL", rows)  # exactly enough
    await _store_closes(env, "MSFT", rows - 1)  # one short
    await _store_closes(env, "SPY", rows + 50)
    symbols = ["AAPL", "MSFT", "SPY", "QQQ"]  # QQQ: nothing stored
    counted: list[list[str]] = []

    async def spy_counts(session, wanted, *, up_to):
        counted.append(sorted(wanted))
        return await COUNT_PRICES(session, wanted, up_to=up_to)

    monkeypatch.setattr(repository, "price_counts", spy_counts)

    first = await thin_history_symbols(env.ctx, symbols, up_to=AS_OF)
    assert first == await _counted_thin(env, symbols, AS_OF) == {"MSFT", "QQQ"}
    assert counted == [sorted(symbols)]

    # Same or later date: only the thin ones are counted again, the answer is unchanged.
    later = calendar.next_trading_day(AS_OF)
    assert await thin_history_symbols(env.ctx, symbols, up_to=AS_OF) == first
    assert await thin_history_symbols(env.ctx, symbols, up_to=later) == await _counted_thin(env, symbols, later)
    assert counted[1:] == [["MSFT", "QQQ"], ["MSFT", "QQQ"]]

    # An earlier date is counted afresh (every symbol): AAPL has one close too few on the day before.
    earlier = calendar.previous_trading_day(AS_OF)
    assert await thin_history_symbols(env.ctx, symbols, up_to=earlier) == {"AAPL", "MSFT", "QQQ"}
    assert await _counted_thin(env, symbols, earlier) == {"AAPL", "MSFT", "QQQ"}
    assert counted[-1] == sorted(symbols)


async def test_a_symbol_that_reaches_the_threshold_is_remembered_from_then_on(env) -> None:
    rows = env.ctx.settings.min_history_rows
    earlier = calendar.previous_trading_day(AS_OF)
    await _store_closes(env, "AAPL", rows - 1, up_to=earlier)
    assert await thin_history_symbols(env.ctx, ["AAPL"], up_to=earlier) == {"AAPL"}
    await _store_closes(env, "AAPL", 1)  # the as-of day's close makes it ample
    assert await thin_history_symbols(env.ctx, ["AAPL"], up_to=AS_OF) == set()
    assert env.ctx.ample_history.is_ample("AAPL", rows=rows, up_to=AS_OF)
    assert not env.ctx.ample_history.is_ample("AAPL", rows=rows, up_to=earlier)


def test_the_memo_keeps_the_earliest_date_per_threshold() -> None:
    memo = AmpleHistory()
    memo.remember(["AAPL"], rows=300, up_to=date(2026, 11, 24))
    memo.remember(["AAPL"], rows=300, up_to=date(2026, 11, 20))
    memo.remember(["AAPL"], rows=300, up_to=date(2026, 11, 25))  # a later date never moves it forward
    assert memo.is_ample("AAPL", rows=300, up_to=date(2026, 11, 20))
    assert not memo.is_ample("AAPL", rows=300, up_to=date(2026, 11, 19))
    assert not memo.is_ample("AAPL", rows=301, up_to=date(2026, 11, 24))  # another threshold: unknown
    assert not memo.is_ample("MSFT", rows=300, up_to=date(2026, 11, 24))
    memo.forget()
    assert not memo.is_ample("AAPL", rows=300, up_to=date(2026, 11, 24))
