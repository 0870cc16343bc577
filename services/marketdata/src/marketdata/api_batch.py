"""Admin batch endpoints (api.md §4.1 #9–#20; admin only, 403 FORBIDDEN otherwise).

Triggers answer 202 JobAccepted (`job_id = mkt_<run_id>`, plus `run_id` and planned `steps`),
with `Location` = status URL and `Retry-After: 2`; `Prefer: wait=N` (N ≤ 10) answers 200 with the
run status (#18 for that run) when the run finishes in time. Step-specific body fields
(`categories` of #15, `duration_days` of #17) travel in the run's `params` on `cycle.started`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from common.api import check_limit, envelope, page_block, parse_bool, parse_enum_multi, parse_sort
from common.auth import Principal, require_admin
from common.errors import ValidationFailed
from common.events import STEP_NAMES
from common.formatting import utcnow
from common.ids import parse_job_id
from common.jobs import prefer_wait_seconds
from marketdata.backfill import wait_for_run
from marketdata.batch_compute import JOB_RUN_STATUSES, PIPELINE_STEPS, TERMINAL_RUN_STATUSES, TRIGGERS
from marketdata.batch_schemas import (
    BatchHistoryResponse,
    BatchRunAcceptedResponse,
    BatchScheduleResponse,
    BatchStatusResponse,
)
from marketdata.batch_service import start_run, status_url
from marketdata.batch_views import HISTORY_SORTS, HistoryQuery, history, schedule_items, status_payload
from marketdata.context import MarketDataContext

TAG = "batch admin"
MAX_LOOKBACK_DAYS = 1260
_SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-^]{0,20}$")

COMMON_FIELDS_DOC = (
    "Body (every field optional): `portfolio_ids` (uuid[], default all active portfolios, resolved when "
    "the run is created), `as_of_date` (NYSE trading day, default the latest completed trading day with "
    "market data; not in the future), `cascade` (also run the downstream steps), `force` (re-run work "
    "already completed for this date; never two identical runs at once). An identical queued/running "
    "run, or an identical completed one without `force`, is returned with `deduplicated: true`. "
    "Errors: 403 FORBIDDEN, 404 PORTFOLIO_NOT_FOUND (any listed id), 422 `as_of_date` not a trading "
    "day or in the future."
)


# --- request bodies ----------------------------------------------------------------------------


class BatchTriggerBody(BaseModel):
    """Body shared by every batch trigger (api.md §4.1)."""

    model_config = ConfigDict(extra="forbid")
    portfolio_ids: list[UUID] | None = Field(
        None, min_length=1, max_length=10_000, description="Scope; omit for every active portfolio"
    )
    as_of_date: date | None = Field(None, description="Business date; default latest completed trading day")
    cascade: bool = Field(False, description="Single-step triggers: also run the downstream steps")
    force: bool = Field(False, description="Re-run work already completed for this date")


class RunAllBody(BatchTriggerBody):
    """#9 body; `cascade` is implied (the whole sequence runs)."""

    include_correlations: bool = Field(
        True, description="Run the position-correlations step (default true; they run daily)"
    )


StressCategory = Literal["market", "rates", "rotation", "volatility", "historical"]


class StressTestsBody(BatchTriggerBody):
    """#15 body: optionally only some catalogue categories."""

    categories: list[StressCategory] | None = Field(
        None, min_length=1, description="Scenario categories to run (default: every active scenario)"
    )

    @field_validator("categories")
    @classmethod
    def _distinct(cls, value: list[StressCategory] | None) -> list[StressCategory] | None:
        # Sorted and de-duplicated so equal requests hash to the same run scope.
        return sorted(set(value)) if value is not None else None


class CorrelationsBody(BatchTriggerBody):
    """#17 body: the position-correlation window."""

    duration_days: int = Field(90, ge=30, le=252, description="Trading days of returns (30–252)")


class MarketDataBody(BatchTriggerBody):
    """#10 body; `portfolio_ids` is ignored (market data is market-wide)."""

    symbols: list[str] | None = Field(None, description="Default: every held symbol, factor ETFs and SPY")
    lookback_days: int = Field(5, ge=1, le=MAX_LOOKBACK_DAYS, description="Trading days re-fetched (1–1,260)")

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out: list[str] = []
        for raw in value:
            symbol = raw.strip().upper()
            if not _SYMBOL_RE.match(symbol):
                raise ValueError(f"invalid symbol {raw!r}")
            if symbol not in out:
                out.append(symbol)
        if not out:
            raise ValueError("must list at least one symbol (omit the field for all held symbols)")
        return out


# --- helpers -----------------------------------------------------------------------------------


def _parse_run_id(value: str | None, field: str = "query.run_id") -> UUID | None:
    if value is None or value == "":
        return None
    parsed = parse_job_id(value)
    if parsed is not None:
        if parsed[0] != "marketdata":
            raise ValidationFailed.field(field, "must be a run id or an mkt_ job id", value)
        return parsed[1]
    try:
        return UUID(value)
    except ValueError as exc:
        raise ValidationFailed.field(field, "must be a run id or an mkt_ job id", value) from exc


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def create_batch_router(ctx: MarketDataContext) -> APIRouter:
    """The admin batch routes bound to `ctx`."""
    router = APIRouter(tags=[TAG])

    async def trigger(
        request: Request,
        principal: Principal,
        prefer: str | None,
        *,
        job_name: str,
        body: BatchTriggerBody,
        params: dict[str, Any],
        portfolio_ids: list[UUID] | None,
        cascade: bool,
        include_correlations: bool = True,
    ) -> Response:
        started = await start_run(
            ctx,
            job_name=job_name,
            trigger="manual",
            requested_by=principal.user_id,
            as_of_date=body.as_of_date,
            portfolio_ids=portfolio_ids,
            cascade=cascade,
            force=body.force,
            params=params,
            include_correlations=include_correlations,
            request=body.model_dump(mode="json"),
        )
        run = started.run
        as_of = run["as_of_date"].isoformat()
        wait = prefer_wait_seconds(prefer)
        if wait > 0:
            status = await wait_for_run(ctx, run["id"], wait)
            if status in TERMINAL_RUN_STATUSES:
                data = await status_payload(ctx, run_id=run["id"], portfolio_id=None, now=utcnow())
                return envelope(data, request=request, as_of=as_of)
        accepted = ctx.plumbing.ledger.accepted(
            started.job, started.deduplicated, run_id=str(run["id"]), steps=list(run["steps"])
        )
        return envelope(
            accepted,
            request=request,
            status=202,
            headers={"Location": status_url(run["id"]), "Retry-After": "2"},
            as_of=as_of,
        )

    accepted_responses: dict[int | str, dict[str, Any]] = {
        202: {"model": BatchRunAcceptedResponse, "description": "Run created (or an identical one reused)"},
        200: {"model": BatchStatusResponse, "description": "With `Prefer: wait=N`: the run finished in time"},
    }

    @router.post(
        "/api/v1/admin/batch/run-all",
        status_code=202,
        summary="Run the whole daily sequence",
        description=(
            "Creates a run of every step in order: " + " → ".join(PIPELINE_STEPS) + " (each step starts on the "
            "previous step's event). `include_correlations: false` leaves the position-correlations step out. "
            + COMMON_FIELDS_DOC
        ),
        responses=accepted_responses,
        response_model=None,
    )
    async def run_all(
        request: Request,
        body: RunAllBody | None = Body(None),
        prefer: str | None = Header(None),
        principal: Principal = Depends(require_admin),
    ) -> Response:
        body = body or RunAllBody()
        return await trigger(
            request,
            principal,
            prefer,
            job_name="run_all",
            body=body,
            params={"include_correlations": body.include_correlations},
            portfolio_ids=body.portfolio_ids,
            cascade=True,
            include_correlations=body.include_correlations,
        )

    @router.post(
        "/api/v1/admin/batch/market-data",
        status_code=202,
        summary="Collect end-of-day market data",
        description=(
            "Single-step run of `market_data`: daily prices (per share, 4 dp) for `symbols` (default every held "
            "symbol and underlying, the factor ETFs and SPY) over the last `lookback_days` trading days (1–1,260; "
            "larger values back-fill history), the Treasury rate series (fractions: 0.0402 = 4.02 %), and "
            "security-master records for new symbols. `portfolio_ids` is ignored: the scope of the downstream "
            "steps (with `cascade`) is every active portfolio. " + COMMON_FIELDS_DOC
        ),
        responses=accepted_responses,
        response_model=None,
    )
    async def market_data(
        request: Request,
        body: MarketDataBody | None = Body(None),
        prefer: str | None = Header(None),
        principal: Principal = Depends(require_admin),
    ) -> Response:
        body = body or MarketDataBody()
        params: dict[str, Any] = {"lookback_days": body.lookback_days}
        if body.symbols is not None:
            params["symbols"] = body.symbols
        return await trigger(
            request,
            principal,
            prefer,
            job_name="market_data",
            body=body,
            params=params,
            portfolio_ids=None,
            cascade=body.cascade,
        )

    def single_step(
        step: str,
        path: str,
        summary: str,
        what: str,
        body_model: type[BatchTriggerBody] = BatchTriggerBody,
        params_of: Any = None,
    ) -> None:
        """Register a single-step trigger; `params_of(body) -> dict` extracts the step's extra fields."""

        async def endpoint(
            request: Request,
            body: Any = Body(None),
            prefer: str | None = Header(None),
            principal: Principal = Depends(require_admin),
        ) -> Response:
            body = body or body_model()
            return await trigger(
                request,
                principal,
                prefer,
                job_name=step,
                body=body,
                params=params_of(body) if params_of else {},
                portfolio_ids=body.portfolio_ids,
                cascade=body.cascade,
            )

        # FastAPI reads the body model from the annotation; set it per route.
        endpoint.__annotations__["body"] = body_model | None
        endpoint.__name__ = f"batch_{step}"
        downstream = PIPELINE_STEPS[PIPELINE_STEPS.index(step) + 1 :]
        router.add_api_route(
            path,
            endpoint,
            methods=["POST"],
            status_code=202,
            summary=summary,
            description=(
                f"Single-step run of `{step}`: {what} With `cascade: true` the downstream steps "
                f"({' → '.join(downstream) or 'none'}) follow and are "
                "part of the run's planned steps. " + COMMON_FIELDS_DOC
            ),
            responses=accepted_responses,
            response_model=None,
            tags=[TAG],
        )

    single_step(
        "aggregations",
        "/api/v1/admin/batch/aggregations",
        "Recompute valuations and exposures",
        "position valuation (market value signed, notional unsigned, USD), daily P&L and portfolio exposure "
        "totals (ingest), from stored prices and Greeks of `as_of_date`.",
    )
    single_step(
        "greeks",
        "/api/v1/admin/batch/greeks",
        "Recompute option Greeks",
        "Black-Scholes-Merton Greeks of every option position held at `as_of_date` (greeks service), "
        "signed by quantity (per-share Greek × contracts × 100).",
    )
    single_step(
        "factors",
        "/api/v1/admin/batch/factors",
        "Recompute factor model and exposures",
        "the 8 factor series and their covariance matrix (252 trading days, 60-observation minimum), the "
        "per-underlying regressions with diagnostics (including rate betas), and position and portfolio "
        "factor dollar exposures (options delta-adjusted) of `as_of_date` (factors service).",
    )
    single_step(
        "correlations",
        "/api/v1/admin/batch/correlations",
        "Recompute position correlations",
        "the pairwise position correlation matrix and portfolio correlation metrics over `duration_days` "
        "trading days (30–252, default 90) for each portfolio (factors service).",
        body_model=CorrelationsBody,
        params_of=lambda body: {"duration_days": body.duration_days},
    )
    single_step(
        "risk_scenarios",
        "/api/v1/admin/batch/risk-scenarios",
        "Recompute market-risk scenarios and risk metrics",
        "equity market moves ±5/10/20 % and rate shocks ±100/200 bp, plus the risk metrics (historical and "
        "parametric VaR/ES at 95/99 %, 1 and 10 days, volatility, beta, Sharpe, Sortino, drawdown, VaR "
        "backtest) of `as_of_date` (stress service).",
    )
    single_step(
        "stress_tests",
        "/api/v1/admin/batch/stress-tests",
        "Rerun the stress-test catalogue",
        "every active catalogue scenario (or those of `categories`: market, rates, rotation, volatility, "
        "historical), direct and correlated impact, options repriced in full (stress service).",
        body_model=StressTestsBody,
        params_of=lambda body: {"categories": body.categories} if body.categories else {},
    )
    single_step(
        "snapshots",
        "/api/v1/admin/batch/snapshots",
        "Rebuild daily portfolio snapshots",
        "the daily snapshot of each portfolio (stress service) from stored valuations and Greeks of `as_of_date`.",
    )

    @router.get(
        "/api/v1/admin/batch/status",
        summary="Current or latest batch run",
        description=(
            "The scheduler (`state`, `next_run_at` of the daily run, UTC), the run asked for by `run_id` (default: "
            "the running run, else the latest; `run: null` when nothing ever ran) with its steps aggregated per "
            "step across portfolios (counts of portfolios completed/failed, records processed, durations in "
            "milliseconds), the steps running now across active runs, and per step the time of its latest "
            "successful completion. `portfolio_id` restricts the step rows to one portfolio (market-wide steps "
            "stay). Errors: 404 JOB_NOT_FOUND (unknown `run_id`)."
        ),
        response_model=BatchStatusResponse,
    )
    async def batch_status(
        request: Request,
        run_id: str | None = Query(None, description="Run id or its mkt_ job id"),
        portfolio_id: UUID | None = Query(None),
        principal: Principal = Depends(require_admin),
    ) -> Response:
        data = await status_payload(ctx, run_id=_parse_run_id(run_id), portfolio_id=portfolio_id, now=utcnow())
        as_of = data["run"]["as_of_date"] if data["run"] else None
        return envelope(data, request=request, as_of=as_of)

    @router.get(
        "/api/v1/admin/batch/history",
        summary="Batch job-run history",
        description=(
            "One row per step × portfolio (market-wide steps: portfolio_id null), kept 180 days. Filters: `job` "
            "(step names, comma-separated), `status` (comma-separated), `portfolio_id`, `run_id`, `trigger` "
            "(comma-separated), `since`/`until` (UTC timestamps on started_at, inclusive). `sort` ∈ started_at "
            "(default -started_at), duration_ms, job; `id` is the final tiebreaker. `include_summary=true` adds "
            "`meta.summary` over the filtered set: total, by_status, success_rate (fraction completed of "
            "completed + failed), avg_duration_ms_by_job (milliseconds)."
        ),
        response_model=BatchHistoryResponse,
    )
    async def batch_history(
        request: Request,
        job: str | None = Query(None, description="Step names, comma-separated"),
        status: str | None = Query(None, description="Statuses, comma-separated"),
        portfolio_id: UUID | None = Query(None),
        run_id: str | None = Query(None),
        trigger: str | None = Query(None, description="schedule | manual | api | onboarding | demo_reset"),
        since: datetime | None = Query(None),
        until: datetime | None = Query(None),
        include_summary: str | None = Query(None),
        sort: str | None = Query(None, description="started_at | duration_ms | job, '-' for descending"),
        limit: int = Query(50),
        offset: int = Query(0),
        principal: Principal = Depends(require_admin),
    ) -> Response:
        check_limit(limit, offset)
        since_utc, until_utc = _utc(since), _utc(until)
        if since_utc and until_utc and since_utc > until_utc:
            raise ValidationFailed.field("query.since", "must not be after until", since.isoformat() if since else None)
        q = HistoryQuery(
            jobs=parse_enum_multi(job, STEP_NAMES, "job"),
            statuses=parse_enum_multi(status, JOB_RUN_STATUSES, "status"),
            triggers=parse_enum_multi(trigger, TRIGGERS, "trigger"),
            portfolio_id=portfolio_id,
            run_id=_parse_run_id(run_id),
            since=since_utc,
            until=until_utc,
            sort=parse_sort(sort, list(HISTORY_SORTS), "-started_at"),
            limit=limit,
            offset=offset,
        )
        with_summary = parse_bool(include_summary, "include_summary", False)
        items, total, summary = await history(ctx, q, with_summary=with_summary)
        return envelope(items, request=request, page=page_block(limit, offset, total), summary=summary)

    @router.get(
        "/api/v1/admin/batch/schedule",
        summary="Batch schedules and their next firing",
        description=(
            "Configured schedules: 5-field cron evaluated in `timezone` (America/New_York, DST-aware), "
            "`trading_days_only` skips weekends and NYSE holidays; `next_run_at` (UTC, null when disabled), "
            "`last_run_at`, `last_run_id` (batch runs only) and `last_status`."
        ),
        response_model=BatchScheduleResponse,
    )
    async def batch_schedule(
        request: Request,
        limit: int = Query(50),
        offset: int = Query(0),
        principal: Principal = Depends(require_admin),
    ) -> Response:
        check_limit(limit, offset)
        items = await schedule_items(ctx, utcnow())
        return envelope(items[offset : offset + limit], request=request, page=page_block(limit, offset, len(items)))

    return router
