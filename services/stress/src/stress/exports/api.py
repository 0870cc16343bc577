"""Export routes (api.md #69–#71): broker trade files, export history, stored-file downloads."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from common.api import check_limit, envelope, page_block, parse_enum_multi, parse_sort
from common.auth import Principal, current_principal
from common.errors import ValidationFailed
from common.formatting import utcnow
from common.schemas import error_responses
from stress import stress_queries
from stress.context import StressContext
from stress.exports import history
from stress.exports.files import FileContent
from stress.exports.schemas import ExportHistoryResponse, TradeExportRequest, TradeExportResponse
from stress.exports.service import TradeExports
from stress.exports.tables import EXPORT_FORMATS, EXPORT_TYPES

TRADES_DESCRIPTION = (
    "Turn a trade list into a broker file (sync, 201). Body: exactly one of `session_id` (a modelling "
    "session's trades, netted per symbol: a positive net covers what the session covered and buys the rest, a "
    "negative net sells what it sold and shorts the rest) or `trades` (1–1,000 of {side BUY | SELL | SELL_SHORT | "
    "BUY_TO_COVER, symbol (ticker or OCC option symbol), quantity > 0 (whole contracts for options), order_type "
    "MARKET (default) | LIMIT, limit_price (LIMIT only), time_in_force DAY (default) | GTC}); `format`; optional "
    "`account`; `fix_delimiter` soh (default) | pipe. Formats: `csv` (columns side, symbol, quantity, "
    "security_type, underlying, option_type, strike_price, expiration_date, order_type, limit_price, "
    "time_in_force, account), `json`, `fix` (one FIX 4.4 New Order Single 35=D per line: 11 ClOrdID, 1 Account, "
    "55 Symbol (the underlying for options), 167 SecurityType CS/OPT, options 201 PutOrCall 0 put / 1 call, 202 "
    "StrikePrice, 541 MaturityDate, 77 OpenClose O/C; 54 Side 1 buy / 2 sell / 5 sell short (BUY_TO_COVER → 1), "
    "38 OrderQty, 40 OrdType 1 market / 2 limit, 44 Price (limit), 59 TimeInForce 0 day / 1 GTC, 60 TransactTime; "
    "9 BodyLength and 10 CheckSum computed on the SOH form, also for `pipe`), and `upload_csv`: the opening "
    "lines as a positions file for POST /api/v1/portfolio/upload (ticker, signed quantity, entry_price = limit, "
    "modelled or latest close, entry_date, tags), so the upload creates exactly these positions; closing lines "
    "are refused (422) because a positions file can only open positions. The file is kept 30 days (#71) and "
    "listed in the export history (#70). 404 SESSION_NOT_FOUND; 422 VALIDATION_ERROR (both or neither source, "
    "non-positive quantity, LIMIT without price), UNKNOWN_SYMBOL, NO_PRICE."
)


def file_response(file: FileContent) -> Response:
    """A download: the file's media type and `Content-Disposition: attachment`."""
    media = file.content_type
    if media.startswith("text/") or media == "application/json":
        media = f"{media}; charset=utf-8"
    return Response(
        file.data,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{file.file_name}"'},
    )


def as_utc(value: datetime | None) -> datetime | None:
    """A query timestamp in UTC (naive ones are read as UTC)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def create_export_router(ctx: StressContext) -> APIRouter:
    """Routes #69–#71."""
    router = APIRouter(tags=["exports"])
    exports = TradeExports(ctx.db)

    @router.post(
        "/api/v1/export/trades",
        summary="Export trades as CSV, JSON, FIX or an upload file (#69)",
        description=TRADES_DESCRIPTION,
        status_code=201,
        response_model=TradeExportResponse,
        responses=error_responses(401, 404, 422),
    )
    async def export_trades(
        request: Request, body: TradeExportRequest, principal: Principal = Depends(current_principal)
    ) -> Response:
        data = await exports.create(principal, body)
        return envelope(data, request=request, status=201, headers={"Location": data["download_url"]})

    @router.get(
        "/api/v1/export/history",
        summary="The caller's exports: trade files and report downloads (#70)",
        description=(
            "Newest first (`sort=-created_at`, the only order; id breaks ties). Filters: `export_type` (trades, "
            "report; multi), `format` (multi), `portfolio_id` (404 PORTFOLIO_NOT_FOUND when it is not yours), "
            "`since`/`until` on `created_at` (UTC). `download_url` is null once the file expired (30 days)."
        ),
        response_model=ExportHistoryResponse,
        responses=error_responses(401, 404, 422),
    )
    async def export_history(
        request: Request,
        export_type: str | None = Query(None, description="trades | report (comma-separated)"),
        format: str | None = Query(None, description="csv, json, fix, upload_csv, md, pdf (comma-separated)"),
        portfolio_id: UUID | None = Query(None),
        since: datetime | None = Query(None, description="created_at ≥ since (ISO 8601, UTC)"),
        until: datetime | None = Query(None, description="created_at ≤ until (ISO 8601, UTC)"),
        sort: str | None = Query(None, description="-created_at (default and only)"),
        limit: int = Query(50, description="1–500"),
        offset: int = Query(0, description="≥ 0"),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        limit, offset = check_limit(limit, offset)
        order = parse_sort(sort, ("created_at",), "-created_at")
        if order != [("created_at", True)]:
            raise ValidationFailed.field("query.sort", "only -created_at is supported", sort)
        start, end = as_utc(since), as_utc(until)
        if start is not None and end is not None and start > end:
            raise ValidationFailed.field("query.since", "must be on or before until", request.query_params["since"])
        query = history.HistoryQuery(
            user_id=principal.user_id,
            export_types=parse_enum_multi(export_type, EXPORT_TYPES, "export_type"),
            formats=parse_enum_multi(format, EXPORT_FORMATS, "format"),
            portfolio_id=portfolio_id,
            since=start,
            until=end,
            limit=limit,
            offset=offset,
        )
        async with ctx.db.session() as session:
            if portfolio_id is not None:
                await stress_queries.resolve_portfolio(session, principal, portfolio_id)
            rows, total = await history.page(session, query)
        now = utcnow()
        return envelope([history.item(r, now) for r in rows], request=request, page=page_block(limit, offset, total))

    @router.get(
        "/api/v1/export/{export_id}/download",
        summary="Download an exported file (#71)",
        description="The stored file with its media type. 404 EXPORT_NOT_FOUND; 410 GONE after 30 days.",
        responses={200: {"description": "The file", "content": {"text/csv": {}, "application/json": {}}}}
        | error_responses(401, 404, 410, 422),
    )
    async def download_export(export_id: UUID, principal: Principal = Depends(current_principal)) -> Response:
        return file_response(await exports.download(principal, export_id))

    return router
