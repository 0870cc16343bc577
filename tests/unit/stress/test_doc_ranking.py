"""`Ranking` ranks every (scenario, portfolio) exactly as the per-scenario ranking it replaced.

Random books — sorted and shuffled portfolio indices, indices outside the batch, empty portfolios,
books without positions or scenarios, very uneven portfolio sizes — with tied, zero, negative-zero,
NaN and infinite P&L must give the same index arrays, and `rows` the same positions in row order
(p-major, then scenario, largest first).
"""

from __future__ import annotations

import numpy as np
import pytest

from stress.doc_ranking import Ranking


def top_positions(pnl: np.ndarray, portfolio_index: np.ndarray, n_portfolios: int, n_top: int) -> list[np.ndarray]:
    """The reference, one scenario row at a time (the presenter's former ranking): per portfolio, the
    indices of its `n_top` largest |P&L| positions (largest first; a non-finite P&L ranks as −1)."""
    n = pnl.shape[0]
    if n == 0:
        return [np.zeros(0, dtype=np.int64) for _ in range(n_portfolios)]
    magnitude = np.where(np.isfinite(pnl), np.abs(pnl), -1.0)
    order = np.lexsort((-magnitude, portfolio_index))
    starts = np.searchsorted(portfolio_index[order], np.arange(n_portfolios + 1))
    return [order[starts[p] : min(starts[p] + n_top, starts[p + 1])] for p in range(n_portfolios)]


def _book(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int, int]:
    n_s, n_p, n = int(rng.integers(0, 5)), int(rng.integers(0, 7)), int(rng.integers(0, 60))
    index = rng.integers(-1, n_p + 1, n) if rng.random() < 0.3 else rng.integers(0, max(n_p, 1), n)
    if rng.random() < 0.5:
        index = np.sort(index)
    pnl = np.round(rng.normal(0.0, 3.0, (n_s, n)))  # many ties
    for value, share in ((np.nan, 0.1), (-0.0, 0.05), (np.inf, 0.03), (-np.inf, 0.03)):
        pnl[rng.random((n_s, n)) < share] = value
    return pnl, index.astype(np.int64), n_p, int(rng.integers(1, 6))


@pytest.mark.parametrize("seed", [4, 0])
def test_rankings_are_top_positions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(400):
        pnl, index, n_p, n_top = _book(rng)
        ranking = Ranking(pnl, index, n_p, n_top)
        expected = [top_positions(row, index, n_p, n_top) for row in pnl]
        got = ranking.lists()
        assert len(got) == len(expected)
        for mine, theirs in zip(got, expected, strict=True):
            assert [(a.dtype, a.tolist()) for a in mine] == [(b.dtype, b.tolist()) for b in theirs]
        ports = [p for p in range(n_p) if rng.random() < 0.7]
        positions, scenario, counts = ranking.rows(ports)
        rows = [(s, expected[s][p].tolist()) for p in ports for s in range(len(pnl))]
        assert positions.tolist() == [i for _, ranked in rows for i in ranked]
        assert scenario.tolist() == [s for s, ranked in rows for _ in ranked]
        assert counts.tolist() == [len(ranked) for _, ranked in rows]


def test_a_very_uneven_book_is_ranked_alike() -> None:
    index = np.concatenate([np.zeros(5_000, dtype=np.int64), np.arange(1, 64)])
    pnl = np.random.default_rng(2).normal(0.0, 1.0, (3, len(index)))
    ranking = Ranking(pnl, index, 64, 10)
    expected = [top_positions(row, index, 64, 10) for row in pnl]
    assert [[a.tolist() for a in row] for row in ranking.lists()] == [[a.tolist() for a in row] for row in expected]
