"""Which symbols this process already knows to hold enough stored closes (the market_data step's
full-history check).

The step back-fills `full_history_days` for a symbol with fewer than `min_history_rows` closes on
or before the run's as-of date, which takes counting every stored close of every symbol in scope
(~600k rows for a 2,000-symbol book, on the critical path of the cycle: nothing else starts before
prices.updated). No code path deletes daily_price rows (uploads and collections only upsert), so a
symbol with at least N closes on or before D still has them on or before any later date: once
counted, it need not be counted again for that date or a later one. Only the symbols not known to
be ample yet (new ones, thin ones, or an earlier as-of date) are counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date


class AmpleHistory:
    """Per threshold (rows), per symbol: the earliest as-of date on or before which the symbol was
    counted to hold at least that many closes."""

    def __init__(self) -> None:
        self._since: dict[int, dict[str, date]] = {}

    def is_ample(self, symbol: str, *, rows: int, up_to: date) -> bool:
        """True when `symbol` is known to hold at least `rows` closes on or before `up_to`."""
        since = self._since.get(rows, {}).get(symbol)
        return since is not None and since <= up_to

    def remember(self, symbols: Iterable[str], *, rows: int, up_to: date) -> None:
        """`symbols` were counted to hold at least `rows` closes on or before `up_to`."""
        known = self._since.setdefault(rows, {})
        for symbol in symbols:
            since = known.get(symbol)
            if since is None or up_to < since:
                known[symbol] = up_to

    def forget(self) -> None:
        """Drop everything learnt (after prices were deleted outside the service, e.g. by tests)."""
        self._since.clear()
