"""#29 portfolio Greeks summary, aggregated in SQL from greeks.position_greek and ingest.api_open_position.

Money sums run on NUMERIC columns (exact); share deltas and gammas are grouped per underlying only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import NotCalculated
from common.formatting import iso_date, money, qty, stat
from greeks import repository
from greeks.present import contract_object, greeks_object

NOT_CALCULATED_HINT = "POST /api/v1/risk/greeks/calculate"
_ZERO = Decimal("0")


@dataclass(frozen=True)
class SummaryQuery:
    """Parameters of #29 after validation."""

    portfolio_id: UUID
    view: str  # portfolio | longs | shorts
    underlyings: list[str]
    expiring_within_days: int
    include_positions: bool
    as_of_date: date | None = None


def _filters(q: SummaryQuery, alias: str, underlying_col: str = "underlying_symbol") -> tuple[str, dict[str, Any]]:
    parts: list[str] = []
    params: dict[str, Any] = {}
    if q.view == "longs":
        parts.append(f"{alias}.quantity > 0")
    elif q.view == "shorts":
        parts.append(f"{alias}.quantity < 0")
    if q.underlyings:
        parts.append(f"{alias}.{underlying_col} = ANY(:unds)")
        params["unds"] = q.underlyings
    return "".join(f" AND {p}" for p in parts), params


async def _all(session: AsyncSession, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in (await session.execute(sa.text(sql), params)).mappings().all()]


def _s(value: Any) -> float:
    """A float statistic from a SQL sum (NULL = no contributing rows = 0)."""
    return 0.0 if value is None else float(value)


async def _portfolio_dollar_delta(session: AsyncSession, q: SummaryQuery) -> Decimal:
    where, params = _filters(q, "p")
    rows = await _all(
        session,
        f"SELECT sum(p.dollar_exposure) AS dd FROM ingest.api_open_position p WHERE p.portfolio_id = :pid{where}",
        {"pid": q.portfolio_id, **params},
    )
    return rows[0]["dd"] or _ZERO


def _empty_totals() -> dict[str, Any]:
    return {"dollar_delta": money(0), "dollar_gamma_1pct": money(0), "theta": 0.0, "vega": 0.0, "rho": 0.0}


async def _no_options(session: AsyncSession, q: SummaryQuery) -> tuple[dict[str, Any], date | None]:
    as_of = await repository.latest_price_date(session, symbol="SPY")
    data = {
        "portfolio_id": str(q.portfolio_id),
        "view": q.view,
        "calculation_date": None,
        "data_status": "fresh",
        "option_totals": _empty_totals(),
        "portfolio_dollar_delta": money(await _portfolio_dollar_delta(session, q)),
        "by_underlying": [],
        "expiring": {
            "within_days": q.expiring_within_days,
            "positions": 0,
            "dollar_delta": money(0),
            "dollar_gamma_1pct": money(0),
        },
        "coverage": {
            "option_positions": 0,
            "ok": 0,
            "expired": 0,
            "missing_inputs": 0,
            "error": 0,
            "not_calculated": 0,
            "failed": [],
        },
        "note": "no option positions",
        "positions": [] if q.include_positions else None,
    }
    return data, as_of


async def greeks_summary(session: AsyncSession, q: SummaryQuery) -> tuple[dict[str, Any], date | None]:
    """The #29 body and its as-of date; NOT_CALCULATED when options exist but no Greeks are stored."""
    calc = q.as_of_date
    if calc is None:
        calc = await repository.latest_calculation_date(session, portfolio_id=q.portfolio_id)
    elif not await repository.has_calculation(session, portfolio_id=q.portfolio_id, calculation_date=calc):
        calc = None
    if calc is None:
        if await repository.open_option_count(session, portfolio_id=q.portfolio_id) > 0:
            raise NotCalculated(
                "Greeks have not been calculated for this portfolio"
                + (f" on {q.as_of_date.isoformat()}" if q.as_of_date else ""),
                hint=NOT_CALCULATED_HINT,
            )
        return await _no_options(session, q)

    where, fparams = _filters(q, "g")
    base = {"pid": q.portfolio_id, "d": calc, **fparams}
    src = f"FROM greeks.position_greek g WHERE g.portfolio_id = :pid AND g.calculation_date = :d{where}"

    by_status = await _all(
        session,
        f"""SELECT g.status, count(*) AS n, sum(g.dollar_delta) AS dd, sum(g.dollar_gamma_1pct) AS dg,
                   sum(g.theta) AS th, sum(g.vega) AS ve, sum(g.rho) AS rh {src} GROUP BY g.status""",
        base,
    )
    counts = {s: 0 for s in ("ok", "expired", "missing_inputs", "error")}
    dd = dg = _ZERO
    th = ve = rh = 0.0
    for r in by_status:
        counts[r["status"]] = int(r["n"])
        dd += r["dd"] or _ZERO
        dg += r["dg"] or _ZERO
        th += _s(r["th"])
        ve += _s(r["ve"])
        rh += _s(r["rh"])

    per_und = await _all(
        session,
        f"""SELECT g.underlying_symbol AS u, count(*) AS n, sum(g.delta) AS delta, sum(g.dollar_delta) AS dd,
                   sum(g.gamma) AS gamma, sum(g.dollar_gamma_1pct) AS dg, sum(g.theta) AS th, sum(g.vega) AS ve,
                   sum(g.rho) AS rh
            {src} GROUP BY g.underlying_symbol ORDER BY g.underlying_symbol""",
        base,
    )
    stocks: dict[str, dict[str, Any]] = {}
    if per_und:
        view_where, _ = _filters(SummaryQuery(q.portfolio_id, q.view, [], 0, False), "p")
        for r in await _all(
            session,
            f"""SELECT p.underlying_symbol AS u, sum(p.quantity) AS shares, sum(p.market_value) AS mv
                FROM ingest.api_open_position p
                WHERE p.portfolio_id = :pid AND p.instrument_type = 'stock'
                  AND p.underlying_symbol = ANY(:us){view_where}
                GROUP BY p.underlying_symbol""",
            {"pid": q.portfolio_id, "us": [r["u"] for r in per_und]},
        ):
            stocks[r["u"]] = r
    by_underlying = []
    for r in per_und:
        stock = stocks.get(r["u"], {})
        shares = stock.get("shares") or _ZERO
        option_delta = _s(r["delta"])
        by_underlying.append(
            {
                "underlying": r["u"],
                "stock_shares": qty(shares),
                "option_delta": stat(option_delta),
                "net_delta_shares": stat(float(shares) + option_delta),
                "dollar_delta": money((stock.get("mv") or _ZERO) + (r["dd"] or _ZERO)),
                "option_dollar_delta": money(r["dd"] or _ZERO),
                "dollar_gamma_1pct": money(r["dg"] or _ZERO),
                "gamma": stat(_s(r["gamma"])),
                "theta": stat(_s(r["th"])),
                "vega": stat(_s(r["ve"])),
                "rho": stat(_s(r["rh"])),
                "option_positions": int(r["n"]),
            }
        )

    expiring = (
        await _all(
            session,
            f"""SELECT count(*) AS n, sum(g.dollar_delta) AS dd, sum(g.dollar_gamma_1pct) AS dg {src}
                AND g.status <> 'expired' AND g.expiration_date BETWEEN :d AND :until""",
            {**base, "until": calc + timedelta(days=q.expiring_within_days)},
        )
    )[0]
    failed = await _all(
        session,
        f"""SELECT g.position_id, g.symbol, g.status, g.reason {src}
            AND g.status IN ('missing_inputs', 'error') ORDER BY g.symbol, g.position_id""",
        base,
    )
    failed_list = [
        {"position_id": str(r["position_id"]), "symbol": r["symbol"], "status": r["status"], "reason": r["reason"]}
        for r in failed
    ]
    not_calculated: list[dict[str, Any]] = []
    if q.as_of_date is None:
        pwhere, pparams = _filters(q, "p")
        not_calculated = await _all(
            session,
            f"""SELECT p.id AS position_id, p.symbol FROM ingest.api_open_position p
                WHERE p.portfolio_id = :pid AND p.instrument_type = 'option'{pwhere}
                  AND NOT EXISTS (SELECT 1 FROM greeks.position_greek g
                                  WHERE g.position_id = p.id AND g.calculation_date = :d)
                ORDER BY p.symbol, p.id""",
            {"pid": q.portfolio_id, "d": calc, **pparams},
        )
        failed_list += [
            {
                "position_id": str(r["position_id"]),
                "symbol": r["symbol"],
                "status": "not_calculated",
                "reason": "position_added_after_calculation",
            }
            for r in not_calculated
        ]

    positions = None
    if q.include_positions:
        rows = await _all(session, f"SELECT g.* {src} ORDER BY g.underlying_symbol, g.expiration_date, g.symbol", base)
        positions = [
            {"position_id": str(r["position_id"]), **contract_object(r), "greeks": greeks_object(r)} for r in rows
        ]

    latest_market = await repository.latest_price_date(session, symbol="SPY")
    incomplete = counts["missing_inputs"] + counts["error"] + len(not_calculated)
    data_status = "partial" if incomplete else ("stale" if latest_market and calc < latest_market else "fresh")
    total = sum(counts.values())
    data = {
        "portfolio_id": str(q.portfolio_id),
        "view": q.view,
        "calculation_date": iso_date(calc),
        "data_status": data_status,
        "option_totals": {
            "dollar_delta": money(dd),
            "dollar_gamma_1pct": money(dg),
            "theta": stat(th),
            "vega": stat(ve),
            "rho": stat(rh),
        },
        "portfolio_dollar_delta": money(await _portfolio_dollar_delta(session, q)),
        "by_underlying": by_underlying,
        "expiring": {
            "within_days": q.expiring_within_days,
            "positions": int(expiring["n"]),
            "dollar_delta": money(expiring["dd"] or _ZERO),
            "dollar_gamma_1pct": money(expiring["dg"] or _ZERO),
        },
        "coverage": {
            "option_positions": total,
            **counts,
            "not_calculated": len(not_calculated),
            "failed": failed_list,
        },
        "note": None if total or not_calculated else "no option positions",
        "positions": positions,
    }
    return data, calc
