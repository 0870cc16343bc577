"""Turning stored rows into a `compute.scenarios.Book` (pure: no I/O, vectorised over positions).

Inclusion rules (calculations.md §2.2, §5.1, §6.3):
* a position enters with its signed delta-adjusted exposure E (`dollar_exposure`); without one
  (unpriced, or an option without a delta) it is excluded and listed (`no_exposure`);
* expired options are excluded (`expired`);
* options with usable Black-Scholes inputs from `greeks.api_position_greek` (status `ok`) are fully
  revalued; other options move linearly (E · R) and the book is flagged `options_linear_only`;
* betas are per underlying from `factors.api_underlying_beta`; an underlying without a regression
  (fewer than 60 returns, or absent) uses the default betas market 1, others 0 (`default_betas`).

A factor is available when it is an active registry code, sits in the model covariance with a
positive variance, and every regressed underlying has a beta for it (`factor_degenerate` rows have
none). Scenarios shocking an unavailable factor are not computed (`factor_unavailable`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import numpy as np

from stress.compute.revaluation import OptionLegs, usable
from stress.compute.scenarios import MARKET, MODEL_FACTORS, RATE, Book
from stress.stress_repository import BetaRows, ModelMatrix


@dataclass(frozen=True)
class AssembledBook:
    """A Book plus the identities and data-quality facts the responses report."""

    book: Book
    portfolio_ids: list[UUID]
    position_ids: list[UUID]  # included positions, in book order
    symbols: list[str]
    position_underlyings: list[str]
    underlyings: list[str]  # rows of book.betas
    default_underlying: np.ndarray  # (n_underlyings,) bool
    available: np.ndarray  # (k,) bool
    coverage: list[dict[str, Any]]  # per portfolio
    flags: list[list[str]]  # per portfolio: default_betas, options_linear_only, positions_excluded, ...

    @property
    def rate_available(self) -> bool:
        return bool(self.available[MODEL_FACTORS.index(RATE)])


_NAN = math.nan


def _floats(values: Sequence[Any]) -> np.ndarray:
    return np.array([_NAN if v is None else v for v in values], dtype=np.float64)


def _bools(values: Sequence[Any]) -> np.ndarray:
    return np.array([bool(v) for v in values], dtype=bool)


@dataclass(frozen=True)
class BetaTable:
    """Betas by underlying (rows) and model factor (columns) with their source."""

    symbols: list[str]
    betas: np.ndarray  # (n, k); NaN where no row / NULL beta
    regression: np.ndarray  # (n,) bool: beta_source = regression

    @classmethod
    def from_rows(cls, rows: BetaRows, symbols: Sequence[str]) -> BetaTable:
        """Pivot factors.api_underlying_beta rows onto `symbols` × MODEL_FACTORS."""
        index = {s: i for i, s in enumerate(symbols)}
        betas = np.full((len(symbols), len(MODEL_FACTORS)), np.nan)
        regression = np.zeros(len(symbols), dtype=bool)
        if rows.symbol:
            row_idx = np.array([index.get(s, -1) for s in rows.symbol])
            codes = np.asarray(rows.factor_code, dtype=object)
            values = _floats(rows.beta)
            is_regression = np.asarray(rows.beta_source, dtype=object) == "regression"
            for j, code in enumerate(MODEL_FACTORS):
                hit = (codes == code) & (row_idx >= 0)
                betas[row_idx[hit], j] = values[hit]
            regression[row_idx[(row_idx >= 0) & is_regression]] = True
        return cls(list(symbols), betas, regression)


def factor_availability(
    matrix: ModelMatrix | None, active_codes: set[str] | frozenset[str], table: BetaTable
) -> np.ndarray:
    """Which model factors can be shocked (see module docstring)."""
    active = np.array([code in active_codes for code in MODEL_FACTORS])
    if matrix is not None:
        variance = np.diag(matrix.covariance)
        in_matrix = np.array([code in matrix.factor_codes for code in MODEL_FACTORS])
        active &= in_matrix & np.isfinite(variance) & (variance > 0)
    if table.regression.any():
        active &= np.isfinite(table.betas[table.regression]).all(axis=0)
    return active


def assemble(
    portfolio_ids: Sequence[UUID],
    cash: Sequence[float],
    columns: dict[str, list[Any]],
    table: BetaTable,
    available: np.ndarray,
) -> AssembledBook:
    """The Book of `portfolio_ids` from position columns (ordered by portfolio) and the beta table."""
    # Keyed by text: the column's ids (asyncpg's UUID type) and the callers' (uuid.UUID) would compare
    # through Python-level __eq__ on every lookup.
    order = {str(pid): i for i, pid in enumerate(portfolio_ids)}
    n_all = len(columns["position_id"])
    pidx_all = np.array([order.get(str(p), -1) for p in columns["portfolio_id"]], dtype=np.int64)
    exposure_all = _floats(columns["dollar_exposure"])
    market_value = _floats(columns["market_value"])
    is_option = _bools(columns["is_option"])
    status = np.asarray([s or "" for s in columns["greek_status"]], dtype=object)
    expired = is_option & (status == "expired")
    has_exposure = np.isfinite(exposure_all)
    known = pidx_all >= 0
    included = known & has_exposure & ~expired

    # Equity V = cash + Σ market value of the valued positions (unpriced ones count as nothing).
    n_port = len(portfolio_ids)
    mv = np.where(np.isfinite(market_value) & known, market_value, 0.0)
    equity = np.asarray(cash, dtype=np.float64) + np.bincount(pidx_all[known], weights=mv[known], minlength=n_port)

    legs_all = OptionLegs.build(
        spot=_floats(columns["spot"]),
        strike=_floats(columns["strike"]),
        time_to_expiry=_floats(columns["time_to_expiry"]),
        rate=_floats(columns["rate"]),
        dividend_yield=_floats(columns["dividend_yield"]),
        sigma=_floats(columns["sigma"]),
        is_call=_bools(columns["is_call"]),
        quantity=_floats(columns["quantity"]),
        multiplier=_floats(columns["multiplier"]),
    )
    revalue_all = is_option & (status == "ok") & usable(legs_all)

    keep = np.flatnonzero(included)
    kept = keep.tolist()
    symbols_all = columns["symbol"]
    underlyings_all = columns["underlying_symbol"]
    kept_underlyings = [underlyings_all[i] for i in kept]
    und_list = sorted(set(kept_underlyings))  # the rows of book.betas, as np.unique orders them
    und_row = {u: i for i, u in enumerate(und_list)}
    und_index = np.array([und_row[u] for u in kept_underlyings], dtype=np.int64)
    sub = _pivot(table, und_list)
    market_col = MODEL_FACTORS.index(MARKET)
    default = ~sub.regression | ~np.isfinite(sub.betas[:, market_col])
    betas = np.where(np.isfinite(sub.betas), sub.betas, 0.0)
    betas[default] = 0.0
    betas[default, market_col] = 1.0

    option_rows = np.flatnonzero(revalue_all[keep])
    book = Book(
        factors=MODEL_FACTORS,
        portfolio_index=pidx_all[keep],
        n_portfolios=n_port,
        underlying_index=und_index,
        exposure=exposure_all[keep],
        betas=betas,
        option_positions=option_rows,
        legs=legs_all.take(keep[option_rows]),
        equity=equity,
    )

    linear_only = is_option & included & ~revalue_all
    default_position = np.zeros(n_all, dtype=bool)
    default_position[keep] = default[book.underlying_index]
    p_known = pidx_all[known]

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(p_known, weights=mask[known].astype(np.float64), minlength=n_port).astype(np.int64)

    totals = count(np.ones(n_all, dtype=bool))
    counts = {
        "positions_included": count(included),
        "options_revalued": count(included & revalue_all),
        "options_linear_only": count(linear_only),
        "positions_default_betas": count(default_position),
    }
    excluded: list[list[dict[str, Any]]] = [[] for _ in range(n_port)]
    for i in np.flatnonzero(known & ~included):  # only the few excluded positions
        excluded[pidx_all[i]].append(
            {
                "position_id": str(columns["position_id"][i]),
                "symbol": symbols_all[i],
                "reason": "expired" if expired[i] else "no_exposure",
            }
        )
    coverage: list[dict[str, Any]] = []
    flags: list[list[str]] = []
    per_portfolio = zip(
        totals.tolist(),
        *(values.tolist() for values in counts.values()),
        excluded,
        (np.isfinite(equity) & (equity > 0)).tolist(),
        strict=True,
    )
    for total, included_n, revalued, linear_n, default_n, excluded_p, equity_defined in per_portfolio:
        coverage.append(
            {
                "positions_total": total,
                "positions_included": included_n,
                "options_revalued": revalued,
                "options_linear_only": linear_n,
                "positions_default_betas": default_n,
                "excluded": excluded_p,
            }
        )
        f: list[str] = []
        if default_n:
            f.append("default_betas")
        if linear_n:
            f.append("options_linear_only")
        if excluded_p:
            f.append("positions_excluded")
        if not equity_defined:
            f.append("equity_undefined")
        flags.append(f)

    return AssembledBook(
        book=book,
        portfolio_ids=list(portfolio_ids),
        position_ids=[columns["position_id"][i] for i in kept],
        symbols=[symbols_all[i] for i in kept],
        position_underlyings=kept_underlyings,
        underlyings=und_list,
        default_underlying=default,
        available=available,
        coverage=coverage,
        flags=flags,
    )


def _pivot(table: BetaTable, symbols: list[str]) -> BetaTable:
    """The rows of `table` for `symbols` (absent symbols: NaN, not regressed)."""
    if symbols == table.symbols:  # the usual case: every underlying read keeps a position
        return table
    index = {s: i for i, s in enumerate(table.symbols)}
    rows = np.array([index.get(s, -1) for s in symbols], dtype=np.int64)
    found = rows >= 0
    betas = np.full((len(symbols), len(MODEL_FACTORS)), np.nan)
    regression = np.zeros(len(symbols), dtype=bool)
    betas[found] = table.betas[rows[found]]
    regression[found] = table.regression[rows[found]]
    return BetaTable(symbols, betas, regression)


@dataclass(frozen=True)
class ScenarioMeta:
    """Identity of the scenarios of a run, parallel to a ScenarioSet."""

    ids: list[Any] = field(default_factory=list)  # stress_scenario.id (None for a custom scenario)
    keys: list[str | None] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    severities: list[str | None] = field(default_factory=list)
    shocks: list[dict[str, float]] = field(default_factory=list)
    iv_shift: list[float] = field(default_factory=list)
    invalid: list[str | None] = field(default_factory=list)  # factor_unavailable / invalid_scenario at load
