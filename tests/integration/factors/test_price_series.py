"""The array-per-symbol price reads return exactly the grids the row-per-close reads returned.

`price_grid` (correlations) and `close_matrix` (factor model) now read one packed (offsets, closes)
pair per symbol (big-endian binary bytea) and scatter it with numpy. The oracles below are the previous implementations
(one row per close, Decimal → float in Python), run on the same data: the fixture market plus
awkward decimals, a missing adjusted close, a close stored on a non-trading day, a symbol without
prices and a symbol listed twice. The grids must be equal element for element (NaN where NaN).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.factors.test_factor_pipeline import T0, Env, db_url, env

from factors import correlation_repository, repository

pytestmark = pytest.mark.integration
__all__ = ["db_url", "env"]

ODD = "AAPL"  # gets awkward decimals, a NULL adj_close and a weekend close
SYMBOLS = ["SPY", ODD, "MSFT", "NO_SUCH_SYMBOL", "QQQ", "MSFT"]


async def old_price_grid(session: AsyncSession, *, symbols: Sequence[str], as_of: date, days: int) -> tuple:
    rows = (
        await session.execute(
            sa.text(
                """
                WITH days AS (
                    SELECT trading_date FROM marketdata.api_trading_day
                    WHERE trading_date <= :d ORDER BY trading_date DESC LIMIT :n
                )
                SELECT d.trading_date, p.symbol, p.adj_close
                FROM days d
                LEFT JOIN marketdata.api_daily_price p
                  ON p.price_date = d.trading_date AND p.symbol = ANY(:syms) AND p.adj_close IS NOT NULL
                """
            ),
            {"d": as_of, "n": days, "syms": list(symbols)},
        )
    ).all()
    dates = sorted({r[0] for r in rows})
    matrix = np.full((len(dates), len(symbols)), np.nan)
    day_index = {d: i for i, d in enumerate(dates)}
    col_index = {s: j for j, s in enumerate(symbols)}
    for d, sym, close in rows:
        if sym is not None:
            matrix[day_index[d], col_index[sym]] = float(close)
    return dates, matrix


async def old_close_matrix(session: AsyncSession, *, symbols: Sequence[str], days: Sequence[date]) -> np.ndarray:
    out = np.full((len(days), len(symbols)), np.nan)
    rows = (
        await session.execute(
            sa.text(
                """
                SELECT symbol, array_agg(price_date ORDER BY price_date) AS dates,
                       array_agg(COALESCE(adj_close, close)::float8 ORDER BY price_date) AS closes
                FROM marketdata.api_daily_price
                WHERE symbol = ANY(:syms) AND price_date BETWEEN :a AND :b GROUP BY symbol
                """
            ),
            {"syms": list(symbols), "a": days[0], "b": days[-1]},
        )
    ).all()
    day_index = {d: i for i, d in enumerate(days)}
    col = {s: j for j, s in enumerate(symbols)}
    for symbol, dates, closes in rows:
        for d, c in zip(dates, closes, strict=True):
            if d in day_index:
                out[day_index[d], col[symbol]] = c
    return out


async def make_awkward(session: AsyncSession) -> None:
    """Decimals whose float conversion is not trivial, one NULL adj_close and a Saturday close."""
    await session.execute(
        sa.text(
            "UPDATE marketdata.daily_price SET adj_close = adj_close + 0.0001 * (extract(doy FROM price_date) % 7) "
            "+ 0.0003 WHERE symbol = :s"
        ),
        {"s": ODD},
    )
    await session.execute(
        sa.text("UPDATE marketdata.daily_price SET adj_close = NULL WHERE symbol = :s AND price_date = :d"),
        {"s": ODD, "d": T0 - timedelta(days=6)},
    )
    saturday = T0 - timedelta(days=(T0.weekday() - 5) % 7)
    await session.execute(
        sa.text(
            "INSERT INTO marketdata.daily_price (symbol, price_date, close, adj_close, source) "
            "VALUES (:s, :d, 123.4567, 123.4567, 'fixture') ON CONFLICT DO NOTHING"
        ),
        {"s": ODD, "d": saturday},
    )


async def test_price_grid_and_close_matrix_match_the_row_per_close_reads(env: Env) -> None:
    async with env.db.session() as s:
        await make_awkward(s)
        for as_of, days in ((T0, 91), (T0, 31), (T0 - timedelta(days=1), 91), (T0 - timedelta(days=2), 61)):
            new_dates, new = await correlation_repository.price_grid(s, symbols=SYMBOLS, as_of=as_of, days=days)
            old_dates, old = await old_price_grid(s, symbols=SYMBOLS, as_of=as_of, days=days)
            assert new_dates == old_dates and len(new_dates) == days
            assert np.array_equal(new, old, equal_nan=True)
            assert np.isfinite(new[:, 0]).all() and np.isnan(new[:, 3]).all()
        assert np.isnan(new[:, 1]).sum() == 1  # the NULL adj_close; the Saturday close is not a row

        window = await repository.trading_window(s, as_of=T0, returns=252)
        new = await repository.close_matrix(s, symbols=SYMBOLS, days=window)
        old = await old_close_matrix(s, symbols=SYMBOLS, days=window)
        assert np.array_equal(new, old, equal_nan=True)
        assert np.isfinite(new[:, 1]).all()  # the close stands in for the NULL adj_close
        _, empty = await correlation_repository.price_grid(s, symbols=[], as_of=T0, days=91)
        assert empty.shape == (91, 0)
        await s.rollback()
