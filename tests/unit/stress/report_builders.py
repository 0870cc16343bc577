"""Builders of report inputs for the report unit tests: a small long/short book with one option,
two snapshots, factor exposures, a stress run, risk metrics and correlations with one stored cluster
(AAA and BBB, ρ 0.823456) (defaults overridable)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from stress.reports.inputs import FactorWindow, PortfolioInfo, ReportInputs

AS_OF = date(2026, 11, 24)
PREV = date(2026, 11, 23)
PID = uuid.UUID("11111111-2222-4333-8444-555555555555")
CALC_ID = uuid.UUID("66666666-7777-4888-8999-000000000000")


def position(symbol: str, quantity: str, price: str, **overrides: Any) -> dict[str, Any]:
    """A held, valued stock position (market value = exposure = q × price)."""
    q, p = Decimal(quantity), Decimal(price)
    mv = (q * p).quantize(Decimal("0.01"))
    row: dict[str, Any] = {
        "portfolio_id": PID,
        "position_id": uuid.uuid5(uuid.NAMESPACE_DNS, symbol),
        "symbol": symbol,
        "instrument_type": "stock",
        "position_type": "LONG" if q > 0 else "SHORT",
        "quantity": q,
        "multiplier": 1,
        "underlying_symbol": symbol,
        "option_type": None,
        "strike_price": None,
        "expiration_date": None,
        "entry_price": p - 10,
        "entry_date": date(2026, 1, 5),
        "cost_basis": (q * (p - 10)).quantize(Decimal("0.01")),
        "last_price": p,
        "price_date": AS_OF,
        "price_source": "close",
        "underlying_price": None,
        "market_value": mv,
        "dollar_exposure": mv,
        "notional": abs(mv),
        "unrealized_pnl": (q * 10).quantize(Decimal("0.01")),
        "daily_pnl": Decimal("100.00"),
        "valued": True,
        "delta": None,
        "gamma": None,
        "theta": None,
        "vega": None,
        "rho": None,
        "dollar_delta": None,
        "dollar_gamma_1pct": None,
        "implied_volatility": None,
        "iv_source": None,
        "greek_status": None,
        "security_type": "stock",
        "name": f"{symbol} Inc.",
        "sector": "Technology",
        "industry": "Software",
        "market_beta": 1.2,
        "market_exposure": mv * Decimal("1.2"),
        "beta_quality": "full_history",
        "r_squared": 0.5,
        "tags": ["Core"],
        "strategy": None,
    }
    row.update(overrides)
    return row


def option_position() -> dict[str, Any]:
    """Ten long calls on AAA (premium 5.00, delta 0.5 per share, underlying 100)."""
    return position(
        "AAA261218C00100000",
        "10",
        "5",
        instrument_type="option",
        position_type="LC",
        multiplier=100,
        underlying_symbol="AAA",
        option_type="C",
        strike_price=Decimal("100"),
        expiration_date=AS_OF + timedelta(days=20),
        market_value=Decimal("5000.00"),
        dollar_exposure=Decimal("50000.00"),
        notional=Decimal("100000.00"),
        cost_basis=Decimal("4000.00"),
        unrealized_pnl=Decimal("1000.00"),
        delta=500.0,
        gamma=12.5,
        theta=-20.0,
        vega=80.0,
        rho=15.0,
        dollar_delta=Decimal("50000.00"),
        dollar_gamma_1pct=Decimal("1250.00"),
        implied_volatility=0.3,
        iv_source="market",
        greek_status="ok",
        security_type="option",
        strategy="AAA overlay",
    )


def snapshot(day: date, equity: str, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "portfolio_id": PID,
        "snapshot_date": day,
        "equity": Decimal(equity),
        "cash_balance": Decimal("10000.00"),
        "cash_unknown": False,
        "long_mv": Decimal(0),
        "short_mv": Decimal(0),
        "gross_mv": Decimal(0),
        "net_mv": Decimal(equity) - Decimal("10000.00"),
        "long_exposure": Decimal(0),
        "short_exposure": Decimal(0),
        "gross_exposure": Decimal("200000.00"),
        "net_exposure": Decimal("100000.00"),
        "notional": Decimal(0),
        "gross_leverage": None,
        "net_leverage": None,
        "daily_pnl": Decimal("500.00"),
        "daily_return": 0.004,
        "cumulative_return": 0.01,
        "market_beta_ex_ante": 1.1,
        "market_exposure": Decimal(0),
        "var_95_1d": Decimal("2500.00"),
        "var_99_1d": Decimal("4000.00"),
        "worst_stress_pnl": None,
        "worst_stress_id": None,
        "positions_unpriced": 0,
        "positions_stale": 0,
        "options_without_greeks": 0,
        "inputs_status": "complete",
        "flags": [],
        "first_date": PREV,
    }
    row.update(overrides)
    return row


def cluster_member(
    number: int, nickname: str, symbol: str, exposure: str, share: float, to_cluster: float, **cluster: Any
) -> dict[str, Any]:
    """One factors.api_correlation_cluster row (defaults: the AAA/BBB cluster of the default book)."""
    row: dict[str, Any] = {
        "calculation_id": CALC_ID,
        "cluster_number": number,
        "threshold": 0.7,
        "nickname": nickname,
        "nickname_source": "tag",
        "avg_correlation": 0.8234564,
        "gross": Decimal("190000.00"),
        "net": Decimal("110000.00"),
        "share_of_gross": 1.0,
        "member_symbol": symbol,
        "member_exposure": Decimal(exposure),
        "member_share_of_gross": share,
        "correlation_to_cluster": to_cluster,
    }
    row.update(cluster)
    return row


def report_inputs(**overrides: Any) -> ReportInputs:
    """A complete set of inputs; keyword arguments replace fields."""
    positions = [position("AAA", "1000", "100"), position("BBB", "-500", "80"), option_position()]
    previous = [
        {
            "portfolio_id": PID,
            "position_id": positions[0]["position_id"],
            "symbol": "AAA",
            "quantity": Decimal(800),
            "last_price": Decimal(98),
            "market_value": Decimal("78400.00"),
            "dollar_exposure": Decimal("78400.00"),
            "market_beta": 1.1,
        },
        {
            "portfolio_id": PID,
            "position_id": positions[1]["position_id"],
            "symbol": "BBB",
            "quantity": Decimal(-500),
            "last_price": Decimal(81),
            "market_value": Decimal("-40500.00"),
            "dollar_exposure": Decimal("-40500.00"),
            "market_beta": 1.2,
        },
    ]
    inputs = ReportInputs(
        portfolio=PortfolioInfo(
            PID, uuid.uuid4(), "Demo Long/Short Book", "active", Decimal("10000.00"), "Pat PM", "pm@x.io"
        ),
        as_of=AS_OF,
        data_source="fixture",
        positions=positions,
        snapshots=[snapshot(PREV, "47900.00"), snapshot(AS_OF, "75000.00")],
        first_snapshot_date=PREV,
        previous_date=PREV,
        previous_positions=previous,
        factors=[
            {
                "portfolio_id": PID,
                "factor_code": "market",
                "name": "Market",
                "proxy": "SPY",
                "display_order": 1,
                "exposure_dollar": Decimal("120000.00"),
                "beta": 1.6,
                "beta_gross": 0.57,
                "status": "ok",
                "coverage_pct": 1.0,
                "positions_default": 0,
            },
            {
                "portfolio_id": PID,
                "factor_code": "value",
                "name": "Value",
                "proxy": "VTV",
                "display_order": 3,
                "exposure_dollar": Decimal("-5000.00"),
                "beta": -0.0667,
                "beta_gross": -0.02,
                "status": "ok",
                "coverage_pct": 1.0,
                "positions_default": 0,
            },
        ],
        factor_window=FactorWindow(252, date(2025, 11, 20), AS_OF, 252),
        stress_run={
            "id": uuid.uuid4(),
            "portfolio_id": PID,
            "calculation_date": AS_OF,
            "trigger": "batch",
            "partial": False,
            "scenarios_run": 2,
        },
        stress_results=[
            {
                "scenario_key": "market_down_10",
                "direct_pnl": Decimal("-12000.00"),
                "direct_pnl_pct": -0.16,
                "correlated_pnl": Decimal("-13000.00"),
                "correlated_pnl_pct": -0.1733,
                "flags": [],
            },
        ],
        active_scenarios=[
            {"scenario_key": "market_down_10", "name": "Market Down 10%", "category": "market", "severity": "moderate"},
            {"scenario_key": "rates_up_100", "name": "Rates Up 100bp", "category": "rates", "severity": "mild"},
        ],
        risk_metric={
            "portfolio_id": PID,
            "var_95_hist": Decimal("3000.00"),
            "var_99_hist": Decimal("4500.00"),
            "es_95_hist": Decimal("3800.00"),
            "es_99_hist": Decimal("5000.00"),
            "var_window_start_date": date(2025, 11, 20),
            "var_window_end_date": AS_OF,
            "var_observations": 252,
            "ex_ante_volatility": 0.21,
            "realized_volatility": None,
            "beta_ex_ante": 1.55,
            "beta_realized": None,
            "max_drawdown": -0.05,
            "sharpe_ratio": 1.2,
            "series_type": "realized",
            "data_status": "fresh",
            "flags": [],
        },
        correlation={
            "portfolio_id": PID,
            "calculation_id": CALC_ID,
            "calculation_date": AS_OF,
            "duration_days": 90,
            "average_correlation": 0.82,
            "weighted_average_correlation": 0.82,
            "effective_positions_corr": 1.8,
            "effective_positions_hhi": 2.4,
            "concentration_gross": 1.0,
            "concentration_net": 0.578947,
            "data_quality": "sufficient",
            "correlation_threshold": 0.7,
            "nodes_included": 2,
            "nodes_excluded": 0,
            "window_start_date": date(2026, 7, 20),
            "window_end_date": AS_OF,
            "flags": [],
        },
    )
    inputs.correlation_clusters = [
        cluster_member(1, "Core", "AAA", "150000.00", 0.789474, 0.823456),
        cluster_member(1, "Core", "BBB", "-40000.00", 0.210526, 0.823456),
    ]
    inputs.correlation_pairs = {
        "calculation_id": CALC_ID,
        "symbols_1": ["AAA"],
        "symbols_2": ["BBB"],
        "correlations": [0.8234564],
    }
    for key, value in overrides.items():
        setattr(inputs, key, value)
    return inputs
