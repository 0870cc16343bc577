"""Market-risk scenarios: equity market ±5/10/20 % and rates ±100/200 bp (calculations.md §5).

Each is a one-factor direct scenario (§5.1, §5.2):

    R_u = max(β_{u,M} · s, −1)   or   R_u = max(β_{u,R} · Δy, −1)
    stock P&L = E · R_u ;  option P&L = q·m·[BS(S(1+R_u)) − BS(S)] (full revaluation)
    linear part = X · shock ;  nonlinear adjustment = predicted − linear

so they share the stress engine (compute.scenarios), which makes the `market_down_10` stress scenario
and the −10 % market scenario the same number by construction (§5.3, §6.5 invariant 7). Rate outputs
are NaN when the rate factor has no data (`rate_data_missing`); mock rate betas are never invented.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stress.compute.scenarios import MARKET, MODEL_FACTORS, RATE, Book, Impacts, ScenarioSet, direct_impact

# (scenario_key, kind, factor, shock) in the order api.md #33 lists them.
MARKET_RISK_SCENARIOS: tuple[tuple[str, str, str, float], ...] = (
    ("market_up_5", "market", MARKET, 0.05),
    ("market_down_5", "market", MARKET, -0.05),
    ("market_up_10", "market", MARKET, 0.10),
    ("market_down_10", "market", MARKET, -0.10),
    ("market_up_20", "market", MARKET, 0.20),
    ("market_down_20", "market", MARKET, -0.20),
    ("ir_up_100bp", "interest_rate", RATE, 0.01),
    ("ir_down_100bp", "interest_rate", RATE, -0.01),
    ("ir_up_200bp", "interest_rate", RATE, 0.02),
    ("ir_down_200bp", "interest_rate", RATE, -0.02),
)
BASIS_POINTS_PER_UNIT = 10_000.0


def market_risk_scenarios(factors: tuple[str, ...] = MODEL_FACTORS) -> ScenarioSet:
    """The ten §5 scenarios as one-factor shocks."""
    return ScenarioSet.build(
        [key for key, *_ in MARKET_RISK_SCENARIOS],
        [{factor: shock} for _, _, factor, shock in MARKET_RISK_SCENARIOS],
        factors,
    )


@dataclass(frozen=True)
class MarketRisk:
    """§5 results for every portfolio of a book."""

    scenarios: ScenarioSet
    kinds: tuple[str, ...]
    impacts: Impacts  # NaN rows: the scenario's factor has no data
    exposure: np.ndarray  # (s, P): the factor dollar exposure X each scenario's linear part uses
    market_exposure: np.ndarray  # (P,) X_M
    rate_exposure: np.ndarray  # (P,) X_R (NaN when rate data are missing)
    dv01: np.ndarray  # (P,) X_R / 10,000: $ per +1 bp

    @property
    def rate_available(self) -> bool:
        return bool(np.isfinite(self.rate_exposure).all())


def market_risk(book: Book, available: np.ndarray) -> MarketRisk:
    """The ten market-risk scenarios for every portfolio of `book`."""
    scenarios = market_risk_scenarios(book.factors)
    impacts = direct_impact(book, scenarios, available)
    exposures = book.factor_exposures()  # (P, k)
    column = {code: j for j, code in enumerate(book.factors)}
    scenario_columns = np.array([column[factor] for _, _, factor, _ in MARKET_RISK_SCENARIOS])
    exposure = exposures[:, scenario_columns].T.copy()
    exposure[~impacts.computed] = np.nan
    rate_ok = bool(np.asarray(available, dtype=bool)[column[RATE]])
    rate = exposures[:, column[RATE]] if rate_ok else np.full(book.n_portfolios, np.nan)
    return MarketRisk(
        scenarios=scenarios,
        kinds=tuple(kind for _, kind, _, _ in MARKET_RISK_SCENARIOS),
        impacts=impacts,
        exposure=exposure,
        market_exposure=exposures[:, column[MARKET]],
        rate_exposure=rate,
        dv01=rate / BASIS_POINTS_PER_UNIT,
    )
