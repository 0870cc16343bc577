"""The VaR window of one run, each symbol's window returns computed once for all of the run's batches.

`build_window` derives the window from a (days × symbols) close matrix: the rows are fixed by the
market's closes alone, and a symbol's window returns and OLS market beta depend on its own closes
alone, so within one run (whose closes never change) they can be kept per symbol. Each batch then
only gathers its symbols' columns and fills their missing days with the stored betas it sees (a later
factors batch may store a beta that was missing before). The window equals `build_window` of the
batch's closes bit for bit.
"""

from __future__ import annotations

import threading

import numpy as np

from stress.compute.risk_metrics import MarketWindow, simple_returns
from stress.compute.var import VAR_WINDOW, fill_panel, window_betas


class WindowReturns:
    """Window returns and window OLS betas of the symbols seen so far, over one close panel."""

    def __init__(self, days: np.ndarray, market_closes: np.ndarray, *, window: int = VAR_WINDOW) -> None:
        if days.size < 2:
            raise ValueError("a VaR window needs at least two days of closes")
        self.days = days
        market = simple_returns(market_closes)
        self.rows = np.flatnonzero(np.isfinite(market))[-window:]
        self.dates = days[1:][self.rows]
        self.base_date = days[self.rows[0]] if self.rows.size else None
        self.market = market[self.rows]
        self._column: dict[str, int] = {}
        self._returns = np.zeros((self.rows.size, 0))
        self._estimated = np.zeros(0)
        self._lock = threading.Lock()  # batches of one run may build their windows in parallel threads

    def _add(self, symbols: list[str], closes: np.ndarray) -> None:
        """Append the window returns and OLS betas of new symbols (closes: days × symbols)."""
        returns = np.ascontiguousarray(simple_returns(closes)[self.rows])
        # numpy sums a one-column matrix down its column pairwise but a wider one row by row, as
        # build_window's panel is summed: a lone new symbol is computed beside a copy of itself.
        wide = returns if len(symbols) > 1 else np.column_stack((returns, returns))
        betas = window_betas(wide, self.market)[: len(symbols)]
        first = self._returns.shape[1]
        self._column.update({s: first + j for j, s in enumerate(symbols)})
        self._returns = np.concatenate((self._returns, returns), axis=1)
        self._estimated = np.concatenate((self._estimated, betas))

    def window(
        self,
        symbols: tuple[str, ...],
        closes: dict[str, np.ndarray],
        stored_beta: np.ndarray,
        rf_dates: np.ndarray,
        rf_values: np.ndarray,
    ) -> MarketWindow:
        """`build_window` over `symbols` (closes of each in `closes`, stored betas in their order)."""
        with self._lock:
            new = [s for s in dict.fromkeys(symbols) if s not in self._column]
            if new:
                self._add(new, np.column_stack([closes[s] for s in new]))
            index = [self._column[s] for s in symbols]
            returns = np.take(self._returns, index, axis=1)  # C-ordered, like build_window's panel
            estimated = self._estimated[index]
        return MarketWindow(
            dates=self.dates,
            base_date=self.base_date,
            market=self.market,
            symbols=symbols,
            panel=fill_panel(returns, self.market, stored_beta, estimated=estimated),
            rf_dates=rf_dates,
            rf_values=rf_values,
        )
