"""The stress step of the daily cycle (api.md §5.2): `factors.computed` in, `stress.computed` out.

For every portfolio of a batch, in one unit of work: market-risk scenarios and stress tests (the
scenario engineer's `stress.stress_service` functions, each inside its own SAVEPOINT), then the risk
metrics of all those portfolios at once (`stress.risk_service`). A part that fails rolls back alone,
marks its step failed and the other parts still run; every portfolio's `stress.computed` is
published whatever happened (api.md §5.3). `stress.computed` reports `stress_tests` in `step` and
`risk_scenarios` (market-risk scenarios + risk metrics) in `extra_steps`.

Single-step admin triggers arrive as `cycle.started` with steps[0] = "risk_scenarios" (market risk +
risk metrics) or "stress_tests" (stress tests, `params.categories` / `params.scenario_ids`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from common.db import is_transient_db_error
from common.events import CycleStarted, Event, FactorsComputed, StepError, StepInfo, StressComputed
from common.formatting import utcnow
from common.service import Plumbing
from stress import repository as snapshot_repo
from stress import risk_repository
from stress.risk_service import RiskMetricsEngine, RiskOutcome

log = logging.getLogger(__name__)

CONSUMER = "stress"
StepStatus = Literal["completed", "partial", "failed"]
# `fn(session, *, portfolio_ids, as_of, run_id, ...) -> {portfolio_id: outcome}` (stress.stress_service).
BatchFn = Callable[..., Awaitable[Mapping[UUID, Any]]]
# Error codes of deterministic, domain-level failures: re-running a portfolio alone cannot change them.
FINAL_ERROR_CODES = frozenset({"NOT_CALCULATED", "PORTFOLIO_NOT_FOUND", "NOT_TRADING_DAY"})
SINGLE_STEPS = ("risk_scenarios", "stress_tests")


@dataclass(frozen=True)
class PartOutcome:
    """One part (market risk or stress tests) of one portfolio's step."""

    status: StepStatus
    started_at: datetime
    finished_at: datetime
    error: StepError | None = None
    value: Any = None


@dataclass
class PortfolioOutcome:
    """The parts computed for one portfolio."""

    portfolio_id: UUID
    market: PartOutcome | None = None
    stress: PartOutcome | None = None
    risk: RiskOutcome | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def stress_run_id(self) -> UUID | None:
        value = self.stress.value if self.stress is not None else None
        run_id = getattr(value, "stress_run_id", None)
        return run_id if isinstance(run_id, UUID) else None

    def stress_step(self) -> StepInfo | None:
        if self.stress is None:
            return None
        s = self.stress
        return StepInfo(
            name="stress_tests",
            status=s.status,
            started_at=s.started_at,
            finished_at=s.finished_at,
            records_processed=1 if s.status != "failed" else 0,
            error=s.error,
        )

    def risk_scenarios_step(self) -> StepInfo | None:
        """Market-risk scenarios and risk metrics reported together as the `risk_scenarios` step."""
        parts: list[tuple[StepStatus, datetime, datetime, StepError | None]] = []
        if self.market is not None:
            parts.append((self.market.status, self.market.started_at, self.market.finished_at, self.market.error))
        if self.risk is not None:
            parts.append((self.risk.status, self.risk.started_at, self.risk.finished_at, self.risk.error))
        if not parts:
            return None
        statuses = [p[0] for p in parts]
        status: StepStatus
        if all(s == "failed" for s in statuses):
            status = "failed"
        elif all(s == "completed" for s in statuses):
            status = "completed"
        else:
            status = "partial"
        errors = [p[3] for p in parts if p[3] is not None]
        error = None
        if errors:
            error = StepError(code=errors[0].code, message="; ".join(e.message for e in errors)[:1000])
        return StepInfo(
            name="risk_scenarios",
            status=status,
            started_at=min(p[1] for p in parts),
            finished_at=max(p[2] for p in parts),
            records_processed=sum(1 for s in statuses if s != "failed"),
            error=error,
        )


def _status(value: Any) -> StepStatus:
    status = getattr(value, "status", "completed")
    if status == "partial":
        return "partial"
    if status == "failed":
        return "failed"
    return "completed" if status in ("completed", "ok", None) else "failed"


def _step_error(value: Any) -> StepError | None:
    error = getattr(value, "error", None)
    if error is None or isinstance(error, StepError):
        return error
    if isinstance(error, str):
        return StepError(code="STEP_FAILED", message=error[:1000])
    code = getattr(error, "code", None) or "STEP_FAILED"
    message = getattr(error, "message", None) or str(error)
    return StepError(code=str(code), message=str(message)[:1000])


def _part_outcome(value: Any, started: datetime) -> PartOutcome:
    """A scenario outcome (status, error, optional `step` with its own timestamps) as a PartOutcome."""
    step = getattr(value, "step", None)
    began = getattr(step, "started_at", None) or started
    finished = getattr(step, "finished_at", None) or utcnow()
    return PartOutcome(_status(value), began, finished, _step_error(value), value)


def _exception_error(exc: BaseException, code: str) -> StepError:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return StepError(code=str(getattr(exc, "code", None) or code), message=str(message)[:1000])


def _unexpected(error: StepError | None) -> bool:
    return error is None or error.code not in FINAL_ERROR_CODES


class StressPipeline:
    """Runs the stress step for batches of portfolios and announces each one's outcome."""

    def __init__(
        self,
        plumbing: Plumbing,
        risk: RiskMetricsEngine,
        *,
        market_risk: BatchFn,
        stress_tests: BatchFn,
    ) -> None:
        self.plumbing = plumbing
        self.risk = risk
        self.market_risk = market_risk
        self.stress_tests = stress_tests

    # -- bus entry points ---------------------------------------------------------------------

    async def on_factors_computed(self, events: list[FactorsComputed]) -> None:
        """A batch of cascading `factors.computed`: every part for each portfolio, then `stress.computed`."""
        wanted = [e for e in events if e.cascade]
        if not wanted:
            return
        async with self.plumbing.uow.for_events(CONSUMER, list(wanted)) as work:
            if work.duplicate:
                return
            fresh: list[FactorsComputed] = [e for e in work.fresh if isinstance(e, FactorsComputed)]
            groups: dict[tuple[date, UUID | None], list[FactorsComputed]] = defaultdict(list)
            for evt in fresh:
                groups[(evt.as_of, evt.run_id)].append(evt)
            for (as_of, run_id), group in groups.items():
                failed = frozenset(e.portfolio_id for e in group if e.step is not None and e.step.status == "failed")
                outcomes = await self.run_parts(
                    work.session,
                    as_of=as_of,
                    run_id=run_id,
                    portfolio_ids=[e.portfolio_id for e in group],
                    market=True,
                    stress=True,
                    upstream_failed=failed,
                )
                for evt in group:
                    work.emit(self.computed(evt, evt.portfolio_id, outcomes[evt.portfolio_id], main="stress_tests"))

    async def on_cycle_started(self, evt: CycleStarted) -> None:
        """Single-step triggers: `risk_scenarios` (market risk + risk metrics) or `stress_tests`."""
        if not evt.steps or evt.steps[0] not in SINGLE_STEPS:
            return
        step = evt.steps[0]
        async with self.plumbing.uow.for_event(CONSUMER, evt) as work:
            if work.duplicate:
                return
            ids = evt.portfolio_ids
            if ids is None:
                ids = await snapshot_repo.active_portfolio_ids(work.session)
            params = evt.params or {}
            outcomes = await self.run_parts(
                work.session,
                as_of=evt.as_of,
                run_id=evt.run_id,
                portfolio_ids=list(ids),
                # A cascading risk_scenarios trigger plans stress_tests too (api.md §4.1): run every
                # stress step the run lists, so each reports and the run can finish.
                market="risk_scenarios" in evt.steps,
                stress="stress_tests" in evt.steps,
                categories=params.get("categories"),
                scenario_ids=params.get("scenario_ids"),
            )
            for pid in sorted(set(ids)):
                work.emit(self.computed(evt, pid, outcomes[pid], main=step))

    async def purge(self, session: AsyncSession, portfolio_id: UUID) -> int:
        """Delete the risk metrics of a removed portfolio (the scenario rows are purged by their owner)."""
        return await risk_repository.delete_portfolio_metrics(session, portfolio_id)

    # -- orchestration ------------------------------------------------------------------------

    async def run_parts(
        self,
        session: AsyncSession,
        *,
        as_of: date,
        run_id: UUID | None,
        portfolio_ids: list[UUID],
        market: bool,
        stress: bool,
        categories: list[str] | None = None,
        scenario_ids: list[str] | None = None,
        upstream_failed: frozenset[UUID] = frozenset(),
    ) -> dict[UUID, PortfolioOutcome]:
        """Market risk and/or stress tests for all portfolios at once, then (with `market`, the
        `risk_scenarios` step) their risk metrics. Each part runs in a SAVEPOINT; when a batched part
        fails unexpectedly, its portfolios are re-run one by one so one bad book cannot sink the others."""
        ids = sorted(set(portfolio_ids))
        outcomes = {pid: PortfolioOutcome(pid) for pid in ids}
        if market:
            parts = await self._batched(
                session, "MARKET_RISK_FAILED", self.market_risk, ids, as_of=as_of, run_id=run_id
            )
            for pid in ids:
                outcomes[pid].market = parts[pid]
        if stress:
            parts = await self._batched(
                session,
                "STRESS_TESTS_FAILED",
                self.stress_tests,
                ids,
                as_of=as_of,
                trigger="batch",
                categories=categories,
                scenario_ids=scenario_ids,
                run_id=run_id,
                job_id=None,
            )
            for pid in ids:
                outcomes[pid].stress = parts[pid]
        if market:
            risk = await self._risk(session, ids, as_of, run_id, upstream_failed)
            for pid in ids:
                outcomes[pid].risk = risk[pid]
        return outcomes

    async def _batched(
        self, session: AsyncSession, code: str, fn: BatchFn, ids: list[UUID], **kwargs: Any
    ) -> dict[UUID, PartOutcome]:
        """`fn(session, portfolio_ids=ids, **kwargs)` → {pid: outcome}; unexpected failures are retried
        per portfolio (domain failures such as a missing factor model are final)."""
        started = utcnow()
        values: dict[UUID, Any] = {}
        batch_error: StepError | None = None
        try:
            async with session.begin_nested():
                values = dict(await fn(session, portfolio_ids=ids, **kwargs))
        except Exception as exc:
            if is_transient_db_error(exc):
                raise
            log.exception("stress step part %s failed for %d portfolio(s)", code, len(ids))
            batch_error = _exception_error(exc, code)
        out: dict[UUID, PartOutcome] = {}
        for pid in ids:
            value = values.get(pid)
            if value is None:
                error = batch_error or StepError(code=code, message="no outcome returned for the portfolio")
                out[pid] = PartOutcome("failed", started, utcnow(), error)
            else:
                out[pid] = _part_outcome(value, started)
        unexpected = [pid for pid in ids if out[pid].status == "failed" and _unexpected(out[pid].error)]
        if len(ids) > 1 and unexpected:
            for pid in unexpected:
                single = await self._batched(session, code, fn, [pid], **kwargs)
                out[pid] = single[pid]
        return out

    async def _risk(
        self,
        session: AsyncSession,
        ids: list[UUID],
        as_of: date,
        run_id: UUID | None,
        upstream_failed: frozenset[UUID],
    ) -> dict[UUID, RiskOutcome]:
        started = utcnow()
        try:
            async with session.begin_nested():
                return await self.risk.run(
                    session, as_of=as_of, run_id=run_id, portfolio_ids=ids, upstream_failed=upstream_failed
                )
        except Exception as exc:
            if is_transient_db_error(exc):
                raise
            log.exception("risk metrics on %s failed for %d portfolio(s)", as_of, len(ids))
            if len(ids) > 1:
                out: dict[UUID, RiskOutcome] = {}
                for pid in ids:
                    out.update(await self._risk(session, [pid], as_of, run_id, upstream_failed))
                return out
            error = _exception_error(exc, "RISK_METRICS_FAILED")
            return {pid: RiskOutcome(pid, "failed", started, utcnow(), error) for pid in ids}

    @staticmethod
    def computed(evt: Event, portfolio_id: UUID, outcome: PortfolioOutcome, *, main: str) -> StressComputed:
        """The `stress.computed` of one portfolio; `main` names the step reported in `step`."""
        stress_step = outcome.stress_step()
        risk_step = outcome.risk_scenarios_step()
        if main == "stress_tests":
            step, extra = stress_step, [s for s in (risk_step,) if s is not None]
        else:
            step, extra = risk_step, [s for s in (stress_step,) if s is not None]
        steps = [s for s in (step, *extra) if s is not None]
        stress_value = outcome.stress.value if outcome.stress is not None else None
        partial = any(s.status != "completed" for s in steps) or bool(getattr(stress_value, "partial", False))
        return StressComputed(
            portfolio_id=portfolio_id,
            stress_run_id=outcome.stress_run_id,
            partial=partial,
            step=step,
            extra_steps=extra,
            run_id=evt.run_id,
            as_of=evt.as_of,
            correlation_id=evt.correlation_id,
            cascade=evt.cascade,
        )
