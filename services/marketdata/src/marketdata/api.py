"""Market-data HTTP routes: #72 stored prices, #73 security master record, #76 price import."""

from __future__ import annotations

import asyncio
import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from common.api import envelope, parse_bool, split_multi
from common.auth import Principal, current_principal, require_admin
from common.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from common.events import PricesUpdated
from common.formatting import iso_date, iso_datetime, money, price, stat, utcnow
from common.logging import request_id_var
from marketdata import repository, security_master
from marketdata.context import MarketDataContext
from marketdata.errors import symbol_not_found
from marketdata.price_import import ImportRejected, parse_price_csv
from marketdata.symbols import canonical_symbol

NEW_YORK = ZoneInfo("America/New_York")
POINT_FIELDS = ("open", "high", "low", "close", "adj_close", "volume", "implied_volatility")
DEFAULT_RANGE_DAYS = 90
SOURCE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
RESERVED_SOURCES = {"fixture"}


class PricePoint(BaseModel):
    date: date
    open: str | None = Field(None, examples=["528.1200"])
    high: str | None = Field(None, examples=["531.4000"])
    low: str | None = Field(None, examples=["526.9000"])
    close: str | None = Field(None, examples=["530.0000"])
    adj_close: str | None = Field(None, examples=["530.0000"])
    volume: int | None = Field(None, examples=[71234500])
    implied_volatility: float | None = Field(None, examples=[None])


class PriceSeries(BaseModel):
    symbol: str = Field(examples=["SPY"])
    source: str | None = Field(None, description="Source of the latest point in the range", examples=["fixture"])
    sources: list[str] = Field(default_factory=list, examples=[["fixture"]])
    start_date: date
    end_date: date
    points: list[PricePoint]


class PricesResponse(BaseModel):
    data: PriceSeries
    meta: dict[str, Any] = Field(
        examples=[{"request_id": "req_01JDX4K8Q7", "as_of": "2026-11-24", "data_source": "fixture"}]
    )


class OptionBlock(BaseModel):
    underlying_symbol: str = Field(examples=["SPY"])
    option_type: str = Field(examples=["C"], description="C = call, P = put")
    strike_price: str = Field(examples=["460.0000"])
    expiration_date: date
    multiplier: int = Field(examples=[100])


class SecurityRecord(BaseModel):
    symbol: str = Field(examples=["BRK-B"])
    security_type: str = Field(examples=["stock"])
    name: str | None = Field(None, examples=["Berkshire Hathaway Inc. (Class B)"])
    exchange: str | None = Field(None, examples=["NYSE"])
    country: str | None = Field(None, examples=["US"])
    currency: str = Field("USD", examples=["USD"])
    sector: str | None = Field(None, examples=["Financial Services"])
    industry: str | None = Field(None, examples=["Insurance - Diversified"])
    market_cap: str | None = Field(None, examples=["950000000000.00"])
    dividend_yield: float | None = Field(None, examples=[0.0])
    underlying_symbol: str | None = None
    option: OptionBlock | None = None
    is_active: bool = True
    enriched_at: datetime | None = None
    enrichment_status: str = Field(examples=["ok"])
    aliases: list[str] = Field(default_factory=list, examples=[["BRK.B"]])


class SecurityResponse(BaseModel):
    data: SecurityRecord
    meta: dict[str, Any] = Field(examples=[{"request_id": "req_01JDX4K8Q7", "timestamp": "2026-11-25T14:03:22Z"}])


class ImportResult(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows_imported: int = Field(examples=[756])
    symbols: list[str] = Field(examples=[["ACME"]])
    first_date: date
    last_date: date
    source: str = Field(examples=["file"])
    securities_created: list[str] = Field(examples=[["ACME"]])


class ImportResponse(BaseModel):
    data: ImportResult
    meta: dict[str, Any] = Field(examples=[{"request_id": "req_01JDX4K8Q7", "as_of": "2026-11-24"}])


IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "CSV, at most 50 MiB"},
                        "source": {"type": "string", "description": "Source label stored on each row (default file)"},
                    },
                }
            }
        },
    }
}


def _five_years_before(d: date) -> date:
    try:
        return d.replace(year=d.year - 5)
    except ValueError:  # 29 February
        return d.replace(year=d.year - 5, day=28)


def _today_new_york() -> date:
    return utcnow().astimezone(NEW_YORK).date()


def _fields(value: str | None) -> list[str]:
    requested = {c.lower() for c in split_multi(value)}
    if not requested:
        return list(POINT_FIELDS)
    unknown = sorted(requested - set(POINT_FIELDS) - {"date"})  # the date is always returned
    if unknown:
        raise ValidationFailed.field(
            "query.fields", f"allowed fields: date, {', '.join(POINT_FIELDS)}", ",".join(unknown)
        )
    return [f for f in POINT_FIELDS if f in requested]


async def _resolve(ctx: MarketDataContext, raw: str) -> str:
    canonical = canonical_symbol(raw)
    if not canonical:
        raise symbol_not_found(raw)
    found = await repository.resolve_symbol(ctx.db, raw.strip().upper(), canonical)
    if found is None:
        raise symbol_not_found(canonical)
    return found


def _point(row: Any, fields: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"date": iso_date(row["price_date"])}
    for f in fields:
        value = row[f]
        if f == "volume":
            out[f] = None if value is None else int(value)
        elif f == "implied_volatility":
            out[f] = stat(value)
        else:
            out[f] = price(value)
    return out


def _security(row: Any) -> dict[str, Any]:
    option = None
    if row["security_type"] == "option":
        option = {
            "underlying_symbol": row["underlying_symbol"],
            "option_type": row["option_type"],
            "strike_price": price(row["strike_price"]),
            "expiration_date": iso_date(row["expiration_date"]),
            "multiplier": row["multiplier"],
        }
    return {
        "symbol": row["symbol"],
        "security_type": row["security_type"],
        "name": row["name"],
        "exchange": row["exchange"],
        "country": row["country"],
        "currency": row["currency"],
        "sector": row["sector"],
        "industry": row["industry"],
        "market_cap": money(row["market_cap"]),
        "dividend_yield": stat(row["dividend_yield"]),
        "underlying_symbol": row["underlying_symbol"],
        "option": option,
        "is_active": row["is_active"],
        "enriched_at": iso_datetime(row["enriched_at"]),
        "enrichment_status": row["enrichment_status"],
        "aliases": list(row["aliases"] or []),
    }


def create_router(ctx: MarketDataContext) -> APIRouter:
    """Routes #72, #73 and #76."""
    router = APIRouter(tags=["market data"])

    @router.get(
        "/api/v1/market-data/prices/{symbol}",
        summary="Stored daily prices of a symbol (#72)",
        description=(
            "Daily bars stored for `symbol` (aliases such as `BRK.B` resolve to `BRK-B`; options by compact OCC "
            "symbol). `start_date`/`end_date` are inclusive ISO dates; the default range is the 90 calendar days "
            "ending on the symbol's latest stored close; at most 5 years. Prices (`open`, `high`, `low`, `close`, "
            "`adj_close`) are per-share USD decimal strings with 4 dp (options: premium per share); `adj_close` is "
            "split- and dividend-adjusted; `volume` is shares (contracts for options); `implied_volatility` is a "
            "fraction (0.25 = 25 %) when the vendor supplies one. `fields` selects a subset (comma-separated). "
            "`meta.as_of` is the last point's date; `meta.data_source` is `fixture` or `live`."
        ),
        response_model=PricesResponse,
        responses={404: {"description": "SYMBOL_NOT_FOUND"}, 422: {"description": "VALIDATION_ERROR"}},
    )
    async def get_prices(
        request: Request,
        symbol: str = Path(..., max_length=32, examples=["SPY"]),
        start_date: date | None = Query(None, description="First date (inclusive)"),
        end_date: date | None = Query(None, description="Last date (inclusive)"),
        fields: str | None = Query(None, description=f"Subset of {', '.join(POINT_FIELDS)}"),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        chosen = _fields(fields)
        stored = await _resolve(ctx, symbol)
        if end_date is None:
            latest = await repository.latest_price_date(ctx.db, stored)
            end_date = latest or _today_new_york()
            if start_date is not None and start_date > end_date:
                end_date = start_date
        if start_date is None:
            start_date = end_date - timedelta(days=DEFAULT_RANGE_DAYS)
        if start_date > end_date:
            raise ValidationFailed.field("query.start_date", "must be on or before end_date", start_date.isoformat())
        if start_date < _five_years_before(end_date):
            raise ValidationFailed.field(
                "query.start_date", "the range may span at most 5 years", start_date.isoformat()
            )
        rows = await repository.price_points(ctx.db, stored, start_date, end_date)
        as_of = rows[-1]["price_date"] if rows else None
        data = {
            "symbol": stored,
            "source": rows[-1]["source"] if rows else None,
            "sources": sorted({r["source"] for r in rows}),
            "start_date": iso_date(start_date),
            "end_date": iso_date(end_date),
            "points": [_point(r, chosen) for r in rows],
        }
        return envelope(
            data, request=request, as_of=iso_date(as_of), data_source=await repository.data_source(ctx.db, as_of)
        )

    @router.get(
        "/api/v1/securities/{symbol}",
        summary="Security-master record (#73)",
        description=(
            "The security master entry for `symbol`. Aliases resolve (`BRK.B` → `BRK-B`); options use the compact "
            "OCC symbol and carry an `option` block (`strike_price` per share as a 4-dp string, `multiplier` "
            "shares per contract). `market_cap` is USD (2-dp string); `dividend_yield` is a trailing fraction "
            "(0.012 = 1.2 %). `sector`/`industry` are `Unknown` when the provider has none "
            "(`enrichment_status: partial`)."
        ),
        response_model=SecurityResponse,
        responses={404: {"description": "SYMBOL_NOT_FOUND"}},
    )
    async def get_security(
        request: Request,
        symbol: str = Path(..., max_length=32, examples=["BRK.B"]),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        stored = await _resolve(ctx, symbol)
        row = await repository.security_row(ctx.db, stored)
        if row is None:
            raise symbol_not_found(stored)
        return envelope(_security(row), request=request)

    @router.post(
        "/api/v1/market-data/prices/import",
        summary="Import daily prices from a CSV file (#76, admin)",
        description=(
            "Loads daily prices (the `file` provider; air-gapped installs, user history). `multipart/form-data` "
            "with `file` (CSV, ≤ 50 MiB) and optional `source` label (default `file`). Columns, case-insensitive: "
            "`symbol, date, close` required; `open, high, low, adj_close, volume, implied_volatility, dividend` "
            "optional. Prices are USD per share (> 0), `date` is YYYY-MM-DD and not in the future, "
            "`implied_volatility` a fraction, `dividend` the cash dividend per share going ex on that date; "
            "without `adj_close` the close is used. All or nothing: any bad row rejects the whole file with "
            "422 `VALIDATION_ERROR` and one `details` entry per problem (`row` = line number, header = 1). "
            "Upserts on (symbol, date); unknown symbols are added to the security master with "
            "`enrichment_status: pending`. Then publishes `prices.updated` for the touched symbols with "
            "`cascade: false` unless `?cascade=true`."
        ),
        response_model=ImportResponse,
        openapi_extra=IMPORT_BODY,
        responses={
            413: {"description": "PAYLOAD_TOO_LARGE"},
            415: {"description": "UNSUPPORTED_MEDIA_TYPE"},
            422: {"description": "VALIDATION_ERROR with a row-level report"},
        },
    )
    async def import_prices(
        request: Request,
        cascade: str | None = Query(None, description="true: downstream steps follow the prices.updated event"),
        principal: Principal = Depends(require_admin),
    ) -> Response:
        do_cascade = parse_bool(cascade, "cascade", False)
        limit = ctx.settings.import_max_bytes
        content_type = request.headers.get("content-type", "")
        if not content_type.lower().startswith("multipart/form-data"):
            raise UnsupportedMediaType("Send the CSV as multipart/form-data with a `file` part")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
            raise PayloadTooLarge(f"The upload exceeds {limit // (1024 * 1024)} MiB")
        try:
            form = await request.form(max_files=1, max_fields=10)
        except MultiPartException as exc:
            raise BadRequest(f"Unparseable multipart body: {exc.message}") from exc
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ValidationFailed.field("body.file", "a CSV file part named `file` is required")
        raw_source = form.get("source")
        source = (raw_source if isinstance(raw_source, str) and raw_source.strip() else "file").strip().lower()
        if not SOURCE_RE.match(source) or source in RESERVED_SOURCES:
            raise ValidationFailed.field(
                "body.source", "1-32 characters of a-z 0-9 _ . - (not a reserved provider name)", source
            )
        content = await upload.read(limit + 1)
        if len(content) > limit:
            raise PayloadTooLarge(f"The file exceeds {limit // (1024 * 1024)} MiB")
        try:
            parsed = await asyncio.to_thread(parse_price_csv, content, today=_today_new_york(), source=source)
        except ImportRejected as exc:
            raise ValidationFailed(str(exc), details=exc.report.details()) from exc

        async with ctx.plumbing.uow.begin() as work:
            aliases = await repository.resolve_aliases(work.session, parsed.symbols)
            records = parsed.records
            if aliases:
                records = [(aliases.get(r[0], r[0]), *r[1:]) for r in records]
                symbols = sorted({aliases.get(s, s) for s in parsed.symbols})
                seen = {(r[0], r[1]) for r in records}
                if len(seen) != len(records):
                    raise ValidationFailed(
                        "The file lists the same (symbol, date) under two spellings of one symbol",
                        details=[{"row": None, "field": "symbol", "issue": "alias duplicates", "value": aliases}],
                    )
            else:
                symbols = parsed.symbols
            created = await security_master.pending_placeholders(work.session, symbols)
            await repository.upsert_price_records(work.session, records)
            if parsed.has_dividends:
                await repository.refresh_dividend_yields(work.session, symbols)
            assert parsed.last_date is not None and parsed.first_date is not None
            work.emit(
                PricesUpdated(
                    as_of=parsed.last_date,
                    correlation_id=request_id_var.get(),
                    cascade=do_cascade,
                    symbols=symbols,
                    trigger="api",
                )
            )
        data = {
            "rows_imported": len(records),
            "symbols": symbols,
            "first_date": iso_date(parsed.first_date),
            "last_date": iso_date(parsed.last_date),
            "source": source,
            "securities_created": created,
        }
        return envelope(data, request=request, as_of=iso_date(parsed.last_date))

    return router
