"""Read side of positions (#25-#28): one filtered SQL source, rendered as api.md §3.1 Position.

Filtering, sorting and paging run in PostgreSQL (raw asyncpg); classification comes from
`marketdata.api_security` (options take their underlying's name, sector and industry) and Greeks
from `greeks.api_latest_position_greek`, each joined only when that view exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

from common.formatting import iso_date, iso_datetime, money, price, qty, ratio, stat
from ingest import catalog

# §2.4 buckets: funds and ETFs form `ETF/Fund`; no sector → `Unknown`.
SECTOR_SQL = (
    "CASE WHEN und.security_type IN ('etf', 'mutual_fund') THEN 'ETF/Fund' "
    "WHEN COALESCE(und.sector, '') = '' THEN 'Unknown' ELSE und.sector END"
)
ASSET_CLASS_SQL = (
    "CASE WHEN p.instrument_type = 'option' THEN 'option' "
    "WHEN sec.security_type IN ('etf', 'mutual_fund') THEN sec.security_type ELSE 'stock' END"
)
SORT_SQL: dict[str, str] = {
    "symbol": "p.symbol",
    "market_value": "p.market_value",
    "dollar_exposure": "p.dollar_exposure",
    "notional": "p.notional",
    "unrealized_pnl": "p.unrealized_pnl",
    "unrealized_pnl_pct": "(p.unrealized_pnl / NULLIF(abs(p.cost_basis), 0))",
    "daily_pnl": "p.daily_pnl",
    "weight": "abs(p.dollar_exposure)",
    "entry_date": "p.entry_date",
    "expiration_date": "p.expiration_date",
}
SORT_FIELDS = tuple(SORT_SQL)

_TAGS_SQL = """COALESCE((
    SELECT jsonb_agg(jsonb_build_object('id', t.id, 'name', t.name, 'tag_type', t.tag_type, 'color', t.color)
                     ORDER BY t.tag_type DESC, t.name_key)
    FROM ingest.position_tag pt JOIN ingest.tag t ON t.id = pt.tag_id AND t.deleted_at IS NULL
    WHERE pt.position_id = p.id), '[]'::jsonb)"""

_GREEK_COLUMNS = (
    "g.calculation_date AS g_date, g.status AS g_status, g.delta AS g_delta, g.gamma AS g_gamma, "
    "g.theta AS g_theta, g.vega AS g_vega, g.rho AS g_rho, g.dollar_delta AS g_dollar_delta, "
    "g.dollar_gamma_1pct AS g_dollar_gamma, g.underlying_price AS g_underlying_price, "
    "g.implied_volatility AS g_iv, g.iv_source AS g_iv_source, g.risk_free_rate AS g_rate, "
    "g.dividend_yield AS g_dividend_yield, g.time_to_expiry_years AS g_tte, g.model_price AS g_model_price"
)
_NO_GREEK_COLUMNS = ", ".join(
    f"NULL{cast} AS {name}"
    for name, cast in (
        ("g_date", "::date"),
        ("g_status", "::text"),
        ("g_delta", "::float8"),
        ("g_gamma", "::float8"),
        ("g_theta", "::float8"),
        ("g_vega", "::float8"),
        ("g_rho", "::float8"),
        ("g_dollar_delta", "::numeric"),
        ("g_dollar_gamma", "::numeric"),
        ("g_underlying_price", "::numeric"),
        ("g_iv", "::float8"),
        ("g_iv_source", "::text"),
        ("g_rate", "::float8"),
        ("g_dividend_yield", "::float8"),
        ("g_tte", "::float8"),
        ("g_model_price", "::float8"),
    )
)

_NO_SECURITY = (
    "(SELECT NULL::text AS symbol, NULL::text AS security_type, NULL::text AS name, NULL::text AS sector, "
    "NULL::text AS industry, NULL::text AS exchange, NULL::text AS country, NULL::text AS currency, "
    "NULL::numeric AS market_cap)"
)

POSITION_COLUMNS = (
    "p.id, p.portfolio_id, p.symbol, p.instrument_type, p.position_type, p.quantity, p.multiplier, "
    "p.underlying_symbol, p.option_type, p.strike_price, p.expiration_date, p.entry_price, p.entry_date, "
    "p.cost_basis, p.status, p.closed_at, p.exit_price, p.exit_date, p.realized_pnl, p.last_price, p.price_date, "
    "p.price_source, p.underlying_price, p.market_value, p.dollar_exposure, p.notional, p.unrealized_pnl, "
    "p.daily_pnl, p.valuation_date, p.valued_at, p.created_at, p.updated_at"
)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass
class PositionFilter:
    """The filters of #25 (also used by #26 and #28)."""

    portfolio_id: UUID | None
    types: list[str] = field(default_factory=list)
    instrument_types: list[str] = field(default_factory=list)
    tag_ids: list[UUID] = field(default_factory=list)
    tag_mode: str = "any"
    strategy_tag_id: UUID | None = None
    underlyings: list[str] = field(default_factory=list)
    sectors: list[str] = field(default_factory=list)
    q: str | None = None
    view: str = "portfolio"
    expiring_within_days: int | None = None
    reference_date: date | None = None
    min_market_value: Decimal | None = None
    max_market_value: Decimal | None = None
    include_closed: bool = False
    position_id: UUID | None = None
    owner_id: UUID | None = None  # restrict to live portfolios of this user (non-admin point reads)


class Sql:
    """Positional-parameter accumulator for asyncpg."""

    def __init__(self) -> None:
        self.args: list[Any] = []

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


def filtered_source(f: PositionFilter, present: frozenset[str], sql: Sql) -> str:
    """`FROM … WHERE …` of the filtered positions (aliases p, sec, und, g)."""
    joins = []
    if catalog.SECURITY in present:
        joins.append("LEFT JOIN marketdata.api_security sec ON sec.symbol = p.symbol")
        joins.append("LEFT JOIN marketdata.api_security und ON und.symbol = p.underlying_symbol")
    else:
        joins.append(f"LEFT JOIN {_NO_SECURITY} sec ON false")
        joins.append(f"LEFT JOIN {_NO_SECURITY} und ON false")
    if catalog.LATEST_GREEK in present:
        joins.append("LEFT JOIN greeks.api_latest_position_greek g ON g.position_id = p.id")
    where = []
    if f.portfolio_id is not None:
        where.append(f"p.portfolio_id = {sql.arg(f.portfolio_id)}::uuid")
    if f.position_id is not None:
        where.append(f"p.id = {sql.arg(f.position_id)}::uuid")
    if f.owner_id is not None:
        where.append(
            "EXISTS (SELECT 1 FROM ingest.portfolio pf WHERE pf.id = p.portfolio_id AND pf.deleted_at IS NULL "
            f"AND pf.user_id = {sql.arg(f.owner_id)}::uuid)"
        )
    if not f.include_closed:
        where.append("p.status = 'open'")
    if f.types:
        where.append(f"p.position_type = ANY({sql.arg(f.types)}::text[])")
    if f.instrument_types:
        where.append(f"p.instrument_type = ANY({sql.arg(f.instrument_types)}::text[])")
    if f.tag_ids:
        ids = sql.arg(f.tag_ids)
        if f.tag_mode == "all":
            where.append(
                f"(SELECT count(DISTINCT pt.tag_id) FROM ingest.position_tag pt WHERE pt.position_id = p.id "
                f"AND pt.tag_id = ANY({ids}::uuid[])) = cardinality({ids}::uuid[])"
            )
        else:
            where.append(
                f"EXISTS (SELECT 1 FROM ingest.position_tag pt WHERE pt.position_id = p.id "
                f"AND pt.tag_id = ANY({ids}::uuid[]))"
            )
    if f.strategy_tag_id is not None:
        where.append(
            f"EXISTS (SELECT 1 FROM ingest.position_tag pt WHERE pt.position_id = p.id "
            f"AND pt.tag_id = {sql.arg(f.strategy_tag_id)}::uuid)"
        )
    if f.underlyings:
        where.append(f"p.underlying_symbol = ANY({sql.arg(f.underlyings)}::text[])")
    if f.sectors:
        where.append(f"lower({SECTOR_SQL}) = ANY({sql.arg([s.lower() for s in f.sectors])}::text[])")
    if f.q:
        pattern = sql.arg(_escape_like(f.q) + "%")
        where.append(
            f"(p.symbol ILIKE {pattern} OR p.underlying_symbol ILIKE {pattern} OR und.name ILIKE {pattern} "
            f"OR sec.name ILIKE {pattern})"
        )
    if f.view == "longs":
        where.append("p.quantity > 0")
    elif f.view == "shorts":
        where.append("p.quantity < 0")
    if f.expiring_within_days is not None and f.reference_date is not None:
        start = sql.arg(f.reference_date)
        end = sql.arg(f.reference_date + timedelta(days=f.expiring_within_days))
        where.append(f"p.instrument_type = 'option' AND p.expiration_date BETWEEN {start}::date AND {end}::date")
    if f.min_market_value is not None:
        where.append(f"p.market_value >= {sql.arg(f.min_market_value)}::numeric")
    if f.max_market_value is not None:
        where.append(f"p.market_value <= {sql.arg(f.max_market_value)}::numeric")
    return "FROM ingest.position p " + " ".join(joins) + " WHERE " + " AND ".join(where)


def select_rows(
    f: PositionFilter,
    present: frozenset[str],
    *,
    order: list[tuple[str, bool]] | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[str, list[Any]]:
    """Full position rows (with tags, classification and Greeks) of the filtered set."""
    sql = Sql()
    source = filtered_source(f, present, sql)
    greeks = _GREEK_COLUMNS if catalog.LATEST_GREEK in present else _NO_GREEK_COLUMNS
    text = (
        f"SELECT {POSITION_COLUMNS}, sec.security_type AS security_type, "
        "COALESCE(und.name, sec.name) AS name, und.sector AS sector, und.industry AS industry, "
        f"{SECTOR_SQL} AS sector_bucket, {ASSET_CLASS_SQL} AS asset_class, {_TAGS_SQL} AS tags, {greeks} {source}"
    )
    if order is not None:
        keys = [f"{SORT_SQL[name]} {'DESC' if desc else 'ASC'} NULLS LAST" for name, desc in order]
        text += " ORDER BY " + ", ".join([*keys, "p.id"])
    if limit is not None:
        text += f" LIMIT {sql.arg(limit)} OFFSET {sql.arg(offset)}"
    return text, sql.args


def select_totals(f: PositionFilter, present: frozenset[str]) -> tuple[str, list[Any]]:
    """Count and the two views' totals (open positions only) over the filtered set."""
    sql = Sql()
    source = filtered_source(f, present, sql)
    gross = (
        "(SELECT COALESCE(sum(abs(q.dollar_exposure)), 0) FROM ingest.position q "
        "WHERE q.portfolio_id = $1 AND q.status = 'open') AS portfolio_gross"
    )
    text = f"SELECT count(*) AS total, {gross}, {TOTALS_SQL} {source}"
    return text, sql.args


# Sums over open positions; NULL values (unpriced, options without a delta) are skipped.
TOTALS_SQL = """
    COALESCE(sum(p.market_value) FILTER (WHERE p.status = 'open' AND p.market_value > 0), 0) AS long_mv,
    COALESCE(sum(p.market_value) FILTER (WHERE p.status = 'open' AND p.market_value < 0), 0) AS short_mv,
    COALESCE(sum(abs(p.market_value)) FILTER (WHERE p.status = 'open'), 0) AS gross_mv,
    COALESCE(sum(p.market_value) FILTER (WHERE p.status = 'open'), 0) AS net_mv,
    COALESCE(sum(p.dollar_exposure) FILTER (WHERE p.status = 'open' AND p.dollar_exposure > 0), 0) AS long_exposure,
    COALESCE(sum(p.dollar_exposure) FILTER (WHERE p.status = 'open' AND p.dollar_exposure < 0), 0) AS short_exposure,
    COALESCE(sum(abs(p.dollar_exposure)) FILTER (WHERE p.status = 'open'), 0) AS gross_exposure,
    COALESCE(sum(p.dollar_exposure) FILTER (WHERE p.status = 'open'), 0) AS net_exposure,
    COALESCE(sum(p.notional) FILTER (WHERE p.status = 'open'), 0) AS notional,
    COALESCE(sum(p.unrealized_pnl) FILTER (WHERE p.status = 'open'), 0) AS unrealized_pnl,
    COALESCE(sum(p.daily_pnl) FILTER (WHERE p.status = 'open'), 0) AS daily_pnl"""


def views_block(row: Any) -> dict[str, Any]:
    """`{market_value: {long, short, gross, net}, exposure: {…}, notional}` from summed columns."""
    return {
        "market_value": {
            "long": money(row["long_mv"]),
            "short": money(row["short_mv"]),
            "gross": money(row["gross_mv"]),
            "net": money(row["net_mv"]),
        },
        "exposure": {
            "long": money(row["long_exposure"]),
            "short": money(row["short_exposure"]),
            "gross": money(row["gross_exposure"]),
            "net": money(row["net_exposure"]),
        },
        "notional": money(row["notional"]),
    }


def greeks_json(row: Any) -> dict[str, Any] | None:
    """api.md §3.3 Greeks of an option row; None for stocks and options without a Greeks row."""
    if row["instrument_type"] != "option" or row["g_status"] is None:
        return None
    return {
        "delta": stat(row["g_delta"]),
        "gamma": stat(row["g_gamma"]),
        "theta": stat(row["g_theta"]),
        "vega": stat(row["g_vega"]),
        "rho": stat(row["g_rho"]),
        "dollar_delta": money(row["g_dollar_delta"]),
        "dollar_gamma_1pct": money(row["g_dollar_gamma"]),
        "calculation_date": iso_date(row["g_date"]),
        "status": row["g_status"],
        "inputs": {
            "underlying_price": price(row["g_underlying_price"]),
            "implied_volatility": stat(row["g_iv"]),
            "iv_source": row["g_iv_source"],
            "risk_free_rate": stat(row["g_rate"]),
            "dividend_yield": stat(row["g_dividend_yield"]),
            "time_to_expiry_years": stat(row["g_tte"]),
            "model_price": stat(row["g_model_price"]),
        },
    }


def tags_json(row: Any) -> list[dict[str, Any]]:
    """TagRef[] of a row (`{id, name, tag_type, color}`)."""
    raw = row["tags"]
    tags: list[dict[str, Any]] = orjson.loads(raw) if isinstance(raw, str | bytes) else list(raw or [])
    for tag in tags:
        tag["color"] = str(tag["color"]).strip()
    return tags


def position_json(
    row: Any,
    *,
    reference_date: date | None,
    gross_exposure: Decimal | None,
    include_greeks: bool = True,
    include_factors: bool = False,
) -> dict[str, Any]:
    """api.md §3.1 Position from a `select_rows` row."""
    option = None
    if row["instrument_type"] == "option":
        expiry = row["expiration_date"]
        option = {
            "option_type": row["option_type"],
            "strike_price": price(row["strike_price"]),
            "expiration_date": iso_date(expiry),
            "days_to_expiry": (expiry - reference_date).days if reference_date is not None else None,
        }
    cost = row["cost_basis"]
    unrealized = row["unrealized_pnl"]
    exposure = row["dollar_exposure"]
    security_type = row["security_type"] or ("option" if row["instrument_type"] == "option" else None)
    out: dict[str, Any] = {
        "id": str(row["id"]),
        "portfolio_id": str(row["portfolio_id"]),
        "symbol": row["symbol"],
        "instrument_type": row["instrument_type"],
        "security_type": security_type,
        "position_type": row["position_type"],
        "quantity": qty(row["quantity"]),
        "multiplier": int(row["multiplier"]),
        "underlying_symbol": row["underlying_symbol"],
        "option": option,
        "entry_price": price(row["entry_price"]),
        "entry_date": iso_date(row["entry_date"]),
        "cost_basis": money(cost),
        "last_price": price(row["last_price"]),
        "price_date": iso_date(row["price_date"]),
        "price_source": row["price_source"],
        "underlying_price": price(row["underlying_price"]),
        "market_value": money(row["market_value"]),
        "dollar_exposure": money(exposure),
        "notional": money(row["notional"]),
        "unrealized_pnl": money(unrealized),
        "unrealized_pnl_pct": ratio(unrealized, abs(cost) if cost is not None else None),
        "daily_pnl": money(row["daily_pnl"]),
        "weight": ratio(abs(exposure), gross_exposure) if exposure is not None else None,
        "name": row["name"],
        "sector": row["sector"],
        "industry": row["industry"],
        "tags": tags_json(row),
        "status": row["status"],
        "realized_pnl": money(row["realized_pnl"]),
        "exit_price": price(row["exit_price"]),
        "exit_date": iso_date(row["exit_date"]),
        "valued_at": iso_datetime(row["valued_at"]),
        "created_at": iso_datetime(row["created_at"]),
        "updated_at": iso_datetime(row["updated_at"]),
    }
    if include_greeks:
        out["greeks"] = greeks_json(row)
    if include_factors:
        out["factors"] = None  # the factors engine publishes no position view yet
    return out


# Whole-book figures that relative measures divide by (weight, share_of_gross, pct_of_equity).
BOOK_SQL = (
    "SELECT COALESCE(sum(abs(p.dollar_exposure)), 0) AS gross, COALESCE(sum(p.market_value), 0) AS net_mv, "
    "pf.cash_balance, pf.valuation_date FROM ingest.portfolio pf "
    "LEFT JOIN ingest.position p ON p.portfolio_id = pf.id AND p.status = 'open' WHERE pf.id = $1 "
    "GROUP BY pf.id"
)
