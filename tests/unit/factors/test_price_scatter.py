"""scatter_series: per-symbol packed (offsets, values) columns into a (days × symbols) grid."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from factors.price_series import scatter_series


def packed(symbol: str, offsets: list[int], values: list[float | None]) -> tuple[str, bytes, bytes]:
    """A row as the packed reads return it: big-endian int4 offsets, big-endian float8 values (NULL as
    NaN, the read's coalesce)."""
    floats = [np.nan if v is None else v for v in values]
    return symbol, np.asarray(offsets, dtype=">i4").tobytes(), np.asarray(floats, dtype=">f8").tobytes()


D0 = date(2026, 11, 16)  # a Monday
DAYS = [D0, D0 + timedelta(days=1), D0 + timedelta(days=2), D0 + timedelta(days=7)]  # holes: 3..6


def test_values_land_on_their_day_and_column_and_other_dates_are_ignored() -> None:
    rows = [
        packed("B", [0, 2, 5, 7], [1.5, 2.5, 99.0, 3.5]),  # offset 5 is not a day of the grid
        packed("A", [1], [None]),  # a NULL value stays NaN
        packed("C", [-1, 8], [7.0, 8.0]),  # outside the window
    ]
    grid = scatter_series(rows, days=DAYS, symbols=["A", "B", "C", "D"])
    expected = np.full((4, 4), np.nan)
    expected[[0, 2, 3], 1] = [1.5, 2.5, 3.5]
    assert np.array_equal(grid, expected, equal_nan=True)


def test_a_symbol_listed_twice_fills_its_last_column() -> None:
    grid = scatter_series([packed("A", [0], [4.0])], days=DAYS, symbols=["A", "B", "A"])
    assert grid[0, 2] == 4.0 and np.isnan(grid[0, 0])


def test_no_rows_or_no_days_give_an_all_nan_grid_of_the_right_shape() -> None:
    assert np.isnan(scatter_series([], days=DAYS, symbols=["A"])).all()
    assert scatter_series([packed("A", [0], [1.0])], days=[], symbols=["A"]).shape == (0, 1)
