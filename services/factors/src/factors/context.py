"""Shared context of the factors service: what every router, step and handler needs.

Built once in `factors.main.create_service` and handed to every router factory, e.g.
`app.include_router(create_factor_router(ctx))` (factor engine, `factors.api_factors`) and
`app.include_router(create_correlations_router(ctx))` (position correlations, `factors.api_correlations`).

Fields:
- `settings`: `factors.settings.Settings` (env prefix FACTORS_).
- `db`: `common.db.Database` (`async with ctx.db.session() as session` / `ctx.db.transaction()`).
- `bus`: the `common.bus.Bus` (publish only through the unit of work / outbox).
- `plumbing`: `common.service.Plumbing` (`ctx.plumbing.uow`, `ctx.plumbing.ledger` for 202 jobs,
  `ctx.plumbing.runner` to submit/wait jobs).

Step functions called by the per-portfolio orchestration (`factors.service`) take an open
`AsyncSession` (the caller owns the transaction), never the context, so a portfolio's factor
exposures and its position correlations are stored in one unit of work:
- `factors.correlation_service.compute_portfolio_correlations(session, *, portfolio_id, as_of,
  duration_days=90, filters=None, run_id=None) -> CorrelationOutcome(calculation_id, status, records, error)`
"""

from __future__ import annotations

from dataclasses import dataclass

from common.bus import Bus
from common.db import Database
from common.service import Plumbing
from factors.settings import Settings


@dataclass(frozen=True)
class FactorsContext:
    """Settings, database, bus and plumbing of one factors service instance."""

    settings: Settings
    db: Database
    bus: Bus
    plumbing: Plumbing
