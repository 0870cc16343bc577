"""The `greeks` step: one vectorised batch over every option position in scope, stored per portfolio,
one greeks.computed per portfolio (also for books without options).

All portfolios are stored with one statement pair; a failure for one portfolio (its compute or its
writes) is then isolated by redoing it portfolio by portfolio, each in a savepoint, and reported in
that portfolio's event with step.status "failed"; the other portfolios are stored and reported as
usual. Transient database errors propagate so the bus redelivers the whole event.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from common import metrics
from common.db import is_transient_db_error
from common.errors import NotFound
from common.events import GreeksComputed, StepError, StepInfo
from common.formatting import utcnow
from common.jobs import JobFailed, JobOutcome
from common.service import Plumbing
from common.uow import Work
from greeks import bulk_store, repository
from greeks.inputs import Contract, MarketInputs, evaluate_contracts, load_market_inputs
from greeks.repository import OptionPosition
from greeks.settings import Settings

log = logging.getLogger(__name__)

CONTRACTS = metrics.counter("greeks", "contracts_computed", "Option contracts stored by the greeks step", ("status",))
STEP_SECONDS = metrics.histogram("greeks", "step_duration_seconds", "Duration of the greeks step", ("outcome",))

OK_STATUSES = ("ok", "expired")
FAILED_STATUSES = ("missing_inputs", "error")


@dataclass
class PortfolioOutcome:
    """What the step did for one portfolio."""

    portfolio_id: UUID
    status: str  # completed | failed
    records: int = 0
    ok: int = 0
    failed: int = 0
    error: StepError | None = None


def contract_from_position(p: OptionPosition) -> Contract:
    """A stored option position → a contract to evaluate."""
    return Contract(
        symbol=p.symbol,
        underlying=p.underlying_symbol,
        option_type=p.option_type,
        strike=p.strike_price,
        expiration_date=p.expiration_date,
        quantity=p.quantity,
        multiplier=int(p.multiplier) if p.multiplier else 100,
        position_id=p.id,
        portfolio_id=p.portfolio_id,
    )


def result_url(portfolio_id: UUID, as_of: date) -> str:
    """Where #29 serves the Greeks stored by a portfolio-mode calculation."""
    return f"/api/v1/risk/greeks?portfolio_id={portfolio_id}&as_of_date={as_of.isoformat()}"


@dataclass(frozen=True)
class StepInputs:
    """The option contracts held by a scope of portfolios and the market data they need; or the
    error that reading them raised (every portfolio then fails, as when read inside the step)."""

    contracts: list[Contract]
    market: MarketInputs | None
    error: BaseException | None = None
    by_portfolio: dict[UUID | None, list[Contract]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        grouped: dict[UUID | None, list[Contract]] = defaultdict(list)
        for c in self.contracts:
            grouped[c.portfolio_id].append(c)
        object.__setattr__(self, "by_portfolio", grouped)

    def for_portfolios(self, pids: Sequence[UUID]) -> tuple[list[Contract], MarketInputs]:
        """The contracts of `pids` (all of the scope or a part of it) and the shared market data."""
        if self.error is not None:
            raise self.error
        assert self.market is not None
        return [c for pid in pids for c in self.by_portfolio.get(pid, ())], self.market


class GreeksService:
    """Orchestrates the daily step, portfolio-mode jobs and clean-up."""

    @staticmethod
    async def load_inputs(session: AsyncSession, *, portfolio_ids: Sequence[UUID], as_of: date) -> StepInputs:
        """Contracts held by `portfolio_ids` on `as_of` and their market data, read once: the market
        queries scan by date range, so one read for the whole scope is far cheaper than one per chunk."""
        positions = await repository.option_positions_held(session, portfolio_ids=list(portfolio_ids), as_of=as_of)
        contracts = [contract_from_position(p) for p in positions]
        market = await load_market_inputs(
            session,
            as_of=as_of,
            underlyings={c.underlying for c in contracts},
            option_symbols={c.symbol for c in contracts},
        )
        return StepInputs(contracts, market)

    async def read_inputs(self, *, portfolio_ids: Sequence[UUID], as_of: date) -> StepInputs:
        """`load_inputs` in a read-only session of its own; a non-transient failure is returned, not raised."""
        try:
            async with self.plumbing.db.session() as session:
                return await self.load_inputs(session, portfolio_ids=portfolio_ids, as_of=as_of)
        except Exception as exc:
            if is_transient_db_error(exc):
                raise
            return StepInputs([], None, exc)

    def __init__(self, plumbing: Plumbing, settings: Settings) -> None:
        self.plumbing = plumbing
        self.settings = settings

    async def evaluate(
        self, contracts: list[Contract], market: MarketInputs, *, run_id: UUID | None = None
    ) -> list[dict[str, Any]]:
        """Records for `contracts`, computed in a worker thread (off the event loop)."""
        return await asyncio.to_thread(
            evaluate_contracts, contracts, market, run_id=run_id, workers=self.settings.compute_threads
        )

    async def _records_by_portfolio(
        self, contracts: list[Contract], market: MarketInputs, pids: Sequence[UUID], run_id: UUID | None
    ) -> tuple[dict[UUID, list[dict[str, Any]]], dict[UUID, BaseException]]:
        """One batch for everything; if it fails, retry portfolio by portfolio to isolate the culprit."""
        grouped: dict[UUID, list[dict[str, Any]]] = defaultdict(list)
        failures: dict[UUID, BaseException] = {}
        try:
            for rec in await self.evaluate(contracts, market, run_id=run_id):
                grouped[rec["portfolio_id"]].append(rec)
            return grouped, failures
        except Exception:
            log.exception("greeks batch failed on %s; isolating portfolios", market.as_of)
        grouped.clear()
        by_pid: dict[UUID, list[Contract]] = defaultdict(list)
        for c in contracts:
            by_pid[c.portfolio_id].append(c)  # type: ignore[index]
        for pid in pids:
            try:
                grouped[pid] = await self.evaluate(by_pid.get(pid, []), market, run_id=run_id)
            except Exception as exc:
                log.exception("greeks compute failed for portfolio %s", pid)
                failures[pid] = exc
        return grouped, failures

    async def compute_step(
        self,
        work: Work,
        *,
        portfolio_ids: Sequence[UUID] | None,
        as_of: date,
        run_id: UUID | None,
        cascade: bool,
        correlation_id: str | None,
        inputs: StepInputs | None = None,
    ) -> list[PortfolioOutcome]:
        """Compute, store and announce Greeks for every portfolio in scope inside `work` (with
        `inputs`, the contracts and market data already read for a wider scope: a chunk of it)."""
        started = utcnow()
        session = work.session
        pids = (
            list(dict.fromkeys(portfolio_ids))
            if portfolio_ids is not None
            else await repository.active_portfolio_ids(session)
        )
        log.info("computing greeks for %d portfolio(s) as of %s (run %s)", len(pids), as_of, run_id)
        grouped: dict[UUID, list[dict[str, Any]]] = {}
        failures: dict[UUID, BaseException] = {}
        try:
            if inputs is None:
                async with session.begin_nested():
                    inputs = await self.load_inputs(session, portfolio_ids=pids, as_of=as_of)
            contracts, market = inputs.for_portfolios(pids)
            grouped, failures = await self._records_by_portfolio(contracts, market, pids, run_id)
        except Exception as exc:
            if is_transient_db_error(exc):
                raise
            log.exception("greeks inputs could not be loaded for %s", as_of)
            failures = dict.fromkeys(pids, exc)

        failures.update(await self._store(session, pids, grouped, failures, as_of))
        outcomes: list[PortfolioOutcome] = []
        stored: Counter[str] = Counter()
        for pid in pids:
            records = grouped.get(pid, [])
            outcome = PortfolioOutcome(pid, "completed", records=len(records))
            problem: BaseException | None = failures.get(pid)
            if problem is not None:
                outcome = PortfolioOutcome(
                    pid,
                    "failed",
                    error=StepError(
                        code=type(problem).__name__, message=(str(problem) or type(problem).__name__)[:500]
                    ),
                )
            else:
                outcome.ok = sum(1 for r in records if r["status"] in OK_STATUSES)
                outcome.failed = sum(1 for r in records if r["status"] in FAILED_STATUSES)
            outcomes.append(outcome)
            work.emit(self._event(outcome, as_of, run_id, cascade, correlation_id, started))
            if outcome.status == "completed":
                stored.update(rec["status"] for rec in records)
        # One increment per status rather than one labelled lookup per contract (~6,000 a cycle).
        for status, count in stored.items():
            CONTRACTS.labels(status).inc(count)
        failed = any(o.status == "failed" for o in outcomes)
        STEP_SECONDS.labels("failed" if failed else "completed").observe((utcnow() - started).total_seconds())
        return outcomes

    @staticmethod
    async def _store(
        session: AsyncSession,
        pids: Sequence[UUID],
        grouped: dict[UUID, list[dict[str, Any]]],
        failures: dict[UUID, BaseException],
        as_of: date,
    ) -> dict[UUID, BaseException]:
        """Store every computed portfolio in one SAVEPOINT; if that raises, portfolio by portfolio (each
        in its own SAVEPOINT) so only the bad one fails. Returns the portfolios whose writes failed."""
        todo = [pid for pid in pids if pid not in failures]
        try:
            async with session.begin_nested():
                rows = [rec for pid in todo for rec in grouped.get(pid, [])]
                await bulk_store.replace_many(session, portfolio_ids=todo, calculation_date=as_of, rows=rows)
            return {}
        except Exception as exc:
            if is_transient_db_error(exc):
                raise
            log.warning("storing greeks in one batch failed on %s (%s); storing portfolio by portfolio", as_of, exc)
        failed: dict[UUID, BaseException] = {}
        for pid in todo:
            try:
                async with session.begin_nested():
                    await repository.replace_position_greeks(
                        session, portfolio_id=pid, calculation_date=as_of, rows=grouped.get(pid, [])
                    )
            except Exception as write_exc:
                if is_transient_db_error(write_exc):
                    raise
                log.exception("storing greeks failed for portfolio %s", pid)
                failed[pid] = write_exc
        return failed

    @staticmethod
    def _event(
        outcome: PortfolioOutcome,
        as_of: date,
        run_id: UUID | None,
        cascade: bool,
        correlation_id: str | None,
        started: datetime,
    ) -> GreeksComputed:
        return GreeksComputed(
            portfolio_id=outcome.portfolio_id,
            ok=outcome.ok,
            failed=outcome.failed,
            run_id=run_id,
            as_of=as_of,
            correlation_id=correlation_id,
            cascade=cascade,
            step=StepInfo(
                name="greeks",
                status="completed" if outcome.status == "completed" else "failed",
                started_at=started,
                finished_at=utcnow(),
                records_processed=outcome.records,
                error=outcome.error,
            ),
        )

    async def remove_portfolio(self, work: Work, portfolio_id: UUID) -> int:
        """Delete a removed portfolio's rows."""
        return await repository.delete_portfolio(work.session, portfolio_id=portfolio_id)

    async def run_portfolio_job(self, portfolio_id: UUID, as_of: date, correlation_id: str | None) -> JobOutcome:
        """Job greeks.calculate: compute and store one portfolio for as_of; greeks.computed with cascade=false."""
        async with self.plumbing.uow.begin() as work:
            if await repository.portfolio(work.session, portfolio_id=portfolio_id) is None:
                raise NotFound("PORTFOLIO")
            outcomes = await self.compute_step(
                work,
                portfolio_ids=[portfolio_id],
                as_of=as_of,
                run_id=None,
                cascade=False,
                correlation_id=correlation_id,
            )
        outcome = outcomes[0]
        if outcome.status == "failed":
            err = outcome.error
            raise JobFailed(err.message if err else "Greeks calculation failed", code="GREEKS_FAILED")
        return JobOutcome(
            status="completed",
            result={
                "portfolio_id": str(portfolio_id),
                "calculation_date": as_of.isoformat(),
                "option_positions": outcome.records,
                "ok": outcome.ok,
                "failed": outcome.failed,
            },
            result_url=result_url(portfolio_id, as_of),
        )
