"""GET /api/v1/risk/metrics (api.md #33): stored risk metrics of a portfolio (calculations.md §5, §8)."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from common.api import envelope, parse_enum_multi, split_multi
from common.auth import Principal, current_principal, resolve_portfolio
from common.errors import NotCalculated, ValidationFailed
from common.formatting import iso_date, money, ratio, stat
from stress.compute.var import CONFIDENCES, HORIZONS
from stress.context import StressContext
from stress.risk_repository import PortfolioOwner, RiskReader
from stress.schemas_risk import RiskMetricsEnvelope

HINT = "POST /api/v1/admin/batch/risk-scenarios"
METHOD_COLUMNS = {"historical": "hist", "parametric": "param"}

DESCRIPTION = (
    "Risk metrics of the portfolio stored by the daily run (calculations.md §5, §8), for `as_of_date` "
    "(default: the latest calculation). **VaR / ES** are positive loss amounts in USD (2-dp strings) with "
    "`pct` = amount / equity (fraction; null when equity ≤ 0). `historical`: today's dollar exposures per "
    "underlying plus the option delta-gamma term ½Γ$r² applied to each of the last 252 days of underlying "
    "returns (missing returns proxied by β·r_SPY and listed in `coverage.proxied`); VaR = k-th largest loss with "
    "k = ceil(N·(1 − confidence)), ES = mean of the k largest. `parametric`: delta-normal, σ_P = sqrt(e'Σe) with "
    "Σ the sample covariance of underlying daily returns; VaR = z·σ_P, ES = σ_P·φ(z)/(1 − confidence). "
    "`include=parametric_ewma` adds the EWMA λ = 0.94 variant (a ~32-day effective window, not 252). "
    "Supported `confidence` values: 0.95 and 0.99 (multi, default both); supported `horizon_days`: 1 and 10 "
    "(multi, default both; 10-day = 1-day × √10); anything else is 422. `var_window.limited_history` when fewer "
    "than 252 observations (VaR needs 60). **Volatility** and **performance** (Sharpe, Sortino on daily excess "
    "returns over the 3-month T-bill, max drawdown ≤ 0 with dates) use snapshot daily returns up to the previous "
    "trading day when at least 60 exist (`series_type: realized`), else the simulated ex-ante series / equity "
    "(`simulated_history`); annualisation 252; fractions. **Beta**: `ex_ante` = market factor exposure / equity "
    "(#45), `realized` = OLS slope on SPY daily returns. **market_scenarios**: market ±5/10/20 % and rates "
    "±100/200 bp, each underlying moved by its beta × shock (floored at −100 %), options fully revalued; "
    "`linear_pnl` = factor dollar exposure × shock, `nonlinear_adjustment` = predicted − linear (signed USD; "
    "negative = loss). `rate_sensitivity`: X_R (P&L per 1.00 yield change) and `dv01` (P&L per +1 bp). "
    "**backtest**: days where the realised daily loss exceeded the previous trading day's stored 1-day "
    "historical VaR, the exception rate and Kupiec's proportion-of-failures test (LR ~ χ²(1), reject at 5 %), "
    "over up to 252 days; null statistics with a reason below 60 days."
)


def _fraction(value: str, allowed: tuple[float, ...], field: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    for candidate in allowed:
        if math.isclose(number, candidate, abs_tol=1e-12):
            return candidate
    raise ValidationFailed.field(f"query.{field}", f"supported values: {', '.join(str(a) for a in allowed)}", value)


def parse_confidences(value: str | None) -> list[float]:
    """`confidence` (multi): 0.95 and/or 0.99; default both."""
    items = split_multi(value)
    if not items:
        return list(CONFIDENCES)
    return sorted({_fraction(item, CONFIDENCES, "confidence") for item in items})


def parse_horizons(value: str | None) -> list[int]:
    """`horizon_days` (multi): 1 and/or 10; default both."""
    items = split_multi(value)
    if not items:
        return list(HORIZONS)
    out: set[int] = set()
    for item in items:
        if not item.isdigit() or int(item) not in HORIZONS:
            raise ValidationFailed.field(
                "query.horizon_days", f"supported values: {', '.join(str(h) for h in HORIZONS)}", item
            )
        out.add(int(item))
    return sorted(out)


def _amount(one_day: Decimal | None, days: int) -> Decimal | None:
    """The stored 1-day amount scaled by √days, rounded to cents (10-day values are computed on read)."""
    if one_day is None:
        return None
    return one_day if days == 1 else Decimal(repr(float(one_day) * math.sqrt(days)))


def _tail_list(
    row: Any, kind: str, confidences: list[float], horizons: list[int], methods: list[str], equity: Decimal | None
) -> list[dict[str, Any]]:
    out = []
    ewma = _jsonb(row["ewma"])
    for alpha in confidences:
        for days in horizons:
            for method in methods:
                if method == "parametric_ewma":
                    stored = (ewma or {}).get(kind, {}).get(str(alpha))
                    one_day = Decimal(stored) if stored is not None else None
                else:
                    one_day = row[f"{kind}_{round(alpha * 100)}_{METHOD_COLUMNS[method]}"]
                amount = _amount(one_day, days)
                out.append(
                    {
                        "confidence": alpha,
                        "horizon_days": days,
                        "method": method,
                        "amount": money(amount),
                        "pct": ratio(amount, equity) if amount is not None else None,
                    }
                )
    return out


def _jsonb(value: Any) -> Any:
    if isinstance(value, str):
        return orjson.loads(value)
    return value


def _stat(value: float | None) -> float | None:
    return None if value is None else stat(value)


def metrics_body(row: Any, scenarios: list[Any], query: dict[str, Any]) -> dict[str, Any]:
    """The #33 body from a stored risk_metric row and the date's market-risk results."""
    equity = row["equity"]
    methods = ["historical", "parametric"] + (["parametric_ewma"] if query["ewma"] else [])
    calc: date = row["calculation_date"]
    status = row["data_status"]
    if status != "partial" and row["spy_last"] is not None and calc < row["spy_last"]:
        status = "stale"
    series_type = row["series_type"]
    ewma = _jsonb(row["ewma"])
    equity_ok = equity is not None and equity > 0
    return {
        "portfolio_id": str(row["portfolio_id"]),
        "calculation_date": iso_date(calc),
        "equity": money(equity),
        "data_status": status,
        "var": _tail_list(row, "var", query["confidences"], query["horizons"], methods, equity),
        "expected_shortfall": _tail_list(row, "es", query["confidences"], query["horizons"], methods, equity),
        "var_window": {
            "start_date": iso_date(row["var_window_start_date"]),
            "end_date": iso_date(row["var_window_end_date"]),
            "observations": row["var_observations"],
            "limited_history": row["var_observations"] < 252,
        },
        "volatility": {
            "ex_ante_annual": _stat(row["ex_ante_volatility"]),
            "realized_annual": _stat(row["realized_volatility"]),
            "sigma_daily": money(row["sigma_daily"]),
            "series_type": series_type,
        },
        "beta": {
            "ex_ante": _stat(row["beta_ex_ante"]),
            "realized": _stat(row["beta_realized"]),
            "alpha_daily": _stat(row["alpha_daily"]),
            "r_squared": _stat(row["beta_r_squared"]),
            "observations": row["beta_observations"] or 0,
            "series_type": series_type,
        },
        "performance": {
            "series_type": series_type,
            "observations": row["performance_observations"],
            "start_date": iso_date(row["performance_start_date"]),
            "end_date": iso_date(row["performance_end_date"]),
            "sharpe_ratio": _stat(row["sharpe_ratio"]),
            "sortino_ratio": _stat(row["sortino_ratio"]),
            "max_drawdown": _stat(row["max_drawdown"]),
            "max_drawdown_peak_date": iso_date(row["max_drawdown_peak_date"]),
            "max_drawdown_trough_date": iso_date(row["max_drawdown_trough_date"]),
            "max_drawdown_recovery_date": iso_date(row["max_drawdown_recovery_date"]),
        },
        "market_scenarios": [
            {
                "scenario": s["scenario_key"],
                "kind": s["kind"],
                "shock": stat(s["shock"]),
                "predicted_pnl": money(s["predicted_pnl"]),
                "predicted_pnl_pct": _stat(s["predicted_pnl_pct"]),
                "linear_pnl": money(s["linear_pnl"]),
                "nonlinear_adjustment": money(s["nonlinear_adjustment"]),
                "flags": list(s["flags"] or []),
            }
            for s in scenarios
        ],
        "rate_sensitivity": {"exposure_dollar": money(row["rate_exposure_dollar"]), "dv01": money(row["dv01"])},
        "coverage": {
            "positions_total": row["positions_total"],
            "positions_included": row["positions_included"],
            "proxied": _jsonb(row["proxied"]) or [],
        },
        "backtest": _jsonb(row["backtest"]),
        "ewma": None
        if not query["ewma"] or not ewma
        else {
            "decay": ewma["lambda"],
            "effective_window_days": ewma["effective_window_days"],
            "label": ewma["label"],
            "sigma_daily": ewma["sigma_daily"],
        },
        "flags": sorted(set(row["flags"] or []) | (set() if equity_ok else {"equity_undefined"})),
    }


def create_risk_router(ctx: StressContext) -> APIRouter:
    """The /api/v1/risk/metrics route."""
    reader = RiskReader(ctx.db)
    api = APIRouter(tags=["risk"])

    async def resolve(principal: Principal, portfolio_id: UUID | None) -> PortfolioOwner:
        return await resolve_portfolio(
            principal, portfolio_id, by_id=reader.portfolio, default_of=reader.default_portfolio
        )

    @api.get(
        "/api/v1/risk/metrics",
        summary="Portfolio risk metrics: VaR, ES, volatility, beta, performance, market scenarios, VaR backtest",
        description=DESCRIPTION,
        response_model=RiskMetricsEnvelope,
        responses={
            404: {"description": "PORTFOLIO_NOT_FOUND, or NOT_CALCULATED (no risk metrics stored for the date)"},
            422: {"description": "VALIDATION_ERROR (confidence other than 0.95/0.99, horizon other than 1/10)"},
        },
    )
    async def get_risk_metrics(
        request: Request,
        portfolio_id: UUID | None = Query(None, description="Portfolio to read; default: the caller's default"),
        as_of_date: date | None = Query(None, description="Calculation date; default: the latest stored"),
        confidence: str | None = Query(None, description="Comma-separated: 0.95, 0.99 (default both)"),
        horizon_days: str | None = Query(None, description="Comma-separated: 1, 10 (default both)"),
        include: str | None = Query(None, description="Optional blocks: parametric_ewma"),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        query = {
            "confidences": parse_confidences(confidence),
            "horizons": parse_horizons(horizon_days),
            "ewma": "parametric_ewma" in parse_enum_multi(include, ("parametric_ewma",), "include"),
        }
        ref = await resolve(principal, portfolio_id)
        row = await reader.metrics(ref.id, as_of_date)
        if row is None:
            when = f" for {as_of_date.isoformat()}" if as_of_date else ""
            raise NotCalculated(f"No risk metrics stored{when}", hint=HINT)
        scenarios = await reader.market_scenarios(ref.id, row["calculation_date"])
        data = metrics_body(row, scenarios, query)
        source = "fixture" if row["spy_source"] == "fixture" else "live"
        return envelope(data, request=request, as_of=data["calculation_date"], data_source=source)

    return api
