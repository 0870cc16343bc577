"""`compute.scenarios.top_positions` of every scenario row at once, kept as one index array.

`top_positions` orders a scenario row by portfolio, then largest |P&L| (a non-finite P&L as −1),
then position index, and keeps each portfolio's first `n_top`. The presenter ran it once per
scenario and cut each row into one array per portfolio (~1,150 small arrays per batch, most never
read). Here every (scenario, portfolio) is ranked at once into `top` (s, P, n_top): each
portfolio's positions laid out in one padded row of a (s, P, longest) matrix (padding ranks last)
and sorted with a stable sort — which keeps equal magnitudes in position-index order, so the result
is exactly that ordering. When the portfolios' sizes differ so much that padding would dwarf the
book, one lexsort of every row along its last axis (the same keys) ranks them instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Pad to the longest portfolio while the padded matrix stays within this many times the book.
_MAX_PADDING = 4
# Sorts after every key of a real position: −|P&L| ≤ 0, and 1 for a non-finite P&L.
_PAD_KEY = 2.0


class Ranking:
    """The `n_top` largest-|P&L| positions of every (scenario, portfolio), as `top_positions` ranks them."""

    def __init__(self, pnl: np.ndarray, portfolio_index: np.ndarray, n_portfolios: int, n_top: int) -> None:
        """pnl (s, n): every scenario's position P&L; portfolio_index (n,): each position's portfolio."""
        key = -np.where(np.isfinite(pnl), np.abs(pnl), -1.0)
        listed = np.flatnonzero((portfolio_index >= 0) & (portfolio_index < n_portfolios))  # as top_positions
        sizes = np.bincount(portfolio_index[listed], minlength=n_portfolios)
        self.kept = np.minimum(n_top, sizes)  # how many of portfolio p's positions are ranked
        width = int(self.kept.max(initial=0))
        longest = int(sizes.max(initial=0))
        if n_portfolios * longest <= _MAX_PADDING * len(portfolio_index) + 1024:
            self.top = _ranked_padded(key, portfolio_index, listed, sizes, width)
        else:
            self.top = _ranked_lexsorted(key, portfolio_index, sizes, width)
        self._lists: list[list[np.ndarray]] | None = None

    def lists(self) -> list[list[np.ndarray]]:
        """`[top_positions(row, …) for row in pnl]`: per scenario, one index array per portfolio (cut
        on first use: only the #37/#38 bodies read them)."""
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


def _ranked_padded(
    key: np.ndarray, portfolio_index: np.ndarray, listed: np.ndarray, sizes: np.ndarray, width: int
) -> np.ndarray:
    """(s, P, width) ranked positions: each portfolio's keys in a row padded to the longest portfolio."""
    members = listed[np.argsort(portfolio_index[listed], kind="stable")]  # by portfolio, then index
    owner = portfolio_index[members]
    slot = np.arange(len(members)) - np.repeat(np.cumsum(sizes) - sizes, sizes)  # rank of index in its portfolio
    padded = np.full((key.shape[0], len(sizes), int(sizes.max(initial=0))), _PAD_KEY)
    padded[:, owner, slot] = key[:, members]
    local = np.argsort(padded, axis=-1, kind="stable")[:, :, :width]
    table = np.zeros((len(sizes), padded.shape[2]), dtype=np.int64)  # slot → position index
    table[owner, slot] = members
    return np.take_along_axis(table[None, :, :], local, axis=2)


def _ranked_lexsorted(key: np.ndarray, portfolio_index: np.ndarray, sizes: np.ndarray, width: int) -> np.ndarray:
    """The same from one lexsort of every row (portfolio, then key, then index: lexsort is stable)."""
    order = np.lexsort((key, np.broadcast_to(portfolio_index, key.shape)), axis=-1)
    # Every row sorts the same portfolio index first, so portfolio p spans the same columns of every
    # row (searchsorted over the sorted index, as top_positions).
    first = np.searchsorted(np.sort(portfolio_index), np.arange(len(sizes)))
    columns = np.minimum(first[:, None] + np.arange(width)[None, :], max(key.shape[1] - 1, 0))
    if key.shape[1] == 0:
        return np.zeros((key.shape[0], len(sizes), width), dtype=np.int64)
    return order[:, columns]
