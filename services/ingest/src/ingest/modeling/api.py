"""#53-#58 ProForma modelling sessions, trade removal and trade suggestions (api.md §4.8, §6 row 14)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError

from common.api import check_limit, envelope, page_block, parse_enum_multi, split_multi
from common.auth import Principal
from common.errors import ValidationFailed
from common.jobs import prefer_wait_seconds
from ingest.access import caller
from ingest.modeling import docs
from ingest.modeling.present import positions_json, session_json, session_summary, session_url, trade_json
from ingest.modeling.proforma import before_after, session_units
from ingest.modeling.schemas import (
    CalculateRequest,
    CreateSessionRequest,
    SaveRequest,
    SuggestionRequest,
    TradeBatchRequest,
    TradeRequest,
)
from ingest.modeling.service import ModelingService, session_book
from ingest.modeling.suggestions import suggest
from ingest.modeling.tables import SESSION_STATUSES

PREFIX = "/api/v1/modeling/sessions"


def parse_trades(payload: dict[str, Any]) -> list[tuple[str, TradeRequest]]:
    """One trade or `{"trades": [...]}` → (error field prefix, request) pairs; 422 in the usual shape."""
    try:
        if "trades" in payload:
            batch = TradeBatchRequest.model_validate(payload)
            return [(f"body.trades.{i}", t) for i, t in enumerate(batch.trades)]
        return [("body", TradeRequest.model_validate(payload))]
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from exc


def create_modeling_router(service: ModelingService) -> APIRouter:
    """The routes; `service` owns the workflow."""
    router = APIRouter(tags=["modeling"])
    ledger, runner = service.plumbing.ledger, service.plumbing.runner

    @router.post(PREFIX, status_code=201, summary="Start a ProForma session (#53)", **docs.CREATE)
    async def create(request: Request, body: CreateSessionRequest, principal: Principal = Depends(caller)) -> Response:
        data = await service.create(principal, body)
        headers = {"Location": session_url(data["session_id"])}
        return envelope(data, request=request, status=201, headers=headers, as_of=data["base"]["as_of"])

    @router.get(PREFIX, summary="The caller's sessions", **docs.LIST)
    async def list_sessions(
        request: Request,
        portfolio_id: UUID | None = Query(None, description="Only the sessions of this portfolio"),
        status: str | None = Query(None, description="active, saved, cancelled, expired (comma-separated)"),
        limit: int = Query(50),
        offset: int = Query(0),
        principal: Principal = Depends(caller),
    ) -> Response:
        limit, offset = check_limit(limit, offset)
        statuses = parse_enum_multi(status, SESSION_STATUSES, "status")
        rows, total = await service.list_sessions(principal, portfolio_id, statuses, limit, offset)
        data = [session_summary(r, r["trade_count"]) for r in rows]
        return envelope(data, request=request, page=page_block(limit, offset, total))

    @router.delete(PREFIX + "/{session_id}", status_code=204, summary="Cancel a session", **docs.CANCEL)
    async def cancel(session_id: UUID, principal: Principal = Depends(caller)) -> Response:
        await service.cancel(principal, session_id)
        return Response(status_code=204)

    @router.get(PREFIX + "/{session_id}", summary="Session state: trades, status, last job (#54)", **docs.READ)
    async def read(
        request: Request,
        session_id: UUID,
        include: str | None = Query(None, description="`positions`: the pro-forma positions with valuation"),
        principal: Principal = Depends(caller),
    ) -> Response:
        blocks = split_multi(include)
        if any(b != "positions" for b in blocks):
            raise ValidationFailed.field("query.include", "allowed: positions", include)
        row, trades, job = await service.read(principal, session_id)
        data = session_json(row, len(trades))
        data["trades"] = [trade_json(t) for t in trades]
        data["last_job"] = job
        if blocks:
            book = session_book(row, trades)
            _, after = before_after(book, session_units(book, {}, {}))
            data["positions"] = positions_json(after, book.holdings_before(), book.trades)
        return envelope(data, request=request, as_of=data["base"]["as_of"])

    @router.post(PREFIX + "/{session_id}/trades", status_code=201, summary="Add trades (#55)", **docs.TRADES)
    async def add_trades(
        request: Request,
        session_id: UUID,
        payload: dict[str, Any] = Body(..., openapi_examples=docs.TRADE_EXAMPLES),
        principal: Principal = Depends(caller),
    ) -> Response:
        data = await service.add_trades(principal, session_id, parse_trades(payload))
        return envelope(data, request=request, status=201)

    @router.delete(PREFIX + "/{session_id}/trades/{trade_id}", summary="Remove a trade", **docs.REMOVE)
    async def remove_trade(
        request: Request, session_id: UUID, trade_id: UUID, principal: Principal = Depends(caller)
    ) -> Response:
        return envelope(await service.remove_trade(principal, session_id, trade_id), request=request)

    @router.post(
        PREFIX + "/{session_id}/calculate", status_code=202, summary="Compute before/after impacts (#56)", **docs.CALC
    )
    async def calculate(
        request: Request,
        session_id: UUID,
        body: CalculateRequest | None = None,
        prefer: str | None = Header(None, description="`wait=N` (N ≤ 10) to wait for the job"),
        principal: Principal = Depends(caller),
    ) -> Response:
        job, deduplicated = await service.calculate(principal, session_id, body or CalculateRequest())
        wait = prefer_wait_seconds(prefer)
        if wait > 0 and await runner.wait(job["id"], wait):
            async with service.db.session() as session:
                done = await ledger.get(session, job["id"])
            if done is not None and done["status"] == "completed":
                return envelope(await service.impacts(principal, session_id), request=request)
            job = done or job
        accepted = ledger.accepted(job, deduplicated)
        headers = {"Location": accepted["status_url"], "Retry-After": "2"}
        return envelope(accepted, request=request, status=202, headers=headers)

    @router.get(PREFIX + "/{session_id}/impacts", summary="Risk impact of the trades (#57)", **docs.IMPACTS)
    async def impacts(request: Request, session_id: UUID, principal: Principal = Depends(caller)) -> Response:
        data = await service.impacts(principal, session_id)
        return envelope(data, request=request, as_of=data["as_of"])

    @router.post(PREFIX + "/{session_id}/save", summary="Save as a read-only scenario (#58)", **docs.SAVE)
    async def save(
        request: Request, session_id: UUID, body: SaveRequest | None = None, principal: Principal = Depends(caller)
    ) -> Response:
        return envelope(await service.save(principal, session_id, body or SaveRequest()), request=request)

    @router.post(PREFIX + "/{session_id}/suggestions", summary="Hedge trades for a goal", **docs.SUGGEST)
    async def suggestions(
        request: Request, session_id: UUID, body: SuggestionRequest, principal: Principal = Depends(caller)
    ) -> Response:
        data = await suggest(service, principal, session_id, body)
        return envelope(data, request=request, as_of=data["as_of"])

    return router
