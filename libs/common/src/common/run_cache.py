"""Per-process values scoped to one batch run of one date (prices, betas read by every batch).

A run's steps start only after the market-data step has stored the run's prices (api.md §5.2), and
the once-per-date results built from them (factor model, regressions) are deterministic in those
prices, so within one run a value read once can serve every later batch of the same process. Events
outside a run (run_id None: an upload, an API call) are never cached. The last `size` runs are kept.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import date
from typing import Generic, TypeVar
from uuid import UUID

T = TypeVar("T")


class RunCache(Generic[T]):
    """An LRU of values keyed by (as_of, run_id)."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._values: OrderedDict[tuple[date, UUID], T] = OrderedDict()

    def get(self, as_of: date, run_id: UUID | None) -> T | None:
        """The value stored for this run, if any (None outside a run)."""
        if run_id is None:
            return None
        value = self._values.get((as_of, run_id))
        if value is not None:
            self._values.move_to_end((as_of, run_id))
        return value

    def put(self, as_of: date, run_id: UUID | None, value: T) -> None:
        """Keep `value` for this run (ignored outside a run); the oldest run beyond `size` is dropped."""
        if run_id is None:
            return
        self._values[(as_of, run_id)] = value
        self._values.move_to_end((as_of, run_id))
        while len(self._values) > self.size:
            self._values.popitem(last=False)
