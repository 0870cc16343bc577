"""#21 `GET /api/v1/portfolio` in one raw asyncpg statement (the route's hot path).

The statement resolves the portfolio (explicit id or the caller's default, api.md §2.8), sums its
open positions' stored valuation in SQL (exact NUMERIC) and reads the optional analytics that
exist, keyed on the valued date: dollar Greeks, the latest snapshot (risk, MTD/YTD), the last run
status, the latest expected trading day and the provenance of the SPY close.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import numpy as np

from common.auth import Principal
from common.db import Database
from common.formatting import money
from ingest import catalog
from ingest.access import not_found, parse_uuid
from ingest.positions_query import TOTALS_SQL

EASTERN = ZoneInfo("America/New_York")
# Closes of day D are expected in storage once the evening run had time to finish.
PRICES_EXPECTED_AFTER = time(18, 0)
POSITION_TYPES = ("LONG", "SHORT", "LC", "LP", "SC", "SP")

_PORTFOLIO_CTE = """
WITH pf AS (
    SELECT id, user_id, name, description, status, currency, cash_balance, is_default, is_demo_seed,
           valuation_date, valued_at, created_at, updated_at
    FROM ingest.portfolio
    WHERE deleted_at IS NULL
      AND CASE WHEN $1::uuid IS NOT NULL THEN id = $1 AND ($3 OR user_id = $2)
               ELSE user_id = $2 AND status = 'active' END
    ORDER BY is_default DESC, created_at, id
    LIMIT 1
)"""

_AGGREGATES = f"""
    SELECT count(*) AS n_total,
           {", ".join(f"count(*) FILTER (WHERE p.position_type = '{t}') AS n_{t.lower()}" for t in POSITION_TYPES)},
           count(*) FILTER (WHERE p.instrument_type = 'option') AS n_options,
           count(*) FILTER (WHERE p.market_value IS NULL) AS unpriced,
           count(*) FILTER (WHERE p.price_source = 'stale') AS stale,
           count(*) FILTER (WHERE p.instrument_type = 'option' AND p.market_value IS NOT NULL
                            AND p.dollar_exposure IS NULL) AS options_without_greeks,
           max(p.price_date) AS prices_as_of,
           {TOTALS_SQL}
    FROM ingest.position p WHERE p.portfolio_id = pf.id AND p.status = 'open'"""


def expected_prices_bound(now: datetime) -> date:
    """The latest date whose closes should be stored by `now` (US/Eastern evening run)."""
    local = now.astimezone(EASTERN)
    return local.date() if local.time() >= PRICES_EXPECTED_AFTER else local.date() - timedelta(days=1)


def _period_sql(key: str, unit: str, present: frozenset[str]) -> str:
    """(first trading day, Σ snapshot daily P&L, snapshots, trading days, snapshot on the first day) of the period."""
    start = f"date_trunc('{unit}', b.valuation_date)::date"
    if catalog.TRADING_DAY in present:
        first = f"(SELECT min(trading_date) FROM marketdata.api_trading_day WHERE trading_date >= {start})"
        days = (
            f"(SELECT count(*) FROM marketdata.api_trading_day WHERE trading_date >= {start} "
            "AND trading_date < b.valuation_date)"
        )
    else:
        first, days = "NULL::date", "NULL::bigint"
    return (
        f"(SELECT row({first}, sum(s.daily_pnl), count(*), {days}, bool_or(s.snapshot_date = {first})) "
        f"FROM stress.api_snapshot s WHERE s.portfolio_id = b.id AND s.snapshot_date >= {start} "
        f"AND s.snapshot_date < b.valuation_date) AS {key}"
    )


def _money(expr: str) -> str:
    return f"({expr})::numeric(20,2)::text"


def _pct(expr: str) -> str:
    """A fraction of equity rounded to 4 dp; NULL when equity ≤ 0 (calculations.md §2.1)."""
    return f"CASE WHEN b.equity > 0 THEN round(({expr}) / b.equity, 4)::float8 END"


def _utc(expr: str) -> str:
    return f"""to_char({expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""


_VIEW_SIDES = ("long", "short", "gross", "net")
_BOOK_COLUMNS = ", ".join(
    [
        "b.id::text AS id_text",
        _utc("b.created_at") + " AS created_text",
        _utc("b.valued_at") + " AS valued_text",
        _money("b.equity") + " AS equity_text",
        _money("b.cash_balance") + " AS cash_text",
        _money("b.notional") + " AS notional_text",
        _money("b.unrealized_pnl") + " AS unrealized_text",
        _money("b.daily_pnl") + " AS day_text",
        _money("b.net_exposure") + " AS dollar_delta_text",
        "CASE WHEN b.equity - b.daily_pnl > 0 THEN round(b.daily_pnl / (b.equity - b.daily_pnl), 4)::float8 END "
        "AS day_pct",
        *[
            f"{_money(f'b.{side}_{suffix}')} AS {view}_{side}, {_pct(f'b.{side}_{suffix}')} AS {view}_{side}_pct"
            for view, suffix in (("mv", "mv"), ("ex", "exposure"))
            for side in _VIEW_SIDES
        ],
    ]
)


def summary_sql(present: frozenset[str]) -> str:
    """One statement: resolve the portfolio, sum its book, read the optional analytics that exist.

    Money leaves PostgreSQL as exact 2-dp text and ratios as 4-dp numbers, so the route only
    assembles the body (the hot path of api.md #21).
    """
    parts = ["b.*", _BOOK_COLUMNS]
    if catalog.POSITION_GREEK in present:
        parts.append(
            "(SELECT row(COALESCE(sum(g.dollar_gamma_1pct), 0)::numeric(20,2)::text, "
            "round(COALESCE(sum(g.theta), 0)::numeric, 4)::float8, "
            "round(COALESCE(sum(g.vega), 0)::numeric, 4)::float8, "
            "round(COALESCE(sum(g.rho), 0)::numeric, 4)::float8, count(*)) "
            "FROM greeks.api_position_greek g JOIN ingest.position o ON o.id = g.position_id "
            "WHERE o.portfolio_id = b.id AND o.status = 'open' AND o.instrument_type = 'option' "
            "AND g.calculation_date = b.valuation_date) AS greeks"
        )
    if catalog.SNAPSHOT in present:
        parts.append(
            "(SELECT row(s.snapshot_date, round(s.market_beta_ex_ante::numeric, 4)::float8, "
            "round(s.annualized_volatility::numeric, 4)::float8, s.var_95_1d::numeric(20,2)::text) "
            "FROM stress.api_snapshot s WHERE s.portfolio_id = b.id ORDER BY s.snapshot_date DESC LIMIT 1) AS snap"
        )
        parts.append(_period_sql("mtd", "month", present))
        parts.append(_period_sql("ytd", "year", present))
    if catalog.TRADING_DAY in present:
        parts.append("(SELECT max(trading_date) FROM marketdata.api_trading_day WHERE trading_date <= $4) AS expected")
    if catalog.DAILY_PRICE in present:
        parts.append(
            "(SELECT source FROM marketdata.api_daily_price WHERE symbol = 'SPY' "
            "AND price_date = b.valuation_date) AS spy_source"
        )
    if catalog.BATCH_RUN in present:
        parts.append(
            "(SELECT status FROM marketdata.api_batch_run r WHERE r.portfolio_ids IS NULL "
            "OR b.id = ANY(r.portfolio_ids) ORDER BY r.created_at DESC LIMIT 1) AS last_run_status"
        )
    return (
        f"{_PORTFOLIO_CTE}\nSELECT $4::date AS _bound, {', '.join(parts)} FROM ("
        f"SELECT pf.*, a.*, pf.cash_balance + a.net_mv AS equity FROM pf CROSS JOIN LATERAL ({_AGGREGATES}\n) a"
        ") b"
    )


_SQL_CACHE: dict[frozenset[str], str] = {}


def cached_summary_sql(present: frozenset[str]) -> str:
    """`summary_sql` memoised per set of present views (one prepared statement each)."""
    sql = _SQL_CACHE.get(present)
    if sql is None:
        sql = _SQL_CACHE[present] = summary_sql(present)
    return sql


def _period_pnl(block: Any, as_of: date, start: date, day: Decimal) -> Decimal | None:
    """Snapshot P&L of [first trading day of the period, as_of) plus today's; None if history has gaps."""
    if block is None:
        return None
    first, total, count, days, has_first = block
    first_day = first or np.busday_offset(np.datetime64(start, "D"), 0, roll="forward").astype(date)
    if first_day >= as_of:
        return day
    complete = bool(has_first) and (days is None or count == days)
    return (total or Decimal(0)) + day if complete else None


async def portfolio_summary(
    db: Database, present: frozenset[str], principal: Principal, portfolio_id: str | None, now: datetime
) -> tuple[dict[str, Any], date | None, str | None]:
    """The #21 body, its `meta.as_of` and `meta.data_source`."""
    pid: UUID | None = parse_uuid(portfolio_id, "query.portfolio_id")
    row = await db.fetchrow(
        cached_summary_sql(present), pid, principal.user_id, principal.is_admin, expected_prices_bound(now)
    )
    if row is None:
        raise not_found()
    as_of: date | None = row["valuation_date"]
    day = row["daily_pnl"]
    extra: Any = row if as_of is not None else {}
    greeks_row = extra.get("greeks") if extra else None
    snap = extra.get("snap") if extra else None
    mtd = ytd = None
    if as_of is not None and extra:
        mtd = _period_pnl(extra.get("mtd"), as_of, as_of.replace(day=1), day)
        ytd = _period_pnl(extra.get("ytd"), as_of, as_of.replace(month=1, day=1), day)
    expected = extra.get("expected") if extra else None
    if as_of is None:
        data_status = "no_history"
    elif expected is not None and as_of < expected:
        data_status = "stale"
    elif row["unpriced"] or row["options_without_greeks"] or row["stale"]:
        data_status = "partial"
    else:
        data_status = "fresh"
    views = {
        name: {
            **{side: row[f"{prefix}_{side}"] for side in _VIEW_SIDES},
            **{f"{side}_pct": row[f"{prefix}_{side}_pct"] for side in _VIEW_SIDES},
        }
        for name, prefix in (("market_value", "mv"), ("exposure", "ex"))
    }
    body = {
        "portfolio": {
            "id": row["id_text"],
            "name": row["name"],
            "description": row["description"],
            "status": row["status"],
            "currency": row["currency"],
            "is_default": row["is_default"],
            "created_at": row["created_text"],
        },
        "as_of": as_of.isoformat() if as_of else None,
        "valued_at": row["valued_text"],
        "equity": row["equity_text"],
        "cash_balance": row["cash_text"],
        "market_value": views["market_value"],
        "exposure": views["exposure"],
        "notional": row["notional_text"],
        "pnl": {
            "unrealized": row["unrealized_text"],
            "day": row["day_text"],
            "day_pct": row["day_pct"],
            "mtd": money(mtd),
            "ytd": money(ytd),
        },
        "counts": {"total": row["n_total"], **{t: row[f"n_{t.lower()}"] for t in POSITION_TYPES}},
        "greeks": {
            "dollar_delta": row["dollar_delta_text"],
            "dollar_gamma_1pct": greeks_row[0] if greeks_row else None,
            "theta": greeks_row[1] if greeks_row else None,
            "vega": greeks_row[2] if greeks_row else None,
            "rho": greeks_row[3] if greeks_row else None,
        },
        "risk": {
            "market_beta": snap[1] if snap else None,
            "annualized_volatility": snap[2] if snap else None,
            "var_95_1d": snap[3] if snap else None,
        },
        "coverage": {
            "positions_unpriced": row["unpriced"],
            "positions_stale": row["stale"],
            "options_without_greeks": row["options_without_greeks"],
        },
        "freshness": {
            "prices_as_of": row["prices_as_of"].isoformat() if row["prices_as_of"] else None,
            "last_snapshot_date": snap[0].isoformat() if snap and snap[0] else None,
            "last_run_status": extra.get("last_run_status") if extra else None,
            "data_status": data_status,
        },
    }
    source = None
    if as_of is not None:
        source = "fixture" if extra and extra.get("spy_source") == "fixture" else "live"
    return body, as_of, source
