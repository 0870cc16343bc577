"""Underlying factor betas of a run, read once per symbol instead of once per batch.

Every batch of the stress step read the betas of all its underlyings (`factors.api_underlying_beta`
on the model date); the batches of one run share most symbols, so that read and its decoding were
repeated ~30 times a cycle. Within a run the stored regressions do not change (`common.run_cache`),
so a symbol's pivoted row (betas over MODEL_FACTORS, regression flag) is kept for the run and later
batches read only symbols not seen yet. A symbol without any stored row is not kept: a later
factors batch of the run may still store it. Outside a run (run_id None) nothing is cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from uuid import UUID

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from common.run_cache import RunCache
from stress import stress_repository as repo
from stress.compute.scenarios import MODEL_FACTORS
from stress.scenarios_inputs import BetaTable

# (model date, symbol) → (betas over MODEL_FACTORS, NaN where none; beta_source = regression)
BetaRowCache = dict[tuple[date, str], tuple[np.ndarray, bool]]
_RUNS: RunCache[BetaRowCache] = RunCache()


async def beta_table(
    session: AsyncSession, symbols: Sequence[str], on: date, *, as_of: date, run_id: UUID | None
) -> BetaTable:
    """`BetaTable.from_rows(repo.underlying_betas(session, symbols, on), symbols)`, cached per run."""
    cache = _RUNS.get(as_of, run_id)
    if cache is None:
        if run_id is None:
            return BetaTable.from_rows(await repo.underlying_betas(session, symbols, on), symbols)
        cache = {}
        _RUNS.put(as_of, run_id, cache)
    missing = [s for s in symbols if (on, s) not in cache]
    if missing:
        rows = await repo.underlying_betas(session, missing, on)
        fresh = BetaTable.from_rows(rows, missing)
        stored = set(rows.symbol)
        for i, symbol in enumerate(missing):
            if symbol in stored:
                cache[(on, symbol)] = (fresh.betas[i], bool(fresh.regression[i]))
    empty = (np.full(len(MODEL_FACTORS), np.nan), False)
    entries = [cache.get((on, s), empty) for s in symbols]
    betas = np.array([e[0] for e in entries], dtype=np.float64).reshape(len(symbols), len(MODEL_FACTORS))
    regression = np.array([e[1] for e in entries], dtype=bool)
    return BetaTable(list(symbols), betas, regression)
