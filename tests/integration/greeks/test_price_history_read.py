"""`repository.price_history` reads packed columns; it must equal the plain row-wise read, value for
value (missing adjusted closes included), on the harness market."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import sqlalchemy as sa
from greeks_harness import T0, Harness

from greeks import repository

ROW_WISE = """
    SELECT CAST(s.i - 1 AS int8) AS symbol, d.price_date - CAST(:start AS date) AS day,
           CAST(d.close AS float8) AS close, CAST(d.adj_close AS float8) AS adj_close
    FROM unnest(CAST(:symbols AS text[])) WITH ORDINALITY AS s(symbol, i)
    JOIN marketdata.api_daily_price d ON d.symbol = s.symbol AND d.price_date BETWEEN :start AND :end
"""


async def test_packed_read_equals_the_row_wise_read(harness: Harness) -> None:
    start, end = T0 - timedelta(days=120), T0
    async with harness.db.session() as session:
        symbols = [
            r[0]
            for r in await session.execute(sa.text("SELECT DISTINCT symbol FROM marketdata.daily_price ORDER BY 1"))
        ]
        symbols.append("NO_SUCH_SYMBOL")
        packed = await repository.price_history(session, symbols=symbols, start=start, end=end)
        rows = (await session.execute(sa.text(ROW_WISE), {"symbols": symbols, "start": start, "end": end})).all()

    assert len(rows) > 50 and any(r.adj_close is None for r in rows)
    got = sorted(
        zip(
            packed.symbol.tolist(),
            packed.day.tolist(),
            np.where(packed.has_close, packed.close, -1.0).tolist(),
            np.where(packed.has_adj_close, packed.adj_close, -1.0).tolist(),
            strict=True,
        )
    )
    want = sorted(
        (r.symbol, r.day, -1.0 if r.close is None else r.close, -1.0 if r.adj_close is None else r.adj_close)
        for r in rows
    )
    assert got == want
    # A missing value reads as NaN, as the row-wise arrays had it.
    assert np.isnan(packed.adj_close[~packed.has_adj_close]).all()
    assert packed.symbol.dtype == np.int64 and packed.day.dtype == np.int64


async def test_no_rows_gives_empty_columns(harness: Harness) -> None:
    async with harness.db.session() as session:
        empty = await repository.price_history(session, symbols=["NO_SUCH_SYMBOL"], start=T0, end=T0)
    assert empty.symbol.size == 0 and empty.close.size == 0 and empty.has_adj_close.size == 0
    assert empty.close.dtype == np.float64 and empty.has_close.dtype == bool
