"""The factor registry (data-model.md §7.1, calculations.md §4.1): the only list of factors.

Seven active equity factors with ETF proxies (IWM for size, USMV for low volatility), Short
Interest listed but inactive (no return series), and the interest-rate sensitivity on the daily
change of the 10-year Treasury yield (FRED DGS10). The price back-fill, the regressions, the API
and the scenario validator all read this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.ids import stable_id


@dataclass(frozen=True)
class FactorDefinition:
    """One registry row."""

    code: str
    name: str
    description: str
    factor_type: str  # market | style | macro | alternative
    proxy: str | None
    proxy_type: str | None  # etf | rate_series
    display_order: int
    calculation_method: str  # regression | not_calculated
    is_active: bool

    @property
    def id(self) -> object:
        return stable_id("factor", self.code)


FACTORS: tuple[FactorDefinition, ...] = (
    FactorDefinition(
        "market",
        "Market",
        "Broad US large-cap market: SPY total return.",
        "market",
        "SPY",
        "etf",
        0,
        "regression",
        True,
    ),
    FactorDefinition(
        "momentum",
        "Momentum",
        "Momentum ETF return beyond its market-implied return (MTUM − b·SPY).",
        "style",
        "MTUM",
        "etf",
        1,
        "regression",
        True,
    ),
    FactorDefinition(
        "value",
        "Value",
        "Value ETF return beyond its market-implied return (VTV − b·SPY).",
        "style",
        "VTV",
        "etf",
        2,
        "regression",
        True,
    ),
    FactorDefinition(
        "growth",
        "Growth",
        "Growth ETF return beyond its market-implied return (VUG − b·SPY).",
        "style",
        "VUG",
        "etf",
        3,
        "regression",
        True,
    ),
    FactorDefinition(
        "quality",
        "Quality",
        "Quality ETF return beyond its market-implied return (QUAL − b·SPY).",
        "style",
        "QUAL",
        "etf",
        4,
        "regression",
        True,
    ),
    FactorDefinition(
        "size",
        "Size",
        "Small caps (Russell 2000, IWM) beyond their market-implied return.",
        "style",
        "IWM",
        "etf",
        5,
        "regression",
        True,
    ),
    FactorDefinition(
        "low_volatility",
        "Low Volatility",
        "Minimum-volatility ETF return beyond its market-implied return (USMV − b·SPY).",
        "style",
        "USMV",
        "etf",
        6,
        "regression",
        True,
    ),
    FactorDefinition(
        "short_interest",
        "Short Interest",
        "Listed but inactive: no daily long-short short-interest return series exists in v1.",
        "alternative",
        None,
        None,
        7,
        "not_calculated",
        False,
    ),
    FactorDefinition(
        "interest_rate",
        "Interest Rate",
        "Daily change of the 10-year Treasury yield (FRED DGS10, decimal: 0.0001 = 1 bp), "
        "orthogonalised to the market; betas are returns per 1.00 change in yield.",
        "macro",
        "DGS10",
        "rate_series",
        8,
        "regression",
        True,
    ),
)
