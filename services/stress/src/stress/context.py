"""Shared context of the stress service: what every router, step and handler needs.

Built once in `stress.main.create_service` and handed to every router factory:
`app.include_router(create_stress_router(ctx))` (scenario engineer: `stress.api_stress`) and
`app.include_router(create_risk_router(ctx))` (risk metrics #33: `stress.api_risk`).

Fields:
- `settings`: `stress.settings.Settings` (env prefix STRESS_).
- `db`: `common.db.Database` (`async with ctx.db.session() as session` / `ctx.db.transaction()`).
- `bus`: the `common.bus.Bus` (publish only through the unit of work / outbox).
- `plumbing`: `common.service.Plumbing` (`ctx.plumbing.uow`, `ctx.plumbing.ledger` for 202 jobs,
  `ctx.plumbing.runner` to submit/wait jobs).

Step functions called by the orchestration (`stress.handlers` → `stress.pipeline`) take an open
`AsyncSession` (the caller owns the transaction; each call runs inside its own SAVEPOINT, so an
exception rolls back only that part and is reported as a failed step), never the context:
- `stress.stress_service.compute_market_risk(session, *, portfolio_id, as_of, run_id)` (scenario
  engineer). The orchestration reads `outcome.status` ("completed" | "partial" | "failed") and
  `outcome.error` (a `common.events.StepError`, or None).
- `stress.stress_service.run_stress_tests(session, *, portfolio_id, as_of, trigger, categories,
  scenario_ids, run_id, job_id)` (scenario engineer). Read: `outcome.status`, `outcome.error`,
  `outcome.stress_run_id`, `outcome.partial`.
- Risk metrics (`stress.risk_service`) are computed for many portfolios at once after those.
The snapshot reads the worst stress result of the date from `stress.stress_run` / `stress_result`.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.bus import Bus
from common.db import Database
from common.service import Plumbing
from stress.settings import Settings


@dataclass(frozen=True)
class StressContext:
    """Settings, database, bus and plumbing of one stress service instance."""

    settings: Settings
    db: Database
    bus: Bus
    plumbing: Plumbing
