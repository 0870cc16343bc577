"""Market data and books shared by the stress-step and stress-route integration tests.

The book is calculations.md §10 Example 7 (long 1,000 STRA @ 100, short 500 STRB @ 80, 20 long STRA
105 calls, cash 10,000), so the stored Liquidity Crisis result is checked against −4,639.90. The
factor model is diagonal, so correlated moves equal direct ones; Example 8 is covered by the unit tests.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import numpy as np

AS_OF = date(2026, 11, 20)
STOCK_A, STOCK_B = "STRA", "STRB"
CALL = "STRA270104C00105000"
BETAS = {
    STOCK_A: {"market": 1.10, "quality": 0.20, "size": 0.10, "low_volatility": -0.40, "interest_rate": -2.0},
    STOCK_B: {"market": 1.30, "quality": -0.30, "size": 0.50, "low_volatility": -0.60, "interest_rate": 1.5},
}
# Example 7 option: price 2.375533, Δ 0.353245, Γ 0.0352527 (S 100, K 105, T 45/365, r 0.04, q 0.01, σ 0.30).
CALL_PRICE, CALL_DELTA, CALL_GAMMA = 2.375533, 0.353245, 0.0352527
CALL_MV, CALL_EXPOSURE = "4751.07", "70649.10"
CASH = "10000.00"
EQUITY = 10_000 + 100_000 - 40_000 + 4_751.07
EXPOSURES = {  # X_f = Σ_i E_i·β_{u(i),f} over the three positions (E: 100,000, −40,000, 70,649.10)
    code: 170_649.10 * BETAS[STOCK_A].get(code, 0.0) - 40_000 * BETAS[STOCK_B].get(code, 0.0)
    for code in ("market", "value", "growth", "momentum", "quality", "size", "low_volatility", "interest_rate")
}
GROSS = 100_000 + 40_000 + 70_649.10


@dataclass
class Book:
    portfolio_id: uuid.UUID
    stock_a: uuid.UUID
    stock_b: uuid.UUID
    call: uuid.UUID


async def seed_market(seeder, calendar_days: list[date]) -> None:
    """SPY, DGS3MO, STRA/STRB closes and the factor model of AS_OF (idempotent).

    SPY and DGS3MO are generated exactly as test_stress_timeseries_api does (same rng, same values,
    ON CONFLICT DO NOTHING), so the modules see the same benchmark whichever seeds first."""
    days = [d for d in calendar_days if d <= AS_OF]
    rng = np.random.default_rng(7)
    price, spy_rows, spy_returns = 500.0, [], []
    for i, d in enumerate(days):
        if i:
            r = float(rng.normal(0.0004, 0.01))
            spy_returns.append(r)
            price *= 1 + r
        spy_rows.append({"d": d, "c": Decimal(repr(round(price, 4)))})
    await seeder.execute(
        "INSERT INTO marketdata.security (symbol, security_type) VALUES ('SPY', 'etf') ON CONFLICT DO NOTHING"
    )
    await seeder.execute(
        "INSERT INTO marketdata.daily_price (symbol, price_date, close, adj_close, source)"
        " VALUES ('SPY', :d, :c, :c, 'fixture') ON CONFLICT DO NOTHING",
        spy_rows,
    )
    await seeder.execute(
        "INSERT INTO marketdata.rate_observation (series_id, observation_date, value) VALUES ('DGS3MO', :d, 0.0402)"
        " ON CONFLICT DO NOTHING",
        [{"d": d} for d in days[::5]],
    )
    # Underlyings: beta × SPY plus noise over the last 300 days, scaled to close at 100 and 80 on AS_OF.
    noise = np.random.default_rng(11)
    market = np.asarray(spy_returns[-299:])
    for symbol, last in ((STOCK_A, 100.0), (STOCK_B, 80.0)):
        returns = BETAS[symbol]["market"] * market + noise.normal(0.0, 0.008, market.size)
        path = np.concatenate([[1.0], np.cumprod(1 + returns)])
        await seeder.prices(symbol, days[-300:], list(path / path[-1] * last))
    await seeder.factor_model(AS_OF, BETAS)


async def seed_call_greek(seeder, call: uuid.UUID, pid: uuid.UUID, day: date) -> None:
    """The Greeks of the Example 7 call (20 × STRA 105 C, 45 days to expiry) held as position `call` on `day`."""
    await seeder.option_greek(
        call,
        pid,
        day,
        symbol=CALL,
        underlying=STOCK_A,
        option_type="C",
        strike="105",
        expiry=day + timedelta(days=45),
        quantity="20",
        spot=100.0,
        sigma=0.30,
        delta_ps=CALL_DELTA,
        gamma_ps=CALL_GAMMA,
        years=45 / 365,
        rate=0.04,
        dividend=0.01,
    )


async def seed_book(seeder, user_id: uuid.UUID, *, is_default: bool = True, day: date = AS_OF) -> Book:
    """The Example 7 book valued (and its call's Greeks stored) on `day`."""
    pid = await seeder.portfolio(user_id=user_id, cash=CASH, is_default=is_default)
    entry = date(2026, 1, 5)
    a = await seeder.position(pid, STOCK_A, "1000", "90", entry)
    b = await seeder.position(pid, STOCK_B, "-500", "85", entry)
    expiry = day + timedelta(days=45)
    call = await seeder.position(pid, CALL, "20", "2.00", entry, option=("C", "105", expiry), underlying=STOCK_A)
    await seeder.valuation(
        a, pid, day, last_price="100", market_value="100000.00", dollar_exposure="100000.00", notional="100000.00"
    )
    await seeder.valuation(
        b, pid, day, last_price="80", market_value="-40000.00", dollar_exposure="-40000.00", notional="40000.00"
    )
    await seeder.valuation(
        call,
        pid,
        day,
        last_price=str(round(CALL_PRICE, 4)),
        market_value=CALL_MV,
        dollar_exposure=CALL_EXPOSURE,
        notional="200000.00",
    )
    await seed_call_greek(seeder, call, pid, day)
    await seeder.portfolio_exposures(
        pid,
        day,
        {code: f"{value:.2f}" for code, value in EXPOSURES.items()},
        equity=f"{EQUITY:.2f}",
        gross=f"{GROSS:.2f}",
    )
    return Book(pid, a, b, call)


# -- Example 8 (calculations.md §10): a correlated model matrix and a one-stock book -----------------

EXAMPLE8_DAY = date(2026, 11, 19)
STOCK_V = "STRV"
EXAMPLE8_VOLS = {"value": 0.0040, "growth": 0.0050, "momentum": 0.0070, "quality": 0.0035}
EXAMPLE8_CORRELATIONS = {
    ("value", "growth"): -0.60,
    ("value", "momentum"): -0.30,
    ("value", "quality"): 0.20,
    ("growth", "momentum"): 0.45,
    ("growth", "quality"): 0.10,
    ("momentum", "quality"): 0.25,
}
EXAMPLE8_BETAS = {"value": -0.50, "growth": 0.70, "momentum": 0.30, "quality": 0.10}


async def seed_example8(seeder, user_id: uuid.UUID) -> uuid.UUID:
    """Example 8's factor matrix (market and rate uncorrelated with the styles) on EXAMPLE8_DAY and a
    portfolio holding $100,000 of a stock with its betas; returns the portfolio id."""
    vols = {"market": 0.01, "size": 0.004, "low_volatility": 0.004, "interest_rate": 0.0005, **EXAMPLE8_VOLS}
    matrix_id = await seeder.factor_model(EXAMPLE8_DAY, {STOCK_V: EXAMPLE8_BETAS}, vols)
    await seeder.execute(
        "UPDATE factors.factor_matrix_cell SET correlation = :rho, covariance = :cov"
        " WHERE matrix_id = :m AND ((factor_1 = :a AND factor_2 = :b) OR (factor_1 = :b AND factor_2 = :a))",
        [
            {"m": matrix_id, "a": a, "b": b, "rho": rho, "cov": rho * vols[a] * vols[b]}
            for (a, b), rho in EXAMPLE8_CORRELATIONS.items()
        ],
    )
    pid = await seeder.portfolio(user_id=user_id, cash="0")
    pos = await seeder.position(pid, STOCK_V, "1000", "95", date(2026, 1, 5))
    await seeder.valuation(
        pos,
        pid,
        EXAMPLE8_DAY,
        last_price="100",
        market_value="100000.00",
        dollar_exposure="100000.00",
        notional="100000.00",
    )
    exposures = {code: f"{100_000 * beta:.2f}" for code, beta in EXAMPLE8_BETAS.items()}
    await seeder.portfolio_exposures(
        pid, EXAMPLE8_DAY, {"market": "0.00", **exposures}, equity="100000.00", gross="100000.00"
    )
    return pid
