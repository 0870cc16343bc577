"""factors.beta_cache: a run reads each symbol's regression once and serves it to later batches."""

from __future__ import annotations

import numpy as np

from factors.beta_cache import RunBetas
from factors.repository import StoredBetas

CODES = ["market", "value"]


def stored(symbols: list[str], betas: list[list[float]]) -> StoredBetas:
    return StoredBetas(
        symbols=symbols,
        codes=CODES,
        beta=np.array(betas, dtype=np.float64).reshape(len(symbols), len(CODES)),
        beta_source=["regression"] * len(symbols),
        quality=["full_history"] * len(symbols),
        observations=[252] * len(symbols),
        flags=[[] for _ in symbols],
    )


def test_only_unseen_symbols_are_missing_and_a_selection_keeps_the_stored_rows() -> None:
    cache = RunBetas(tuple(CODES))
    assert cache.missing(["AAPL", "MSFT"]) == ["AAPL", "MSFT"]
    cache.add(stored(["AAPL", "MSFT"], [[1.1, 0.2], [0.9, np.nan]]))
    assert cache.missing(["AAPL", "MSFT", "NVDA"]) == ["NVDA"]
    cache.add(stored([], []))  # NVDA has no regression row: it stays missing (read again later)
    got = cache.select(["MSFT", "NVDA", "AAPL"])
    assert got.symbols == ["MSFT", "AAPL"]
    np.testing.assert_array_equal(got.beta, np.array([[0.9, np.nan], [1.1, 0.2]]))
    assert got.codes == CODES and got.observations == [252, 252] and got.beta_source == ["regression"] * 2


def test_an_empty_selection_has_the_factor_columns() -> None:
    got = RunBetas(tuple(CODES)).select(["SPY"])
    assert got.symbols == [] and got.beta.shape == (0, 2)
