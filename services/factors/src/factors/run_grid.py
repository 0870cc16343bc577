"""The correlation price grid of one run, read from the database once per symbol per process.

The correlations step of a daily run reads the closes of every batch's underlyings over the same
window (duration_days + 1 trading days ending at the run's date); batches share most underlyings, so
per-batch reads re-read the same rows. Within a run prices are fixed (common.run_cache), so a
symbol's column, read once, serves the later batches of the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from uuid import UUID

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from common.run_cache import RunCache
from factors.correlation_repository import price_grid


@dataclass
class RunGrid:
    """The window's dates and the closes of every symbol read so far: one (len(dates), symbols) matrix
    and each symbol's column in it (a batch's grid is then one gather, not a stack of 1,000 columns)."""

    days: int
    dates: list[date] = field(default_factory=list)
    closes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    index: dict[str, int] = field(default_factory=dict)

    def add(self, symbols: Sequence[str], closes: np.ndarray) -> None:
        """Append the columns of symbols not read before (`closes`: len(dates) × len(symbols))."""
        if not self.index:
            self.closes = np.zeros((closes.shape[0], 0))
        start = self.closes.shape[1]
        self.closes = np.hstack([self.closes, closes])  # the same dates within a run
        for j, symbol in enumerate(symbols):
            self.index[symbol] = start + j


async def cached_price_grid(
    session: AsyncSession,
    cache: RunCache[RunGrid],
    *,
    symbols: Sequence[str],
    as_of: date,
    days: int,
    run_id: UUID | None,
) -> tuple[list[date], np.ndarray]:
    """`price_grid(symbols, as_of, days)`, reading only symbols this run has not read yet."""
    grid = cache.get(as_of, run_id)
    if grid is None or grid.days != days:
        grid = RunGrid(days)
        cache.put(as_of, run_id, grid)
    missing = [s for s in symbols if s not in grid.index]
    if missing or not grid.dates:
        dates, closes = await price_grid(session, symbols=missing, as_of=as_of, days=days)
        grid.dates = dates
        grid.add(missing, closes)
    if not symbols:
        return grid.dates, np.zeros((len(grid.dates), 0))
    return grid.dates, grid.closes[:, [grid.index[s] for s in symbols]]
