"""Position and portfolio factor dollar exposures (calculations.md §4.7–4.8, §2.1). Pure numpy.

    Position:   X_{i,f} = E_i · β_{u(i),f}        E_i = signed delta-adjusted dollar exposure (§2.2)
    Portfolio:  X_f     = Σ_i X_{i,f}
                b_f     = X_f / V                  (NULL when V ≤ 0: `equity_undefined`)
                b_f^G   = X_f / G,  G = Σ_i |E_i|
    Coverage:   Σ_{i with regression betas} |E_i| / G
    Rate:       X_R is P&L per 1.00 change in yield; DV01 = X_R / 10,000 per +1 bp

Options arrive with their dollar delta as E_i and their underlying's betas, so a long put gives a
negative market exposure; shorts carry their own sign through E_i (no type-based sign anywhere).
A position whose E_i is unknown (an option without a delta) is excluded from every figure and
reported, never given a fake exposure. Exposures overlap across factors and are never summed
across them. All positions of all portfolios are computed in one pass (no per-position loop).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

BPS_PER_UNIT = 10_000.0  # a yield change of 1.00 is 10,000 bp

QUALITY_FULL, QUALITY_LIMITED = "full_history", "limited_history"

# Reasons of a portfolio factor row with status `not_calculated` (stored in `reason`).
NO_POSITIONS = "no_positions"  # no position with a known dollar exposure on the date
NO_COVERAGE = "no_coverage"  # no position has regression betas (every one is on default betas)


@dataclass(frozen=True)
class PositionBook:
    """N positions of P portfolios as column arrays; betas follow K factor codes."""

    portfolio: I64  # (N,) index of the position's portfolio in [0, P)
    underlying: I64  # (N,) index of the position's underlying in [0, U) (largest contributor)
    exposure: F64  # (N,) E_i in USD, signed; NaN = unknown (excluded)
    beta: F64  # (N, K) betas of the position's underlying; NaN = not computed for that factor
    regression: B  # (N,) betas come from a regression (beta_source = regression), else default
    quality: npt.NDArray[np.str_]  # (N,) full_history | limited_history | insufficient_history


def position_exposures(exposure: F64, beta: F64) -> F64:
    """X_{i,f} = E_i · β_{u(i),f} (N, K); NaN where E_i or the beta is unknown."""
    out: F64 = np.asarray(exposure, dtype=np.float64)[:, None] * np.asarray(beta, dtype=np.float64)
    return out


@dataclass(frozen=True)
class PortfolioExposures:
    """Per portfolio (P) and factor (K); ratios NaN where undefined (stored as NULL)."""

    exposure_dollar: F64  # (P, K) X_f; NaN when the factor is not calculated
    beta: F64  # (P, K) X_f / V
    beta_gross: F64  # (P, K) X_f / G
    equity: F64  # (P,) V
    gross_exposure: F64  # (P,) G over included positions
    coverage_pct: F64  # (P,) Σ|E| with regression betas / G
    contributing: I64  # (P, K) positions with a known X_{i,f}
    largest_contributor: I64  # (P, K) underlying index with the largest |Σ X| (−1 when none)
    positions_full: I64  # (P,)
    positions_limited: I64
    positions_default: I64
    positions_excluded: I64  # (P,) positions left out because E_i is unknown
    status: npt.NDArray[np.str_]  # (P, K) ok | not_calculated
    reason: npt.NDArray[np.object_]  # (P, K) why not calculated, else None
    equity_undefined: B  # (P,) V ≤ 0 (or unknown): equity-relative betas are NULL


def _bincount(index: I64, weights: F64, length: int) -> F64:
    out: F64 = np.bincount(index, weights=weights, minlength=length).astype(np.float64)
    return out


def portfolio_exposures(
    book: PositionBook,
    *,
    equity: F64,
    n_underlyings: int,
    factor_reasons: list[str | None] | None = None,
) -> PortfolioExposures:
    """Aggregate the positions of `book` into P = len(equity) portfolios (§4.8).

    `factor_reasons[k]` marks a factor the model could not provide (e.g. `rate_data_missing`,
    `factor_degenerate`, or an inactive factor without a return series): its rows are
    `not_calculated` with that reason for every portfolio. A portfolio without any position of
    known exposure is `not_calculated` (`no_positions`); one whose positions are all on default
    betas is `not_calculated` (`no_coverage`).
    """
    n_portfolios = int(np.asarray(equity).shape[0])
    beta = np.asarray(book.beta, dtype=np.float64)
    k = beta.shape[1]
    pidx = np.asarray(book.portfolio, dtype=np.int64)
    e = np.asarray(book.exposure, dtype=np.float64)
    included = np.isfinite(e)
    e0 = np.where(included, e, 0.0)
    abs_e = np.abs(e0)

    gross = _bincount(pidx, abs_e, n_portfolios)
    covered_abs = _bincount(pidx, np.where(book.regression & included, abs_e, 0.0), n_portfolios)
    counts = {
        name: np.bincount(pidx, weights=mask.astype(np.float64), minlength=n_portfolios).astype(np.int64)
        for name, mask in (
            ("full", included & book.regression & (book.quality == QUALITY_FULL)),
            ("limited", included & book.regression & (book.quality == QUALITY_LIMITED)),
            ("default", included & ~book.regression),
            ("included", included),
            ("excluded", ~included),
        )
    }

    x = position_exposures(e, beta)  # (N, K)
    known = np.isfinite(x)
    x0 = np.where(known, x, 0.0)
    total = np.zeros((n_portfolios, k))
    np.add.at(total, pidx, x0)
    contributing = np.zeros((n_portfolios, k), dtype=np.int64)
    np.add.at(contributing, pidx, known.astype(np.int64))

    # Largest contributor: the underlying with the largest |Σ X| inside the portfolio (an option
    # and its stock net on the underlying, the natural unit of §2.4).
    u = max(int(n_underlyings), 1)
    by_underlying = np.zeros((n_portfolios * u, k))
    np.add.at(by_underlying, pidx * u + np.asarray(book.underlying, dtype=np.int64), x0)
    magnitude = np.abs(by_underlying.reshape(n_portfolios, u, k))
    largest = np.where(magnitude.max(axis=1) > 0, magnitude.argmax(axis=1), -1).astype(np.int64)

    v = np.asarray(equity, dtype=np.float64)
    equity_undefined = ~(v > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        beta_equity = np.where(equity_undefined[:, None], np.nan, total / v[:, None])
        beta_gross = np.where(gross[:, None] > 0, total / gross[:, None], np.nan)
        coverage = np.where(gross > 0, covered_abs / gross, np.nan)

    reason = np.full((n_portfolios, k), None, dtype=object)
    reason[counts["included"] == 0, :] = NO_POSITIONS
    reason[(counts["included"] > 0) & ~(covered_abs > 0), :] = NO_COVERAGE
    no_factor_value = (contributing == 0) & (counts["included"] > 0)[:, None]
    reason[no_factor_value & (reason == None)] = "factor_unavailable"  # noqa: E711 (object array)
    for j, why in enumerate(factor_reasons or []):
        if why is not None:
            reason[:, j] = why
    not_calculated = reason != None  # noqa: E711 (object array)
    status = np.where(not_calculated, "not_calculated", "ok")
    exposure_dollar = np.where(not_calculated, np.nan, total)
    return PortfolioExposures(
        exposure_dollar=exposure_dollar,
        beta=np.where(not_calculated, np.nan, beta_equity),
        beta_gross=np.where(not_calculated, np.nan, beta_gross),
        equity=v,
        gross_exposure=gross,
        coverage_pct=coverage,
        contributing=np.where(not_calculated, 0, contributing),
        largest_contributor=np.where(not_calculated, -1, largest),
        positions_full=counts["full"],
        positions_limited=counts["limited"],
        positions_default=counts["default"],
        positions_excluded=counts["excluded"],
        status=status,
        reason=reason,
        equity_undefined=equity_undefined,
    )


def dv01(rate_exposure: F64 | float) -> F64:
    """Dollar P&L per +1 bp of the 10-year yield from X_R (P&L per 1.00 yield change)."""
    out: F64 = np.asarray(rate_exposure, dtype=np.float64) / BPS_PER_UNIT
    return out


def equity(cash: F64, market_value: F64, portfolio: I64, n_portfolios: int) -> F64:
    """V = C + Σ_i MV_i per portfolio (§2.1); unknown market values are skipped (as ingest does),
    unknown cash counts as 0 (the caller flags `cash_unknown`)."""
    mv = np.asarray(market_value, dtype=np.float64)
    out: F64 = np.nan_to_num(np.asarray(cash, dtype=np.float64)) + _bincount(
        np.asarray(portfolio, dtype=np.int64), np.where(np.isfinite(mv), mv, 0.0), n_portfolios
    )
    return out
