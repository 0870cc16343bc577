"""Onboarding routes (api.md #61-#64); `{portfolio_id}` is the portfolio id (api.md §6 row 7)."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import Response

from common.api import check_limit, envelope, page_block, parse_sort
from common.auth import Principal, current_principal
from common.jobs import prefer_wait_seconds
from common.logging import request_id_var
from ingest.context import IngestContext
from ingest.onboarding.preview_rows import SORTABLE
from ingest.onboarding.service import OnboardingService
from ingest.upload_schemas import JobAcceptedResponse, PreviewResponse, RetryRequest, ValidationResponse

MAX_PREVIEW_PAGE = 1000


async def data_source(ctx: IngestContext, as_of: date | None) -> str:
    """`fixture` when SPY's close on `as_of` comes from the fixture provider, else `live`."""
    if as_of is None:
        return "live"
    try:
        value = await ctx.db.fetchrow(
            "SELECT source FROM marketdata.api_daily_price WHERE symbol = 'SPY' AND price_date = $1", as_of
        )
    except Exception:
        return "live"
    return "fixture" if value is not None and value["source"] == "fixture" else "live"


async def internal_get(request: Request, url: str) -> Response | None:
    """GET `url` on this same app with the caller's credentials (Prefer: wait → the result body)."""
    parts = urlsplit(url)
    headers = [(k, v) for k, v in request.scope.get("headers", []) if k in (b"authorization", b"x-request-id")]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": parts.path,
        "raw_path": parts.path.encode(),
        "query_string": parts.query.encode(),
        "root_path": "",
        "headers": headers,
        "client": request.scope.get("client"),
        "server": request.scope.get("server"),
        "state": dict(request.scope.get("state", {})),
    }
    started: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await request.app(scope, receive, send)
    if not started:
        return None
    raw_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in started.get("headers", [])]
    response = Response(b"".join(chunks), status_code=int(started["status"]))
    for key, value in raw_headers:
        if key.lower() not in ("content-length",):
            response.headers[key] = value
    return response


def create_onboarding_router(ctx: IngestContext, service: OnboardingService) -> APIRouter:
    """Routes #61-#64."""
    router = APIRouter(tags=["onboarding"])
    runner = ctx.plumbing.runner
    ledger = ctx.plumbing.ledger

    async def accepted(request: Request, job: dict[str, Any], deduplicated: bool) -> Response:
        wait = prefer_wait_seconds(request.headers.get("prefer"))
        if wait > 0 and job.get("result_url") and await runner.wait(job["id"], wait):
            async with ctx.db.session() as session:
                finished = await ledger.get(session, job["id"])
            if finished is not None and finished["status"] in ("completed", "partial"):
                result = await internal_get(request, finished["result_url"] or job["result_url"])
                if result is not None and result.status_code == 200:
                    return result
        body = ledger.accepted(job, deduplicated)
        return envelope(body, request=request, status=202, headers={"Location": body["status_url"], "Retry-After": "2"})

    @router.post(
        "/api/v1/portfolio/onboarding/{portfolio_id}/validate",
        summary="Readiness report of a portfolio in onboarding",
        description=(
            "Read-only. Seven checks, each `pass` | `warn` | `fail` | `skip` | `pending` with a `blocking` flag: "
            "positions; security_master (every stock and option underlying known); classification "
            "(sector/industry, non-blocking); current_prices (a close within 5 trading days for every stock and "
            "underlying); price_history (>= 60 trading days, non-blocking); option_inputs (underlying price, "
            "volatility source, risk-free curve; never blocking); factor_definitions (active factors whose "
            "proxies have >= 60 days). `ready` is true when no blocking check fails. 409 INVALID_STATE when the "
            "portfolio is not in onboarding."
        ),
        response_model=ValidationResponse,
    )
    async def validate(
        portfolio_id: UUID, request: Request, principal: Principal = Depends(current_principal)
    ) -> Response:
        report = await service.validate(principal, portfolio_id)
        as_of = date.fromisoformat(report["as_of"]) if report.get("as_of") else None
        return envelope(report, request=request, as_of=report.get("as_of"), data_source=await data_source(ctx, as_of))

    @router.get(
        "/api/v1/portfolio/onboarding/{portfolio_id}/preview",
        summary="Preview of an uploaded portfolio before onboarding completes",
        description=(
            "The open positions as api.md §3.1 Position plus `priced_with` and per-position `issues`. Positions "
            'are valued at the latest close within 5 trading days (`priced_with: "close"`), else at their entry '
            'price (`priced_with: "entry"`). Money is USD as decimal strings; `market_value` is signed '
            "(negative for shorts and written options), `notional` unsigned; option `dollar_exposure` (delta-"
            "adjusted) and Greeks are null until the first run. `collection` lists the data-collection steps; "
            "`totals` cover every position. `limit` (1-1,000, default 50) / `offset`; `sort` as "
            "GET /api/v1/positions (default `symbol`, `-` for descending)."
        ),
        response_model=PreviewResponse,
    )
    async def preview(
        portfolio_id: UUID,
        request: Request,
        limit: int = Query(50),
        offset: int = Query(0),
        sort: str | None = Query(None, description=", ".join(SORTABLE)),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        check_limit(limit, offset, max_limit=MAX_PREVIEW_PAGE)
        order = parse_sort(sort, SORTABLE, "symbol")
        data, total, as_of = await service.preview(principal, portfolio_id, limit=limit, offset=offset, sort=order)
        return envelope(
            data,
            request=request,
            page=page_block(limit, offset, total),
            as_of=as_of.isoformat(),
            data_source=await data_source(ctx, as_of),
        )

    @router.post(
        "/api/v1/portfolio/onboarding/{portfolio_id}/complete",
        summary="Complete onboarding (async)",
        description=(
            "Runs the readiness checks; when a blocking check fails → 409 NOT_READY with the failing checks in "
            "`details`. When ready the portfolio becomes `active` (included in daily runs) and marketdata starts "
            "its first calculation run; the `onboarding.complete` job (steps `initial_run`, `first_snapshot`) "
            "finishes when the first snapshot exists (`partial` with a message if the run fails or takes longer "
            "than the job limit). `result_url` is the portfolio summary. A portfolio already active → 409 "
            "INVALID_STATE."
        ),
        status_code=202,
        response_model=JobAcceptedResponse,
    )
    async def complete(
        portfolio_id: UUID, request: Request, principal: Principal = Depends(current_principal)
    ) -> Response:
        job, deduplicated = await service.complete(principal, portfolio_id, request_id_var.get())
        return await accepted(request, job, deduplicated)

    @router.post(
        "/api/v1/portfolio/onboarding/{portfolio_id}/retry",
        summary="Re-check failed data-collection steps (async)",
        description=(
            "Body (optional): `steps` ⊆ security_master, current_prices, price_history, option_inputs (default: "
            "every failed step) and `symbols` (default: every affected symbol). Each chosen step is recomputed "
            "from what marketdata holds now and its `attempts` incremented. 409 INVALID_STATE when the "
            "portfolio is not in onboarding or none of the chosen steps failed. `result_url` is the preview."
        ),
        status_code=202,
        response_model=JobAcceptedResponse,
    )
    async def retry(
        portfolio_id: UUID,
        request: Request,
        body: RetryRequest | None = Body(None),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        steps: list[str] | None = [str(s) for s in body.steps] if body and body.steps else None
        symbols = list(body.symbols) if body and body.symbols else None
        job, deduplicated = await service.retry(principal, portfolio_id, steps, symbols)
        return await accepted(request, job, deduplicated)

    return router
