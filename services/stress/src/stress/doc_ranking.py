"""The `n_top` largest-|P&L| positions of every (scenario, portfolio) at once, kept as one index array.

Each scenario row is ordered by portfolio, then largest |P&L| (a non-finite P&L as −1), then position
index, and each portfolio keeps its first `n_top`. The presenter used to sort one scenario row at a
time and cut it into one array per portfolio (~1,150 small arrays per batch, most never read); here
every portfolio's positions are laid out in one row of a (scenario, portfolio, slot) matrix, in
position-index order and padded with +inf, and one stable argsort along the slots ranks them all
(equal magnitudes stay in position-index order). A very uneven book, whose padding would dwarf its
positions, is ranked by one lexsort of every scenario row instead (the same order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class Ranking:
    """The `n_top` largest-|P&L| positions of every (scenario, portfolio), largest first."""

    def __init__(self, pnl: np.ndarray, portfolio_index: np.ndarray, n_portfolios: int, n_top: int) -> None:
        """pnl (s, n): every scenario's position P&L; portfolio_index (n,): each position's portfolio."""
        key = -np.where(np.isfinite(pnl), np.abs(pnl), -1.0)
        # Positions whose index lies outside the batch belong to no portfolio.
        listed = np.flatnonzero((portfolio_index >= 0) & (portfolio_index < n_portfolios))
        sizes = np.bincount(portfolio_index[listed], minlength=n_portfolios)
        self.kept = np.minimum(n_top, sizes)  # how many of portfolio p's positions are ranked
        width = int(self.kept.max(initial=0))
        if n_portfolios * int(sizes.max(initial=0)) <= _PADDING * len(listed) + 1024:
            self.top = _ranked_padded(key, portfolio_index, listed, sizes, width)
        else:
            self.top = _ranked(key, portfolio_index, sizes, width)
        self._lists: list[list[np.ndarray]] | None = None

    def lists(self) -> list[list[np.ndarray]]:
        """Per scenario, one index array per portfolio, largest |P&L| first (cut on first use: only the
        #37/#38 bodies read them)."""
        if self._lists is None:
            kept = self.kept.tolist()
            self._lists = [[row[p][:k] for p, k in enumerate(kept)] for row in self.top]
        return self._lists

    def rows(self, portfolios: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(positions, scenario of each, count per row) of the rows (p, s) for p in `portfolios`, s in
        order (p-major): row (p, s) holds the ranked positions `lists()[s][p]`, largest first."""
        ports = np.asarray(portfolios, dtype=np.int64)
        n_s, width = self.top.shape[0], self.top.shape[2]
        top = self.top[:, ports, :].transpose(1, 0, 2)  # (rows of a portfolio, s, rank)
        ranked = np.broadcast_to(np.arange(width) < self.kept[ports][:, None, None], top.shape)
        scenario = np.broadcast_to(np.arange(n_s)[None, :, None], top.shape)
        return top[ranked], scenario[ranked], np.repeat(self.kept[ports], n_s)


# Padded slots allowed per position before the lexsort is the cheaper ranking.
_PADDING = 4


def _ranked_padded(
    key: np.ndarray, portfolio_index: np.ndarray, listed: np.ndarray, sizes: np.ndarray, width: int
) -> np.ndarray:
    """(s, P, width) ranked positions from one stable argsort of every portfolio's padded slots."""
    order = listed[np.argsort(portfolio_index[listed], kind="stable")]  # by portfolio, then index
    owner = portfolio_index[order]
    slot = np.arange(len(order)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    padded = np.full((key.shape[0], len(sizes), int(sizes.max(initial=0))), np.inf)
    padded[:, owner, slot] = key[:, order]  # keys are finite or 1.0: the padding sorts last
    position = np.zeros(padded.shape[1:], dtype=np.int64)
    position[owner, slot] = order
    ranked = np.argsort(padded, axis=-1, kind="stable")[:, :, :width]
    result: np.ndarray = position[np.arange(len(sizes))[None, :, None], ranked]
    return result


def _ranked(key: np.ndarray, portfolio_index: np.ndarray, sizes: np.ndarray, width: int) -> np.ndarray:
    """(s, P, width) ranked positions from one lexsort of every row (portfolio, then key, then index)."""
    order = np.lexsort((key, np.broadcast_to(portfolio_index, key.shape)), axis=-1)
    # Every row sorts the same portfolio index first, so portfolio p spans the same columns of every
    # row (searchsorted over the sorted index).
    first = np.searchsorted(np.sort(portfolio_index), np.arange(len(sizes)))
    columns = np.minimum(first[:, None] + np.arange(width)[None, :], max(key.shape[1] - 1, 0))
    if key.shape[1] == 0:
        return np.zeros((key.shape[0], len(sizes), width), dtype=np.int64)
    return order[:, columns]
