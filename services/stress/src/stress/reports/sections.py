"""Risk blocks of the report document: factor exposures, stress tests, Greeks, risk metrics and
performance (users.md §4.6; correlations: correlation_section). Pure; money as 2-dp strings, statistics
as numbers."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import numpy as np

from common.formatting import iso_date, money, stat
from stress.compute.performance import SnapshotSeries, summarize_period
from stress.reports.book import Book
from stress.reports.inputs import ReportInputs

GREEK_NAMES = ("theta", "vega", "rho")


def factor_exposures(inputs: ReportInputs, book: Book) -> list[dict[str, Any]]:
    """Factor, proxy, beta, dollar exposure; percentile null (no reference distribution is stored);
    observations of the model window; r_squared = |exposure|-weighted mean R² of the underlyings'
    regressions (the share of their return variance the factor model explains)."""
    ex = np.where(book.exposure_ok, np.abs(book.exposure), 0).astype(np.float64)
    r2 = np.array([np.nan if r.get("r_squared") is None else float(r["r_squared"]) for r in book.rows])
    known = np.isfinite(r2) & (ex > 0)
    r_squared = stat(float((r2[known] * ex[known]).sum() / ex[known].sum()), 4) if known.any() else None
    window = inputs.factor_window
    return [
        {
            "factor": f["factor_code"],
            "name": f["name"],
            "proxy": f["proxy"],
            "beta": stat(f["beta"], 4),
            "beta_gross": stat(f["beta_gross"], 4),
            "exposure_dollar": money(f["exposure_dollar"]),
            "status": f["status"],
            "percentile": None,
            "observations": None if window is None else window.observations,
            "r_squared": r_squared,
        }
        for f in inputs.factors
    ]


def stress_tests(inputs: ReportInputs) -> list[dict[str, Any]]:
    """Every active scenario with its stored direct and correlated impact (null when not run)."""
    stored = {r["scenario_key"]: r for r in inputs.stress_results}
    out = []
    for scenario in inputs.active_scenarios:
        r = stored.get(scenario["scenario_key"])
        impact = None if r is None else (r["correlated_pnl"] if r["correlated_pnl"] is not None else r["direct_pnl"])
        pct = (
            None if r is None else (r["correlated_pnl_pct"] if r["correlated_pnl"] is not None else r["direct_pnl_pct"])
        )
        out.append(
            {
                "scenario_id": scenario["scenario_key"],
                "name": scenario["name"],
                "category": scenario["category"],
                "severity": scenario["severity"],
                "direct_impact": None if r is None else money(r["direct_pnl"]),
                "direct_impact_percent": None if r is None else stat(r["direct_pnl_pct"], 4),
                "correlated_impact": None if r is None else money(r["correlated_pnl"]),
                "impact_percent": stat(pct, 4),
                "impact": money(impact),
                "flags": [] if r is None else list(r.get("flags") or []),
            }
        )
    return out


def greeks(book: Book) -> dict[str, Any]:
    """Option Greeks in total and per option position; share delta per underlying (options + stock)."""
    options = [r for r in book.rows if r["instrument_type"] == "option"]

    def total_money(name: str) -> str | None:
        values = [r[name] for r in options if r.get(name) is not None]
        return money(sum(values)) if values else None

    def total_stat(name: str) -> float | None:
        values = [float(r[name]) for r in options if r.get(name) is not None]
        return stat(sum(values), 4) if values else None

    shares: dict[str, dict[str, float]] = defaultdict(lambda: {"options": 0.0, "stock": 0.0})
    for r in book.rows:
        und = r["underlying_symbol"]
        if r["instrument_type"] == "option" and r.get("delta") is not None:
            shares[und]["options"] += float(r["delta"])
        elif r["instrument_type"] != "option":
            shares[und]["stock"] += float(r["quantity"])
    by_underlying = [
        {
            "underlying": und,
            "option_share_delta": stat(v["options"], 4),
            "stock_shares": stat(v["stock"], 4),
            "net_share_delta": stat(v["options"] + v["stock"], 4),
        }
        for und, v in sorted(shares.items())
        if any(r["underlying_symbol"] == und and r["instrument_type"] == "option" for r in options)
    ]
    return {
        "totals": {
            "dollar_delta": total_money("dollar_delta"),
            "dollar_gamma_1pct": total_money("dollar_gamma_1pct"),
            **{name: total_stat(name) for name in GREEK_NAMES},
        },
        "option_position_count": len(options),
        "positions": [
            {
                "symbol": r["symbol"],
                "position_type": r["position_type"],
                "dollar_delta": money(r.get("dollar_delta")),
                "dollar_gamma_1pct": money(r.get("dollar_gamma_1pct")),
                **{name: stat(r.get(name), 4) for name in GREEK_NAMES},
                "status": r.get("greek_status"),
            }
            for r in options
        ],
        "by_underlying": by_underlying,
    }


def risk_metrics(inputs: ReportInputs) -> dict[str, Any]:
    """Beta, volatility, drawdown, average correlation and 1-day historical VaR/ES (each nullable)."""
    m, c = inputs.risk_metric or {}, inputs.correlation
    market = next((f for f in inputs.factors if f["factor_code"] == "market" and f["status"] == "ok"), None)
    beta = market["beta"] if market is not None else m.get("beta_ex_ante")
    return {
        "portfolio_beta": stat(beta, 4),
        "annualized_volatility": stat(m.get("ex_ante_volatility"), 4),
        "realized_volatility": stat(m.get("realized_volatility"), 4),
        "max_drawdown": stat(m.get("max_drawdown"), 4),
        "sharpe_ratio": stat(m.get("sharpe_ratio"), 4),
        "average_correlation": None if c is None else stat(c["average_correlation"], 6),
        "var_95_1d": money(m.get("var_95_hist")),
        "var_99_1d": money(m.get("var_99_hist")),
        "es_95_1d": money(m.get("es_95_hist")),
        "es_99_1d": money(m.get("es_99_hist")),
        "var_window": None
        if not m
        else {
            "start_date": iso_date(m["var_window_start_date"]),
            "end_date": iso_date(m["var_window_end_date"]),
            "observations": m["var_observations"],
        },
    }


def _series(inputs: ReportInputs) -> SnapshotSeries:
    snaps = inputs.snapshots

    def cents(name: str) -> list[float | None]:
        return [None if s[name] is None else float(s[name]) * 100 for s in snaps]

    return SnapshotSeries.build(
        [s["snapshot_date"] for s in snaps],
        [np.nan if v is None else v for v in cents("equity")],
        [np.nan if v is None else v for v in cents("daily_pnl")],
        [np.nan if s["daily_return"] is None else s["daily_return"] for s in snaps],
    )


def performance(inputs: ReportInputs) -> dict[str, Any] | None:
    """Daily P&L and return of the report date, equity change, month- and year-to-date returns."""
    snap = inputs.snapshot
    if snap is None:
        return None
    series, end = _series(inputs), inputs.as_of
    partial: list[str] = []
    out: dict[str, Any] = {
        "daily_pnl": money(snap["daily_pnl"]),
        "daily_return": stat(snap["daily_return"], 4),
        "previous_date": iso_date(inputs.previous_date),
        "equity_change": None,
    }
    if inputs.previous_date is not None:
        previous = next(s for s in inputs.snapshots if s["snapshot_date"] == inputs.previous_date)
        out["equity_change"] = money(snap["equity"] - previous["equity"])
    for key, start in (("mtd_return", date(end.year, end.month, 1)), ("ytd_return", date(end.year, 1, 1))):
        summary = summarize_period(series, start, end, first_available=inputs.first_snapshot_date)
        out[key] = stat(summary.return_, 4)
        if summary.partial:
            partial.append(key.removesuffix("_return"))
    out["partial_periods"] = partial
    return out


def snapshot_points(inputs: ReportInputs, count: int = 90) -> list[dict[str, Any]]:
    """The most recent `count` snapshots (ascending): equity, P&L, return and exposures."""
    return [
        {
            "date": iso_date(s["snapshot_date"]),
            "equity": money(s["equity"]),
            "daily_pnl": money(s["daily_pnl"]),
            "daily_return": stat(s["daily_return"], 4),
            "gross_exposure": money(s["gross_exposure"]),
            "net_exposure": money(s["net_exposure"]),
            "long_exposure": money(s["long_exposure"]),
            "short_exposure": money(s["short_exposure"]),
        }
        for s in inputs.snapshots[-count:]
    ]
