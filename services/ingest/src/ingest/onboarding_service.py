"""Onboarding of an uploaded portfolio (api.md §4.9): preview, validate, complete, retry.

`{id}` is the portfolio id. A portfolio stays in `onboarding` until #62 completes it: the request
runs the readiness checks (#61) and, when ready, marks the portfolio `active` and stages
`portfolio.updated` (`change: "onboarded"`) in the same transaction; marketdata then starts a
single-portfolio run. The `onboarding.complete` job follows that run until the first snapshot is
in `stress.api_snapshot`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from common.auth import Principal
from common.errors import ApiError, Conflict, ServiceUnavailable
from common.events import PortfolioUpdated
from common.formatting import iso_date, iso_datetime, money, price, qty, stat, utcnow
from common.jobs import JOB_TIMEOUT_SECONDS, JobFailed, JobOutcome
from ingest import onboarding_compute as oc
from ingest import onboarding_repository as repo
from ingest.access import PortfolioRef, resolve_portfolio
from ingest.context import IngestContext
from ingest.models_upload import COLLECTION_STEPS
from ingest.upload_repository import MarketDataUnavailable
from ingest.upload_service import eastern_today

log = logging.getLogger(__name__)

COMPLETE_JOB = "onboarding.complete"
RETRY_JOB = "onboarding.retry"
POLL_SECONDS = 2.0
# The completion job stops following the run before the runner's 15-minute limit would fail it.
DEADLINE_SECONDS = JOB_TIMEOUT_SECONDS - 60
RUN_STATUS_TO_STEP = {
    "queued": "running",
    "running": "running",
    "completed": "completed",
    "partial": "completed",
    "failed": "failed",
    "cancelled": "failed",
}
SORTABLE = (
    "symbol",
    "market_value",
    "dollar_exposure",
    "notional",
    "unrealized_pnl",
    "unrealized_pnl_pct",
    "daily_pnl",
    "weight",
    "entry_date",
    "expiration_date",
)


def portfolio_url(portfolio_id: UUID) -> str:
    return f"/api/v1/portfolio?portfolio_id={portfolio_id}"


def preview_url(portfolio_id: UUID) -> str:
    return f"/api/v1/portfolio/onboarding/{portfolio_id}/preview"


@dataclass
class Evaluation:
    """Holdings, market data and checks of one portfolio at one moment."""

    rows: list[dict[str, Any]]
    holdings: list[oc.Holding]
    market: oc.MarketData
    checks: list[oc.Check]
    steps: list[dict[str, Any]]

    @property
    def ready(self) -> bool:
        return oc.ready(self.checks)


class OnboardingService:
    """Onboarding routes' logic and the two onboarding jobs."""

    def __init__(
        self, ctx: IngestContext, *, poll_seconds: float | None = None, deadline_seconds: float | None = None
    ) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.plumbing = ctx.plumbing
        self._poll_seconds = poll_seconds
        self._deadline_seconds = deadline_seconds

    @property
    def poll_seconds(self) -> float:
        return self._poll_seconds if self._poll_seconds is not None else POLL_SECONDS

    @property
    def deadline_seconds(self) -> float:
        return self._deadline_seconds if self._deadline_seconds is not None else DEADLINE_SECONDS

    # ------------------------------------------------------------------ shared

    async def portfolio(self, principal: Principal, portfolio_id: UUID, *, onboarding: bool = True) -> PortfolioRef:
        """The caller's portfolio (404 otherwise); 409 INVALID_STATE unless it is in onboarding."""
        ref = await resolve_portfolio(self.db, principal, portfolio_id)
        if onboarding and ref.status != "onboarding":
            raise Conflict(
                f"Portfolio is {ref.status}, not in onboarding",
                details={"portfolio_id": str(portfolio_id), "status": ref.status},
            )
        return ref

    async def evaluate(self, portfolio_id: UUID) -> Evaluation:
        pool = await self.db.pool()
        try:
            async with pool.acquire() as conn:
                rows = await repo.holdings(conn, portfolio_id)
                holdings = [repo.to_holding(r) for r in rows]
                market = await repo.market_data(conn, holdings, eastern_today())
        except MarketDataUnavailable as exc:
            raise ServiceUnavailable(
                "Market data is unavailable; try again shortly", headers={"Retry-After": "5"}
            ) from exc
        step_rows = await repo.steps(self.db, portfolio_id)
        running = frozenset(s["step"] for s in step_rows if s["status"] == "running" and s["step"] in COLLECTION_STEPS)
        return Evaluation(rows, holdings, market, oc.evaluate(holdings, market, running), step_rows)

    # ------------------------------------------------------------------ #61 validate

    async def validate(self, principal: Principal, portfolio_id: UUID) -> dict[str, Any]:
        await self.portfolio(principal, portfolio_id)
        ev = await self.evaluate(portfolio_id)
        return self._report(portfolio_id, ev)

    def _report(self, portfolio_id: UUID, ev: Evaluation) -> dict[str, Any]:
        return {
            "portfolio_id": str(portfolio_id),
            "ready": ev.ready,
            "checked_at": iso_datetime(utcnow()),
            "as_of": iso_date(ev.market.reference_date),
            "checks": [c.to_api() for c in ev.checks],
        }

    # ------------------------------------------------------------------ #63 preview

    async def preview(
        self, principal: Principal, portfolio_id: UUID, *, limit: int, offset: int, sort: list[tuple[str, bool]]
    ) -> tuple[dict[str, Any], int, date]:
        ref = await self.portfolio(principal, portfolio_id)
        ev = await self.evaluate(portfolio_id)
        values = oc.preview(ev.holdings, ev.market)
        positions = [self._position(ev, values, i) for i in range(len(ev.holdings))]
        positions = _sort(positions, sort)
        pool = await self.db.pool()
        async with pool.acquire() as conn:
            upload = await repo.creating_upload(conn, portfolio_id)
        outcome = (upload or {}).get("outcome") or {}
        totals = oc.totals(ev.holdings, values)
        order = {s: i for i, s in enumerate(COLLECTION_STEPS)}
        collection = sorted(
            (
                {
                    "step": s["step"],
                    "status": s["status"],
                    "attempts": int(s["attempts"]),
                    "last_error": s["last_error"],
                }
                for s in ev.steps
                if s["step"] in order
            ),
            key=lambda s: order[str(s["step"])],
        )
        data = {
            "portfolio_id": str(portfolio_id),
            "name": ref.name,
            "status": ref.status,
            "upload_id": None if upload is None else str(upload["id"]),
            "as_of": iso_date(ev.market.reference_date),
            "collection": collection,
            "totals": {
                "positions": totals["positions"],
                "by_type": totals["by_type"],
                "market_value": {k: money(v) for k, v in totals["market_value"].items()},
                "cost_basis": money(totals["cost_basis"]),
                "priced_with_entry": totals["priced_with_entry"],
            },
            "tags": outcome.get("tags") or {"created": [], "reused": []},
            "positions": positions[offset : offset + limit],
        }
        return data, len(positions), ev.market.reference_date

    def _position(self, ev: Evaluation, v: oc.PreviewValues, i: int) -> dict[str, Any]:
        row, h, market = ev.rows[i], ev.holdings[i], ev.market
        own = market.resolve(h.symbol)
        und = market.resolve(h.underlying_symbol)
        is_option = h.instrument_type == "option"
        days = (h.expiration_date - market.reference_date).days if h.expiration_date is not None else None
        return {
            "id": str(row["id"]),
            "portfolio_id": str(row["portfolio_id"]),
            "symbol": h.symbol,
            "instrument_type": h.instrument_type,
            "security_type": "option" if is_option else (own.security_type if own else None),
            "position_type": h.position_type,
            "quantity": qty(h.quantity),
            "multiplier": h.multiplier,
            "underlying_symbol": h.underlying_symbol,
            "option": (
                {
                    "option_type": h.option_type,
                    "strike_price": price(h.strike_price),
                    "expiration_date": iso_date(h.expiration_date),
                    "days_to_expiry": days,
                }
                if is_option
                else None
            ),
            "entry_price": price(h.entry_price),
            "entry_date": iso_date(h.entry_date),
            "cost_basis": money(v.cost_basis[i]),
            "last_price": price(v.last_price[i]),
            "price_date": iso_date(v.price_date[i]),
            "price_source": v.price_source[i],
            "priced_with": v.priced_with[i],
            "underlying_price": price(v.underlying_price[i]),
            "market_value": money(v.market_value[i]),
            "dollar_exposure": money(v.dollar_exposure[i]),
            "notional": money(v.notional[i]),
            "unrealized_pnl": money(v.unrealized_pnl[i]),
            "unrealized_pnl_pct": stat(v.unrealized_pnl_pct[i]),
            "daily_pnl": None,
            "weight": stat(v.weight[i]),
            "name": (own.name if own and not is_option else (und.name if und else None)),
            "sector": und.sector if und else None,
            "industry": und.industry if und else None,
            "tags": row["tags"],
            "greeks": None,
            "status": row["status"],
            "realized_pnl": money(row["realized_pnl"]),
            "created_at": iso_datetime(row["created_at"]),
            "updated_at": iso_datetime(row["updated_at"]),
            "issues": v.issues[i],
        }

    # ------------------------------------------------------------------ #62 complete

    async def complete(
        self, principal: Principal, portfolio_id: UUID, correlation_id: str | None
    ) -> tuple[dict[str, Any], bool]:
        """Run the checks; not ready → 409 NOT_READY; ready → activate, publish, start the job."""
        await self.portfolio(principal, portfolio_id)
        ev = await self.evaluate(portfolio_id)
        if not ev.ready:
            failing = [c.to_api() for c in ev.checks if c.failing]
            raise Conflict(
                "The portfolio is not ready to complete onboarding; fix the failing checks "
                "(POST /api/v1/portfolio/onboarding/{id}/retry re-checks data collection)",
                code="NOT_READY",
                details=failing,
                hint=f"POST /api/v1/portfolio/onboarding/{portfolio_id}/validate",
            )
        return await self._start_completion(portfolio_id, principal.user_id, ev, correlation_id)

    async def auto_complete(self, portfolio_id: UUID, owner: UUID, correlation_id: str | None) -> dict[str, Any]:
        """`auto_complete=true` uploads: complete at once when no check blocks; else report why not."""
        ev = await self.evaluate(portfolio_id)
        if not ev.ready:
            return {
                "started": False,
                "reason": "validation has blocking issues",
                "failing_checks": [c.to_api() for c in ev.checks if c.failing],
            }
        job, _ = await self._start_completion(portfolio_id, owner, ev, correlation_id)
        public = self.plumbing.ledger.public_id(job["id"])
        return {"started": True, "job_id": public, "status_url": f"/api/v1/jobs/{public}"}

    async def _start_completion(
        self, portfolio_id: UUID, requested_by: UUID, ev: Evaluation, correlation_id: str | None
    ) -> tuple[dict[str, Any], bool]:
        symbols = oc.symbols_needed(ev.holdings)
        async with self.plumbing.uow.begin() as work:
            if not await repo.activate(work.session, portfolio_id):
                raise Conflict(
                    "Portfolio is no longer in onboarding",
                    details={"portfolio_id": str(portfolio_id)},
                )
            job, deduplicated = await self.plumbing.ledger.create(
                work.session,
                job_type=COMPLETE_JOB,
                requested_by=requested_by,
                scope={"portfolio_id": str(portfolio_id)},
                request={"correlation_id": correlation_id, "symbols": symbols},
                ident=uuid.uuid4(),
                result_url=portfolio_url(portfolio_id),
                steps=[{"name": "initial_run", "status": "running"}, {"name": "first_snapshot", "status": "pending"}],
            )
            await repo.set_step(work.session, portfolio_id, "initial_run", "running")
            await repo.set_step(work.session, portfolio_id, "first_snapshot", "pending")
            work.emit(
                PortfolioUpdated(
                    as_of=ev.market.reference_date,
                    portfolio_id=portfolio_id,
                    change="onboarded",
                    symbols=symbols,
                    trigger="onboarding",
                    correlation_id=correlation_id,
                )
            )
        self.plumbing.runner.submit(job["id"], COMPLETE_JOB, self.run_completion)
        return job, deduplicated

    async def run_completion(self, job_id: UUID) -> JobOutcome:
        """The onboarding.complete job: follow the initial run until the first snapshot exists."""
        async with self.db.session() as session:
            job = await self.plumbing.ledger.get(session, job_id)
        if job is None:
            raise JobFailed("job not found", code="JOB_NOT_FOUND")
        portfolio_id = UUID(job["scope"]["portfolio_id"])
        since = job["created_at"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.deadline_seconds
        last: tuple[str, str, str | None, str | None] | None = None
        pool = await self.db.pool()
        while True:
            async with pool.acquire() as conn:
                snapshot = await repo.first_snapshot_date(conn, portfolio_id)
                run = await repo.onboarding_run(conn, portfolio_id, since)
            run_step = (
                "completed" if snapshot else RUN_STATUS_TO_STEP.get(run["status"], "running") if run else "running"
            )
            snap_step = "completed" if snapshot else "pending"
            state = (
                run_step,
                snap_step,
                None if run is None else str(run["id"]),
                None if run is None else run["status"],
            )
            if state != last:
                await self._record(job_id, portfolio_id, run_step, snap_step, run)
                last = state
            result = {
                "portfolio_id": str(portfolio_id),
                "status": "active",
                "run_id": None if run is None else str(run["id"]),
                "run_status": None if run is None else run["status"],
                "first_snapshot_date": iso_date(snapshot),
            }
            if snapshot is not None:
                return JobOutcome("completed", result, portfolio_url(portfolio_id))
            if run is not None and run_step == "failed":
                result["message"] = (
                    f"the initial run {run['status']}; the portfolio is active and the next daily run "
                    "will compute its analytics"
                )
                await self._record(job_id, portfolio_id, "failed", "pending", run, error=result["message"])
                return JobOutcome("partial", result, portfolio_url(portfolio_id))
            if loop.time() >= deadline:
                result["message"] = (
                    f"no snapshot within {int(self.deadline_seconds // 60)} min; the portfolio is active and "
                    "its first run continues in the background"
                )
                await self._record(job_id, portfolio_id, run_step, "pending", run, error=result["message"])
                return JobOutcome("partial", result, portfolio_url(portfolio_id))
            await asyncio.sleep(self.poll_seconds)

    async def _record(
        self,
        job_id: UUID,
        portfolio_id: UUID,
        run_step: str,
        snap_step: str,
        run: dict[str, Any] | None,
        error: str | None = None,
    ) -> None:
        details = None if run is None else {"run_id": str(run["id"]), "run_status": run["status"]}
        pct = {"running": 30, "completed": 70, "failed": 90}.get(run_step, 30)
        async with self.db.transaction() as session:
            await repo.set_step(session, portfolio_id, "initial_run", run_step, details=details)
            await repo.set_step(session, portfolio_id, "first_snapshot", snap_step, last_error=error)
            await self.plumbing.ledger.update(
                session,
                job_id,
                steps=[{"name": "initial_run", "status": run_step}, {"name": "first_snapshot", "status": snap_step}],
                progress_pct=100 if snap_step == "completed" else pct,
                progress_step="first_snapshot" if run_step == "completed" else "initial_run",
                progress_message=error or "",
            )

    # ------------------------------------------------------------------ #64 retry

    async def retry(
        self, principal: Principal, portfolio_id: UUID, steps: list[str] | None, symbols: list[str] | None
    ) -> tuple[dict[str, Any], bool]:
        """Re-check failed data-collection steps (async); 409 when nothing failed."""
        await self.portfolio(principal, portfolio_id)
        rows = await repo.steps(self.db, portfolio_id)
        failed = [r["step"] for r in rows if r["status"] == "failed" and r["step"] in COLLECTION_STEPS]
        chosen = [s for s in (steps or failed) if s in failed]
        if not chosen:
            raise Conflict(
                "Nothing to retry: no failed data-collection step" + (" among those requested" if steps else ""),
                details={"failed_steps": failed, "requested": steps or []},
            )
        async with self.plumbing.uow.begin() as work:
            job, deduplicated = await self.plumbing.ledger.create(
                work.session,
                job_type=RETRY_JOB,
                requested_by=principal.user_id,
                scope={"portfolio_id": str(portfolio_id)},
                request={"steps": chosen, "symbols": symbols},
                ident=uuid.uuid4(),
                result_url=preview_url(portfolio_id),
            )
            if not deduplicated:
                await repo.mark_steps_running(work.session, portfolio_id, chosen)
        if not deduplicated:
            self.plumbing.runner.submit(job["id"], RETRY_JOB, self.run_retry)
        return job, deduplicated

    async def run_retry(self, job_id: UUID) -> JobOutcome:
        """The onboarding.retry job: recompute the chosen steps from what marketdata holds now."""
        async with self.db.session() as session:
            job = await self.plumbing.ledger.get(session, job_id)
        if job is None:
            raise JobFailed("job not found", code="JOB_NOT_FOUND")
        portfolio_id = UUID(job["scope"]["portfolio_id"])
        request = job.get("request") or {}
        chosen: list[str] = request.get("steps") or list(COLLECTION_STEPS)
        symbols = {s.strip().upper() for s in request.get("symbols") or [] if s.strip()}
        previous = {r["step"]: r for r in await repo.steps(self.db, portfolio_id)}
        try:
            pool = await self.db.pool()
            async with pool.acquire() as conn:
                holdings = [repo.to_holding(r) for r in await repo.holdings(conn, portfolio_id)]
                market = await repo.market_data(conn, holdings, eastern_today())
        except MarketDataUnavailable as exc:
            async with self.db.transaction() as session:
                for step in chosen:
                    await repo.set_step(session, portfolio_id, step, "failed", last_error="market data unavailable")
            raise ApiError(
                "market data is unavailable", code="SERVICE_UNAVAILABLE", status=503, retryable=True
            ) from exc
        states = oc.collection_steps(holdings, market, only=chosen)
        if symbols:
            states = [_restrict(s, previous.get(s.step), symbols) for s in states]
        async with self.db.transaction() as session:
            await repo.write_steps(session, portfolio_id, states)
        result = {
            "portfolio_id": str(portfolio_id),
            "steps": [{"step": s.step, "status": s.status, "last_error": s.last_error} for s in states],
        }
        return JobOutcome("completed", result, preview_url(portfolio_id))


def _restrict(state: oc.StepState, previous: dict[str, Any] | None, symbols: set[str]) -> oc.StepState:
    """Re-check only `symbols`: symbols outside the set keep their previous failure."""
    keys = {"security_master": "unknown", "current_prices": "missing", "price_history": "short"}
    key = keys.get(state.step)
    if key is None or previous is None:
        return state
    before = set((previous.get("details") or {}).get(key) or [])
    now = set(state.details.get(key) or [])
    merged = sorted((before - symbols) | (now & symbols))
    details = {**state.details, key: merged}
    if merged:
        return oc.StepState(state.step, "failed", f"{key.replace('_', ' ')}: {', '.join(merged)}", details)
    return oc.StepState(state.step, "completed", None, details)


def _sort(positions: list[dict[str, Any]], spec: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    """Stable multi-key sort (None last), `id` as the final tiebreaker (api.md §2.8)."""
    out = sorted(positions, key=lambda p: p["id"])
    for field, desc in reversed(spec):
        present = [p for p in out if _key(p, field) is not None]
        missing = [p for p in out if _key(p, field) is None]
        present.sort(key=lambda p, f=field: _key(p, f), reverse=desc)  # type: ignore[misc]
        out = present + missing
    return out


def _key(p: dict[str, Any], field: str) -> Any:
    if field == "expiration_date":
        return (p.get("option") or {}).get("expiration_date")
    value = p.get(field)
    if value is None:
        return None
    if field in ("market_value", "dollar_exposure", "notional", "unrealized_pnl", "daily_pnl"):
        return Decimal(value)
    return value
