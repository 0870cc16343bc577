"""The stored regressions of one run's date, read from the database once per symbol per process.

Every batch of a daily run needs the betas of its underlyings; the batches of 1,000 portfolios share
most of their 2,000 underlyings, so reading them per batch read the same rows ~16 times. Within a run
the regressions of its date are fixed (common.run_cache explains why), so a symbol read once serves
the later batches; only symbols not yet seen are read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from factors.repository import StoredBetas


@dataclass
class RunBetas:
    """Regression rows by symbol (one date, one ordered list of factor codes)."""

    codes: tuple[str, ...]
    beta: dict[str, np.ndarray] = field(default_factory=dict)  # (F,) per symbol, NaN when NULL
    meta: dict[str, tuple[str, str, int, list[str]]] = field(default_factory=dict)  # source, quality, n, flags

    def missing(self, symbols: Sequence[str]) -> list[str]:
        """Symbols never read (or read without a regression row) in this run."""
        return [s for s in symbols if s not in self.beta]

    def add(self, stored: StoredBetas) -> None:
        """Keep the rows of a database read (same codes)."""
        for i, symbol in enumerate(stored.symbols):
            self.beta[symbol] = stored.beta[i]
            self.meta[symbol] = (stored.beta_source[i], stored.quality[i], stored.observations[i], stored.flags[i])

    def select(self, symbols: Sequence[str]) -> StoredBetas:
        """The StoredBetas of those of `symbols` that have a regression row."""
        present = [s for s in symbols if s in self.beta]
        meta = [self.meta[s] for s in present]
        beta = np.vstack([self.beta[s] for s in present]) if present else np.zeros((0, len(self.codes)))
        return StoredBetas(
            symbols=present,
            codes=list(self.codes),
            beta=beta,
            beta_source=[m[0] for m in meta],
            quality=[m[1] for m in meta],
            observations=[m[2] for m in meta],
            flags=[list(m[3]) for m in meta],
        )
