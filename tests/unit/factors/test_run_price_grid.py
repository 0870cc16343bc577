"""factors.run_grid: within a run each symbol's closes are read once; outside a run, every time."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import numpy as np
import pytest

from common.run_cache import RunCache
from factors import run_grid
from factors.run_grid import RunGrid, cached_price_grid

DAY = date(2026, 11, 24)
DATES = [date(2026, 11, 20), date(2026, 11, 21), DAY]
CLOSE = {"AAPL": [1.0, 2.0, 3.0], "MSFT": [4.0, np.nan, 6.0], "NVDA": [7.0, 8.0, 9.0]}


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []

    async def fake_price_grid(session: Any, *, symbols: list[str], as_of: date, days: int) -> Any:
        calls.append(list(symbols))
        return DATES, np.column_stack([CLOSE[s] for s in symbols]) if symbols else np.zeros((3, 0))

    monkeypatch.setattr(run_grid, "price_grid", fake_price_grid)
    return calls


def expected(symbols: list[str]) -> np.ndarray:
    return np.column_stack([CLOSE[s] for s in symbols])


async def test_a_run_reads_each_symbol_once_and_serves_the_same_grid(reads: list[list[str]]) -> None:
    cache: RunCache[RunGrid] = RunCache()
    run = uuid.uuid4()
    dates, grid = await cached_price_grid(None, cache, symbols=["AAPL", "MSFT"], as_of=DAY, days=3, run_id=run)  # type: ignore[arg-type]
    assert dates == DATES
    np.testing.assert_array_equal(grid, expected(["AAPL", "MSFT"]))
    dates, grid = await cached_price_grid(None, cache, symbols=["NVDA", "AAPL"], as_of=DAY, days=3, run_id=run)  # type: ignore[arg-type]
    np.testing.assert_array_equal(grid, expected(["NVDA", "AAPL"]))
    assert reads == [["AAPL", "MSFT"], ["NVDA"]]


async def test_outside_a_run_or_for_another_window_the_grid_is_read_again(reads: list[list[str]]) -> None:
    cache: RunCache[RunGrid] = RunCache()
    await cached_price_grid(None, cache, symbols=["AAPL"], as_of=DAY, days=3, run_id=None)  # type: ignore[arg-type]
    await cached_price_grid(None, cache, symbols=["AAPL"], as_of=DAY, days=3, run_id=None)  # type: ignore[arg-type]
    run = uuid.uuid4()
    await cached_price_grid(None, cache, symbols=["AAPL"], as_of=DAY, days=3, run_id=run)  # type: ignore[arg-type]
    await cached_price_grid(None, cache, symbols=["AAPL"], as_of=DAY, days=4, run_id=run)  # type: ignore[arg-type]
    assert reads == [["AAPL"]] * 4
