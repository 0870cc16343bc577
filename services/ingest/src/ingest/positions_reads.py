"""#25-#28 read handlers: filters, paging, totals, groupings, one position, strategies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

import numpy as np
from fastapi import Query, Request
from fastapi.responses import Response

from common.api import check_limit, envelope, page_block, parse_bool, parse_enum_multi, parse_sort, split_multi
from common.auth import Principal
from common.db import Database
from common.errors import NotFound, ValidationFailed
from common.formatting import iso_date, money, price, qty
from ingest import catalog, compute
from ingest.access import PortfolioRef, parse_uuid, resolve_portfolio
from ingest.api import Provenance, today_eastern
from ingest.catalog import ViewCatalog
from ingest.grouping import book_from_rows, group_json, group_keys, sort_groups, sort_key, sums_block
from ingest.models import POSITION_TYPES
from ingest.positions_query import (
    BOOK_SQL,
    SORT_FIELDS,
    PositionFilter,
    position_json,
    select_rows,
    select_totals,
    tags_json,
    views_block,
)
from ingest.repository import to_cents

MAX_POSITIONS_LIMIT = 1000
GROUP_BY = ("type", "strategy", "tag", "underlying", "sector", "asset_class")
GROUP_SORTS = ("gross_exposure", "net_exposure", "unrealized_pnl", "count", "key")
STRATEGY_SORTS = ("name", "gross_exposure", "unrealized_pnl", "count")


@dataclass
class FilterParams:
    """Raw #25 filter query parameters."""

    type: str | None
    instrument_type: str | None
    tags: str | None
    tag_mode: str | None
    strategy: str | None
    underlying: str | None
    sector: str | None
    q: str | None
    view: str | None
    expiring_within_days: int | None
    min_market_value: str | None
    max_market_value: str | None


def filter_params(
    type: str | None = Query(None, description="Position types, comma-separated: LONG,SHORT,LC,LP,SC,SP"),
    instrument_type: str | None = Query(None, description="stock | option (comma-separated)"),
    tags: str | None = Query(None, description="Tag names or ids, comma-separated"),
    tag_mode: str | None = Query(None, description="any (default: at least one tag) | all (every tag)"),
    strategy: str | None = Query(None, description="Strategy tag name or id"),
    underlying: str | None = Query(None, description="Underlying symbols, comma-separated"),
    sector: str | None = Query(None, description="Sectors (of the underlying; ETF/Fund, Unknown), comma-separated"),
    q: str | None = Query(None, description="Case-insensitive prefix of symbol, underlying or name"),
    view: str | None = Query(None, description="portfolio (default) | longs (quantity > 0) | shorts (quantity < 0)"),
    expiring_within_days: int | None = Query(None, ge=0, le=3650, description="Options expiring within N days"),
    min_market_value: str | None = Query(None, description="Minimum signed market value (USD)"),
    max_market_value: str | None = Query(None, description="Maximum signed market value (USD)"),
) -> FilterParams:
    """FastAPI dependency collecting the #25 filters."""
    return FilterParams(
        type,
        instrument_type,
        tags,
        tag_mode,
        strategy,
        underlying,
        sector,
        q,
        view,
        expiring_within_days,
        min_market_value,
        max_market_value,
    )


def _decimal(value: str | None, field: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        out = Decimal(value)
    except InvalidOperation as exc:
        raise ValidationFailed.field(f"query.{field}", "must be a decimal number", value) from exc
    if not out.is_finite():
        raise ValidationFailed.field(f"query.{field}", "must be a decimal number", value)
    return out


def reference_date(pf: PortfolioRef) -> date:
    """Date that days-to-expiry and expiry windows count from: the valuation date, else today (ET)."""
    return pf.valuation_date or today_eastern()


class PositionsApi:
    """Handlers of #25-#28 sharing the database, catalog and provenance."""

    def __init__(self, db: Database, views: ViewCatalog, provenance: Provenance) -> None:
        self.db = db
        self.views = views
        self.provenance = provenance

    async def _owner_tags(self, owner: UUID) -> list[Any]:
        return await self.db.fetch(
            "SELECT id, name, name_key, tag_type, color FROM ingest.tag WHERE user_id = $1 AND deleted_at IS NULL",
            owner,
        )

    async def build_filter(self, pf: PortfolioRef, raw: FilterParams) -> PositionFilter:
        """Validated `PositionFilter` (422 on unknown values, tags or strategies)."""
        f = PositionFilter(portfolio_id=pf.id, reference_date=reference_date(pf))
        f.types = parse_enum_multi(raw.type, POSITION_TYPES, "type", upper=True)
        f.instrument_types = parse_enum_multi(raw.instrument_type, ("stock", "option"), "instrument_type")
        modes = parse_enum_multi(raw.tag_mode, ("any", "all"), "tag_mode")
        f.tag_mode = modes[0] if modes else "any"
        views_ = parse_enum_multi(raw.view, ("portfolio", "longs", "shorts"), "view")
        f.view = views_[0] if views_ else "portfolio"
        f.underlyings = [u.upper() for u in split_multi(raw.underlying)]
        f.sectors = split_multi(raw.sector)
        f.q = raw.q.strip() if raw.q and raw.q.strip() else None
        f.expiring_within_days = raw.expiring_within_days
        f.min_market_value = _decimal(raw.min_market_value, "min_market_value")
        f.max_market_value = _decimal(raw.max_market_value, "max_market_value")
        wanted = split_multi(raw.tags)
        if wanted or raw.strategy:
            tags = await self._owner_tags(pf.user_id)
            by_id = {str(t["id"]): t for t in tags}
            by_key = {t["name_key"]: t for t in tags}

            def find(token: str) -> Any:
                name = token[len("#strategy:") :] if token.lower().startswith("#strategy:") else token
                return by_id.get(token.lower()) or by_key.get(" ".join(name.split()).lower())

            for token in wanted:
                hit = find(token)
                if hit is None:
                    raise ValidationFailed.field("query.tags", "unknown tag", token)
                f.tag_ids.append(hit["id"])
            if raw.strategy:
                hit = find(raw.strategy.strip())
                if hit is None or hit["tag_type"] != "strategy":
                    raise ValidationFailed.field("query.strategy", "unknown strategy", raw.strategy)
                f.strategy_tag_id = hit["id"]
        return f

    async def list_positions(
        self,
        request: Request,
        principal: Principal,
        portfolio_id: str | None,
        raw: FilterParams,
        include_closed: str | None,
        include: str | None,
        sort: str | None,
        limit: int,
        offset: int,
    ) -> Response:
        """#25."""
        limit, offset = check_limit(limit, offset, max_limit=MAX_POSITIONS_LIMIT)
        order = parse_sort(sort, SORT_FIELDS, "symbol")
        blocks = set(parse_enum_multi(include, ("greeks", "factors"), "include")) if include is not None else {"greeks"}
        pf = await resolve_portfolio(self.db, principal, portfolio_id)
        f = await self.build_filter(pf, raw)
        f.include_closed = parse_bool(include_closed, "include_closed", False)
        present = await self.views.present()
        tsql, targs = select_totals(f, present)
        totals = await self.db.fetchrow(tsql, *targs)
        assert totals is not None
        sql, args = select_rows(f, present, order=order, limit=limit, offset=offset)
        rows = await self.db.fetch(sql, *args)
        ref = reference_date(pf)
        data = [
            position_json(
                r,
                reference_date=ref,
                gross_exposure=totals["portfolio_gross"],
                include_greeks="greeks" in blocks,
                include_factors="factors" in blocks,
            )
            for r in rows
        ]
        block = views_block(totals)
        meta_totals = {**block, "unrealized_pnl": money(totals["unrealized_pnl"])}
        return envelope(
            data,
            request=request,
            page=page_block(limit, offset, int(totals["total"])),
            as_of=iso_date(pf.valuation_date),
            data_source=await self.provenance.data_source(pf.valuation_date),
            totals=meta_totals,
        )

    async def _book(self, pf: PortfolioRef) -> Any:
        row = await self.db.fetchrow(BOOK_SQL, pf.id)
        assert row is not None
        return row

    async def grouped(
        self,
        request: Request,
        principal: Principal,
        portfolio_id: str | None,
        raw: FilterParams,
        by: str | None,
        include_positions: str | None,
        sort: str | None,
    ) -> Response:
        """#26."""
        kinds = parse_enum_multi(by, GROUP_BY, "by")
        kind = kinds[0] if kinds else "type"
        order = parse_sort(sort, GROUP_SORTS, "-gross_exposure")
        with_positions = parse_bool(include_positions, "include_positions", True)
        pf = await resolve_portfolio(self.db, principal, portfolio_id)
        f = await self.build_filter(pf, raw)
        present = await self.views.present()
        sql, args = select_rows(f, present, order=[("symbol", False)])
        rows = await self.db.fetch(sql, *args)
        book_row = await self._book(pf)
        members, groups, labels, tag_ids = group_keys(rows, kind)
        book = book_from_rows(rows)
        sums = compute.group_sums(book, members, groups, len(labels))
        total = compute.portfolio_sums(book)
        equity = to_cents(book_row["cash_balance"]) + to_cents(book_row["net_mv"])
        gross = to_cents(book_row["gross"])
        ref = reference_date(pf)
        out = []
        for g, label in enumerate(labels):
            if sums.count[g] == 0:
                continue
            item = group_json(sums, g, label, gross, equity)
            item["tag_id"] = tag_ids.get(label)
            if with_positions:
                idx = members[groups == g]
                item["positions"] = [
                    position_json(rows[i], reference_date=ref, gross_exposure=book_row["gross"]) for i in idx.tolist()
                ]
            out.append(item)
        out = sort_groups(out, order)
        totals = sums_block(total, 0)
        body = {
            "by": kind,
            "groups": out,
            "totals": {k: totals[k] for k in ("market_value", "exposure", "notional")},
            "overlapping": kind == "tag",
        }
        return envelope(
            body,
            request=request,
            as_of=iso_date(pf.valuation_date),
            data_source=await self.provenance.data_source(pf.valuation_date),
        )

    async def one(self, request: Request, principal: Principal, position_id: str, include: str | None) -> Response:
        """#27."""
        pid = parse_uuid(position_id, "path.id")
        blocks = (
            set(parse_enum_multi(include, ("greeks", "factors", "history"), "include"))
            if include
            else {"greeks", "factors"}
        )
        present = await self.views.present()
        f = PositionFilter(
            portfolio_id=None,
            position_id=pid,
            include_closed=True,
            owner_id=None if principal.is_admin else principal.user_id,
        )
        sql, args = select_rows(f, present)
        rows = await self.db.fetch(sql, *args)
        if not rows:
            raise NotFound("POSITION")
        row = rows[0]
        pf = await resolve_portfolio(self.db, principal, row["portfolio_id"])
        book_row = await self._book(pf)
        ref = reference_date(pf)
        data = position_json(
            row,
            reference_date=ref,
            gross_exposure=book_row["gross"],
            include_greeks="greeks" in blocks,
            include_factors="factors" in blocks,
        )
        data["security"] = await self._security(row, present)
        if "history" in blocks:
            data["valuations"] = await self._history(row["id"], ref, present)
        return envelope(
            data,
            request=request,
            as_of=iso_date(pf.valuation_date),
            data_source=await self.provenance.data_source(pf.valuation_date),
        )

    async def _security(self, row: Any, present: frozenset[str]) -> dict[str, Any] | None:
        if catalog.SECURITY not in present:
            return None
        sec = await self.db.fetchrow(
            "SELECT s.name, s.security_type, s.exchange, s.country, s.currency, "
            "COALESCE(s.sector, u.sector) AS sector, COALESCE(s.industry, u.industry) AS industry, s.market_cap "
            "FROM marketdata.api_security s LEFT JOIN marketdata.api_security u ON u.symbol = $2 "
            "WHERE s.symbol = $1",
            row["symbol"],
            row["underlying_symbol"],
        )
        if sec is None:
            return None
        return {
            "name": sec["name"],
            "security_type": sec["security_type"],
            "exchange": sec["exchange"],
            "country": sec["country"],
            "currency": sec["currency"],
            "sector": sec["sector"],
            "industry": sec["industry"],
            "market_cap": money(sec["market_cap"]),
        }

    async def _history(self, position_id: UUID, ref: date, present: frozenset[str]) -> list[dict[str, Any]]:
        """Valuations of the last 90 trading days up to `ref`."""
        cutoff: date | None = None
        if catalog.TRADING_DAY in present:
            hit = await self.db.fetchrow(
                "SELECT trading_date FROM marketdata.api_trading_day WHERE trading_date <= $1 "
                "ORDER BY trading_date DESC OFFSET 89 LIMIT 1",
                ref,
            )
            cutoff = hit["trading_date"] if hit else None
        if cutoff is None:
            cutoff = np.busday_offset(np.datetime64(ref, "D"), -89, roll="backward").astype(date)
        rows = await self.db.fetch(
            "SELECT valuation_date, last_price, price_source, market_value, dollar_exposure, notional, unrealized_pnl, "
            "daily_pnl FROM ingest.position_valuation WHERE position_id = $1 AND valuation_date >= $2 "
            "AND valuation_date <= $3 ORDER BY valuation_date",
            position_id,
            cutoff,
            ref,
        )
        return [
            {
                "date": iso_date(r["valuation_date"]),
                "last_price": price(r["last_price"]),
                "price_source": r["price_source"],
                "market_value": money(r["market_value"]),
                "dollar_exposure": money(r["dollar_exposure"]),
                "notional": money(r["notional"]),
                "unrealized_pnl": money(r["unrealized_pnl"]),
                "daily_pnl": money(r["daily_pnl"]),
            }
            for r in rows
        ]

    async def strategies(
        self,
        request: Request,
        principal: Principal,
        portfolio_id: str | None,
        q: str | None,
        include_legs: str | None,
        sort: str | None,
        limit: int,
        offset: int,
    ) -> Response:
        """#28."""
        limit, offset = check_limit(limit, offset)
        order = parse_sort(sort, STRATEGY_SORTS, "name")
        legs_on = parse_bool(include_legs, "include_legs", True)
        pf = await resolve_portfolio(self.db, principal, portfolio_id)
        present = await self.views.present()
        sql, args = select_rows(PositionFilter(portfolio_id=pf.id), present, order=[("symbol", False)])
        rows = await self.db.fetch(sql, *args)
        tags = [t for t in await self._owner_tags(pf.user_id) if t["tag_type"] == "strategy"]
        prefix = (q or "").strip().lower()
        tags = [t for t in tags if t["name_key"].startswith(prefix)]
        labels = [t["name"] for t in tags]
        index = {t["id"]: i for i, t in enumerate(tags)}
        members: list[int] = []
        groups: list[int] = []
        untagged = 0
        for i, row in enumerate(rows):
            strategies = [t for t in tags_json(row) if t["tag_type"] == "strategy"]
            if not strategies:
                untagged += 1
            for t in strategies:
                g = index.get(UUID(str(t["id"])))
                if g is not None:
                    members.append(i)
                    groups.append(g)
        book = book_from_rows(rows)
        sums = compute.group_sums(
            book, np.array(members, dtype=np.int64), np.array(groups, dtype=np.int64), len(labels)
        )
        items = []
        for g, tag in enumerate(tags):
            idx = [m for m, gg in zip(members, groups, strict=True) if gg == g]
            block = sums_block(sums, g)
            count = int(sums.count[g])
            items.append(
                {
                    "tag_id": str(tag["id"]),
                    "name": tag["name"],
                    "color": str(tag["color"]).strip(),
                    "leg_count": count,
                    "underlyings": sorted({rows[i]["underlying_symbol"] for i in idx}),
                    "market_value": block["market_value"],
                    "exposure": block["exposure"],
                    "notional": block["notional"],
                    "unrealized_pnl": block["unrealized_pnl"],
                    "daily_pnl": block["daily_pnl"],
                    "greeks": block["greeks"] if count else None,
                    "legs": [
                        {
                            "position_id": str(rows[i]["id"]),
                            "symbol": rows[i]["symbol"],
                            "position_type": rows[i]["position_type"],
                            "quantity": qty(rows[i]["quantity"]),
                        }
                        for i in idx
                    ]
                    if legs_on
                    else None,
                    "_sort": {
                        "name": tag["name_key"],
                        "gross_exposure": int(sums.sums["gross_exposure"][g]),
                        "unrealized_pnl": int(sums.sums["unrealized_pnl"][g]),
                        "count": count,
                    },
                }
            )
        for name, desc in reversed([*order, ("name", False)]):
            items.sort(key=sort_key(name), reverse=desc)
        for it in items:
            it.pop("_sort")
        page = items[offset : offset + limit]
        return envelope(
            page,
            request=request,
            page=page_block(limit, offset, len(items)),
            as_of=iso_date(pf.valuation_date),
            data_source=await self.provenance.data_source(pf.valuation_date),
            untagged_positions=untagged,
        )
