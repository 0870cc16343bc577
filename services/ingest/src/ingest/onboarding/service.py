"""Onboarding of an uploaded portfolio (api.md §4.9): preview, validate, complete, retry.

`{id}` is the portfolio id. A portfolio stays in `onboarding` until #62 completes it: the request
runs the readiness checks (#61) and, when ready, marks the portfolio `active` and stages
`portfolio.updated` (`change: "onboarded"`) in the same transaction; marketdata then starts a
single-portfolio run. The `onboarding.complete` job follows that run until the first snapshot is
in `stress.api_snapshot` (`ingest.onboarding.completion`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from common.auth import Principal
from common.errors import Conflict, ServiceUnavailable
from common.formatting import iso_date, iso_datetime, utcnow
from common.jobs import JobOutcome
from ingest.access import PortfolioRef, resolve_portfolio
from ingest.context import IngestContext
from ingest.models_upload import COLLECTION_STEPS
from ingest.notifications.service import mail_enabled, record_onboarding_outcome
from ingest.onboarding import completion, market_reads, position_reads, progress_store
from ingest.onboarding.checks import Check, evaluate, ready
from ingest.onboarding.jobs import COMPLETE_JOB, RETRY_JOB
from ingest.onboarding.model import Holding, MarketData, symbols_needed
from ingest.onboarding.preview import preview, totals
from ingest.onboarding.preview_rows import collection_block, position_row, sort_positions, totals_block
from ingest.onboarding.retry import create_retry_job, recheck_steps
from ingest.upload import clock
from ingest.upload.errors import MarketDataUnavailable


@dataclass
class Evaluation:
    """Holdings, market data and checks of one portfolio at one moment."""

    rows: list[dict[str, Any]]
    holdings: list[Holding]
    market: MarketData
    checks: list[Check]
    steps: list[dict[str, Any]]

    @property
    def ready(self) -> bool:
        return ready(self.checks)

    def failing_checks(self) -> list[dict[str, Any]]:
        return [c.to_api() for c in self.checks if c.failing]


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
        return self._poll_seconds if self._poll_seconds is not None else completion.POLL_SECONDS

    @property
    def deadline_seconds(self) -> float:
        return self._deadline_seconds if self._deadline_seconds is not None else completion.DEADLINE_SECONDS

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
                rows = await position_reads.holdings(conn, portfolio_id)
                holdings = [position_reads.to_holding(r) for r in rows]
                market = await market_reads.market_data(conn, holdings, clock.eastern_today())
        except MarketDataUnavailable as exc:
            raise ServiceUnavailable(
                "Market data is unavailable; try again shortly", headers={"Retry-After": "5"}
            ) from exc
        step_rows = await progress_store.steps(self.db, portfolio_id)
        # A collection step being re-checked makes its checks `pending` rather than failed.
        running = frozenset(s["step"] for s in step_rows if s["status"] == "running" and s["step"] in COLLECTION_STEPS)
        return Evaluation(rows, holdings, market, evaluate(holdings, market, running), step_rows)

    # ------------------------------------------------------------------ #61 validate

    async def validate(self, principal: Principal, portfolio_id: UUID) -> dict[str, Any]:
        await self.portfolio(principal, portfolio_id)
        ev = await self.evaluate(portfolio_id)
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
        values = preview(ev.holdings, ev.market)
        positions = [
            position_row(row, h, ev.market, values, i)
            for i, (row, h) in enumerate(zip(ev.rows, ev.holdings, strict=True))
        ]
        positions = sort_positions(positions, sort)
        pool = await self.db.pool()
        async with pool.acquire() as conn:
            upload = await position_reads.creating_upload(conn, portfolio_id)
        outcome = (upload or {}).get("outcome") or {}
        data = {
            "portfolio_id": str(portfolio_id),
            "name": ref.name,
            "status": ref.status,
            "upload_id": None if upload is None else str(upload["id"]),
            "as_of": iso_date(ev.market.reference_date),
            "collection": collection_block(ev.steps),
            "totals": totals_block(totals(ev.holdings, values)),
            "tags": outcome.get("tags") or {"created": [], "reused": []},
            "positions": positions[offset : offset + limit],
        }
        return data, len(positions), ev.market.reference_date

    # ------------------------------------------------------------------ #62 complete

    async def complete(
        self, principal: Principal, portfolio_id: UUID, correlation_id: str | None
    ) -> tuple[dict[str, Any], bool]:
        """Run the checks; not ready → 409 NOT_READY; ready → activate, publish, start the job."""
        await self.portfolio(principal, portfolio_id)
        ev = await self.evaluate(portfolio_id)
        if not ev.ready:
            raise Conflict(
                "The portfolio is not ready to complete onboarding; fix the failing checks "
                "(POST /api/v1/portfolio/onboarding/{id}/retry re-checks data collection)",
                code="NOT_READY",
                details=ev.failing_checks(),
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
                "failing_checks": ev.failing_checks(),
            }
        job, _ = await self._start_completion(portfolio_id, owner, ev, correlation_id)
        public = self.plumbing.ledger.public_id(job["id"])
        return {"started": True, "job_id": public, "status_url": f"/api/v1/jobs/{public}"}

    async def _start_completion(
        self, portfolio_id: UUID, requested_by: UUID, ev: Evaluation, correlation_id: str | None
    ) -> tuple[dict[str, Any], bool]:
        symbols = symbols_needed(ev.holdings)
        job, deduplicated = await completion.start_completion(
            self.plumbing, portfolio_id, requested_by, symbols, ev.market, correlation_id
        )
        self.plumbing.runner.submit(job["id"], COMPLETE_JOB, self.run_completion)
        return job, deduplicated

    async def run_completion(self, job_id: UUID) -> JobOutcome:
        """The onboarding.complete job (`ingest.onboarding.completion.follow_first_run`); an end without a
        first snapshot notifies the owner."""
        outcome = await completion.follow_first_run(
            self.db, self.plumbing, job_id, poll_seconds=self.poll_seconds, deadline_seconds=self.deadline_seconds
        )
        if outcome.result and outcome.result.get("portfolio_id"):
            await record_onboarding_outcome(
                self.db, UUID(outcome.result["portfolio_id"]), outcome, mail=mail_enabled(self.ctx.settings)
            )
        return outcome

    # ------------------------------------------------------------------ #64 retry

    async def retry(
        self, principal: Principal, portfolio_id: UUID, steps: list[str] | None, symbols: list[str] | None
    ) -> tuple[dict[str, Any], bool]:
        """Re-check failed data-collection steps (async); 409 when nothing failed."""
        await self.portfolio(principal, portfolio_id)
        rows = await progress_store.steps(self.db, portfolio_id)
        failed = [r["step"] for r in rows if r["status"] == "failed" and r["step"] in COLLECTION_STEPS]
        chosen = [s for s in (steps or failed) if s in failed]
        if not chosen:
            raise Conflict(
                "Nothing to retry: no failed data-collection step" + (" among those requested" if steps else ""),
                details={"failed_steps": failed, "requested": steps or []},
            )
        job, deduplicated = await create_retry_job(self.plumbing, portfolio_id, principal.user_id, chosen, symbols)
        if not deduplicated:
            self.plumbing.runner.submit(job["id"], RETRY_JOB, self.run_retry)
        return job, deduplicated

    async def run_retry(self, job_id: UUID) -> JobOutcome:
        """The onboarding.retry job (`ingest.onboarding.retry.recheck_steps`)."""
        return await recheck_steps(self.db, self.plumbing, job_id)
