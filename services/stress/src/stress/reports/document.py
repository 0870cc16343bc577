"""The report document: every number of a report, built once from one data read (users.md §4.6).
The JSON file is this document; the Markdown, CSV and PDF are renderings of it, so they agree. Pure.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from common.formatting import iso_date, iso_datetime, money
from stress.reports import sections as sec
from stress.reports.book import Book, Totals, fraction, grouped, totals
from stress.reports.changes import FORMULA, Aligned, Split, rounded_parts, split, split_beta_adjusted
from stress.reports.correlation_section import correlations
from stress.reports.inputs import ReportInputs
from stress.reports.positions_table import position_rows
from stress.reports.quality import attention_flags, engines

SCHEMA_VERSION = "1.0"
PRECISION = {"money": 2, "greeks": 4, "correlation": 6, "percent": 2}
ALL_SECTIONS = ("summary", "exposures", "positions", "greeks", "factors", "correlations", "stress", "performance")
METHOD_NOTES = {
    "factors": "252-day regressions of each underlying on 7 orthogonalised factor ETFs (60-day minimum)",
    "correlations": (
        "Pearson correlations of daily returns of the positions' underlyings over 90 trading days (a pair needs "
        "30 common returns, else null; options join their underlying); clusters by average linkage on 1 - rho cut "
        "at the correlation threshold (default 0.7), at least 2 members; the matrix holds raw rho"
    ),
    "var": "1-day historical VaR/ES over up to 252 days of underlying returns (delta-gamma P&L)",
    "stress": "position-level factor shocks, options fully revalued, correlated moves by conditional expectation",
}


def _views(cents: dict[str, int], equity: int) -> dict[str, Any]:
    out: dict[str, Any] = {side: money(Decimal(v).scaleb(-2)) for side, v in cents.items()}
    out.update({f"{side}_pct": fraction(v, equity) for side, v in cents.items()})
    return out


def _money_cents(value: int) -> str | None:
    return money(Decimal(value).scaleb(-2))


def exposures(book: Book, t: Totals) -> dict[str, Any]:
    """Both views with their fractions of equity, notional, allocation, top holdings, strategies, sectors."""
    gross, gross_mv = t.exposure["gross"], t.market_value["gross"]

    def bucket(g: dict[str, Any]) -> dict[str, Any]:
        return {
            "count": g["count"],
            "net_market_value": _money_cents(g["net_mv"]),
            "gross_market_value": _money_cents(g["gross_mv"]),
            "share_of_gross_market_value": None if g["share_of_gross_mv"] is None else round(g["share_of_gross_mv"], 4),
            "net_exposure": _money_cents(g["net_exposure"]),
            "share_of_gross_exposure": None if g["share_of_gross"] is None else round(g["share_of_gross"], 4),
            "unrealized_pnl": _money_cents(g["unrealized"]),
        }

    top = [
        {
            "symbol": r["symbol"],
            "position_type": r["position_type"],
            "security_type": r.get("security_type"),
            "dollar_exposure": money(r["dollar_exposure"]),
            "market_value": money(r["market_value"]),
        }
        for r in book.rows
        if r.get("dollar_exposure") is not None
    ][:10]
    return {
        "market_value": _views(t.market_value, t.equity),
        "exposure": _views(t.exposure, t.equity),
        "notional": _money_cents(t.notional),
        "allocation": {g["key"]: bucket(g) for g in grouped(book, book.asset_class, gross, gross_mv)},
        "sectors": {g["key"]: bucket(g) for g in grouped(book, book.sector, gross, gross_mv)},
        "strategies": {g["key"] or "(no strategy)": bucket(g) for g in grouped(book, book.strategy, gross, gross_mv)},
        "top_holdings": top,
    }


def _change_row(
    metric: str,
    previous: Decimal | None,
    current: Decimal | None,
    parts: Split | None,
    inputs: ReportInputs,
    **extra: Any,
) -> dict[str, Any]:
    change = None if previous is None or current is None else current - previous
    flags = list(extra.pop("flags", []))
    row: dict[str, Any] = {
        "metric": metric,
        "previous": money(previous),
        "current": money(current),
        "change": money(change),
        "parts": None,
        "excluded_positions": 0 if parts is None else parts.excluded,
        "as_of": {"previous": iso_date(inputs.previous_date), "current": iso_date(inputs.as_of)},
        "flags": flags,
        **extra,
    }
    if parts is not None and change is not None:
        row["parts"] = {
            k: money(v) for k, v in rounded_parts(change, parts.parts, complete=parts.excluded == 0).items()
        }
        if parts.excluded:
            flags.append(f"{parts.excluded} position(s) without a value on one of the dates are not attributed")
    return row


def _sum(rows: list[dict[str, Any]], *, gross: bool = False) -> Decimal:
    """Σ dollar_exposure (Σ |dollar_exposure| when `gross`) over rows that have one."""
    values = [Decimal(r["dollar_exposure"]) for r in rows if r.get("dollar_exposure") is not None]
    return sum((abs(v) if gross else v for v in values), Decimal(0))


def _beta_adjusted(rows: list[dict[str, Any]]) -> Decimal:
    """Σ market beta × dollar_exposure over rows that have both (the market factor exposure X_M)."""
    values = [
        Decimal(r["dollar_exposure"]) * Decimal(repr(float(r["market_beta"])))
        for r in rows
        if r.get("dollar_exposure") is not None and r.get("market_beta") is not None
    ]
    return sum(values, Decimal(0)).quantize(Decimal("0.01"))


def changes(inputs: ReportInputs, t: Totals) -> dict[str, Any] | None:
    """What changed since the previous snapshot, with the split formula (stress.reports.changes)."""
    prev_snap = next((s for s in inputs.snapshots if s["snapshot_date"] == inputs.previous_date), None)
    if prev_snap is None:
        return None
    a = Aligned.build(inputs.previous_positions, inputs.positions)
    dollars = Decimal(1) / 100
    snap_flags = [] if inputs.snapshot is None else list(inputs.snapshot.get("flags") or [])
    quality = [*snap_flags, *([f"{a.unpriced} position(s) unpriced today"] if a.unpriced else [])]
    equity_parts = split(a.mv_prev, a.mv_now, a)
    cash_change = float(Decimal(t.cash) * dollars - Decimal(prev_snap["cash_balance"]))
    equity_split = Split(
        {"market": equity_parts.parts["market"], "other": cash_change, "positions": equity_parts.parts["positions"]},
        equity_parts.excluded,
    )

    net_now, net_prev = _sum(inputs.positions), _sum(inputs.previous_positions)
    gross_now, gross_prev = _sum(inputs.positions, gross=True), _sum(inputs.previous_positions, gross=True)

    metric = inputs.risk_metric or {}
    var_window = None
    if metric:
        var_window = {
            "start_date": iso_date(metric["var_window_start_date"]),
            "end_date": iso_date(metric["var_window_end_date"]),
            "observations": metric["var_observations"],
        }
    var_prev, var_now = prev_snap.get("var_95_1d"), metric.get("var_95_hist")
    rows = [
        _change_row(
            "equity", Decimal(prev_snap["equity"]), Decimal(t.equity) * dollars, equity_split, inputs, flags=quality
        ),
        _change_row(
            "net_market_value",
            Decimal(prev_snap["net_mv"]),
            Decimal(t.market_value["net"]) * dollars,
            equity_parts,
            inputs,
            flags=quality,
        ),
        _change_row("net_exposure", net_prev, net_now, split(a.ex_prev, a.ex_now, a), inputs, flags=quality),
        _change_row(
            "gross_exposure", gross_prev, gross_now, split(a.ex_prev, a.ex_now, a, gross=True), inputs, flags=quality
        ),
        _change_row(
            "beta_adjusted_exposure",
            _beta_adjusted(inputs.previous_positions),
            _beta_adjusted(inputs.positions),
            split_beta_adjusted(a),
            inputs,
            flags=quality,
            window="252-day factor regressions",
        ),
        _change_row(
            "var_95_1d",
            None if var_prev is None else Decimal(var_prev),
            None if var_now is None else Decimal(var_now),
            None,
            inputs,
            window=var_window,
            flags=["historical VaR is a quantile of simulated P&L: not additive, shown as a total change"],
        ),
    ]
    return {
        "from_date": iso_date(inputs.previous_date),
        "to_date": iso_date(inputs.as_of),
        "method": FORMULA,
        "positions_opened": a.opened,
        "positions_closed": a.closed,
        "metrics": rows,
    }


def build(inputs: ReportInputs, *, generated_at: datetime, sections: tuple[str, ...] = ALL_SECTIONS) -> dict[str, Any]:
    """The complete report document (keys of users.md §4.6; unrequested sections are null)."""
    book = Book.build(inputs.positions)
    t = totals(book, inputs.portfolio.cash_balance)
    want = set(sections)
    p = inputs.portfolio
    quality = engines(inputs, book)
    excluded = [r["symbol"] for r in inputs.positions if not r.get("valued")]

    def part(name: str, value: Any) -> Any:
        return value if name in want else None

    return {
        "report": {
            "schema_version": SCHEMA_VERSION,
            "generated_at": iso_datetime(generated_at),
            "as_of_date": iso_date(inputs.as_of),
            "data_source": inputs.data_source,
            "precision": PRECISION,
            "sections": [s for s in ALL_SECTIONS if s in want],
        },
        "portfolio": {
            "id": str(p.id),
            "name": p.name,
            "owner": {"name": p.owner_name, "email": p.owner_email},
            "position_count": book.n,
            "cash_balance": _money_cents(t.cash),
            "equity": _money_cents(t.equity),
        },
        "performance": part("performance", sec.performance(inputs)),
        "exposures": part("exposures", exposures(book, t)),
        "position_counts": part("exposures", t.counts),
        "risk_metrics": part("summary", sec.risk_metrics(inputs)),
        "factor_exposures": part("factors", sec.factor_exposures(inputs, book)),
        "greeks": part("greeks", sec.greeks(book)),
        "stress_tests": part("stress", sec.stress_tests(inputs)),
        "correlations": part("correlations", correlations(inputs)),
        "positions": part("positions", position_rows(book, t.exposure["gross"], inputs.as_of)),
        "snapshots": part("performance", sec.snapshot_points(inputs)),
        "changes": part("summary", changes(inputs, t)),
        "data_quality": {
            "engines": quality,
            "excluded_positions": excluded,
            "warnings": [],
            "methods": METHOD_NOTES,
            "stress_run_id": None if inputs.stress_run is None else str(inputs.stress_run["id"]),
        },
        "attention_flags": attention_flags(inputs, book, t.exposure["gross"], t.market_value["gross"]),
    }
