"""Closes of the symbols a valuation run needs, read once per run and shared by all its batches.

Each batch of 64 books holds ~1,300 positions in ~1,000 distinct symbols, and the 1,000-book run holds
only ~3,000 symbols in all: probing every batch's symbols again was ~37,000 index probes per run,
most of the batch read's cost, where ~6,000 suffice. Within one run the prices are fixed (see
`common.run_cache`), so a symbol's close, once read, serves every later batch of the same run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import fetch_records
from ingest.compute import NA, Calendar

# The latest close per symbol inside its stale window. LATERAL … LIMIT 1 makes it one primary-key
# probe per symbol, whatever the (often stale) row estimates say. `day` 0 is T (its window `wt`),
# 1 the previous trading day (window `wp`). Close × 10^4 and days since 1970-01-01 as integers,
# NA (int64 min) where no row or no close.
_PROBE = """
SELECT {day} AS day, s.symbol,
       coalesce(CAST(c.close * 10000 AS int8), :na) AS close,
       coalesce(CAST(c.price_date - DATE '1970-01-01' AS int8), :na) AS price_date
FROM unnest(CAST(:{symbols} AS text[])) AS s(symbol)
LEFT JOIN LATERAL (
  SELECT d.price_date, d.close FROM marketdata.api_daily_price d
  WHERE d.symbol = s.symbol AND d.price_date <= :{upto} AND d.price_date >= :{since}
  ORDER BY d.price_date DESC LIMIT 1
) c ON true
"""
_CLOSES = (
    _PROBE.format(day=0, symbols="today", upto="t", since="wt")
    + "UNION ALL"
    + _PROBE.format(day=1, symbols="previous", upto="p", since="wp")
)

Close = tuple[int, int]  # (close × 10^4, days since 1970-01-01), NA in both when none
_NONE: Close = (NA, NA)
Int64s = npt.NDArray[np.int64]


@dataclass
class RunCloses:
    """Closes read so far for one date and its calendar (previous trading day and both stale windows)."""

    as_of: date
    calendar: Calendar
    today: dict[str, Close] = field(default_factory=dict)
    previous: dict[str, Close] = field(default_factory=dict)

    async def read_missing(
        self, session: AsyncSession, today: Iterable[str], previous: Iterable[str], prices: bool
    ) -> None:
        """Read the closes of the symbols not read yet (every one reads as none without the prices view)."""
        want_today = sorted(set(today).difference(self.today))
        want_previous = sorted(set(previous).difference(self.previous))
        if not want_today and not want_previous:
            return
        if not prices:
            self.today.update(dict.fromkeys(want_today, _NONE))
            self.previous.update(dict.fromkeys(want_previous, _NONE))
            return
        cal = self.calendar
        params = {
            "today": want_today,
            "previous": want_previous,
            "t": self.as_of,
            "wt": cal.window_t,
            "p": cal.prev_date,
            "wp": cal.window_p,
            "na": NA,
        }
        tables = (self.today, self.previous)
        for day, symbol, close, price_date in await fetch_records(session, _CLOSES, params):
            tables[day][symbol] = (close, price_date)

    def lookup_today(self, symbols: Iterable[str]) -> tuple[Int64s, Int64s]:
        """Closes (× 10^4) and their dates (days since 1970-01-01) on T of `symbols`, all read before."""
        return _columns(self.today, symbols)

    def lookup_previous(self, symbols: Iterable[str]) -> tuple[Int64s, Int64s]:
        """Closes and dates on the previous trading day of `symbols`, all read before."""
        return _columns(self.previous, symbols)


def _columns(table: dict[str, Close], symbols: Iterable[str]) -> tuple[Int64s, Int64s]:
    pairs = np.array([table[s] for s in symbols], dtype=np.int64).reshape(-1, 2)
    return np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1])
