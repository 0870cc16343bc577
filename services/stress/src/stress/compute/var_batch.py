"""VaR and ES of a batch of portfolios over one shared window (calculations.md §8.1–8.4).

Every portfolio of a date shares the window, so the P&L series stack into a (portfolios × days)
matrix and the sort, the tail means and the standard deviations run once per batch. The results equal
`var.aggregate_underlyings` + `var.var_metrics` of each portfolio bit for bit: the matrix products and
dot products stay per portfolio (a stacked BLAS call adds in another order), and every reduction runs
along the rows of a C-ordered matrix, which numpy sums exactly as it sums one 1-D series.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from stress.compute.segments import owners
from stress.compute.var import (
    CONFIDENCES,
    VAR_MIN_OBS,
    TailRisk,
    UnderlyingBook,
    VarResult,
    ewma_weights,
    parametric_var_es,
    tail_count,
)


def aggregate_many(
    columns: Sequence[np.ndarray], exposures: Sequence[np.ndarray], gammas: Sequence[np.ndarray]
) -> list[UnderlyingBook]:
    """`aggregate_underlyings` of every portfolio (each column/exposure/gamma triple of one length).

    One np.unique over (portfolio, column) keys and one bincount: bincount adds each key's positions
    in their order starting from 0.0, exactly as the per-portfolio bincount does.
    """
    if not columns:
        return []
    counts = np.fromiter((c.size for c in columns), dtype=np.int64, count=len(columns))
    cols = np.concatenate(columns).astype(np.int64)
    exposure = np.concatenate(exposures).astype(np.float64)
    gamma = np.nan_to_num(np.concatenate(gammas).astype(np.float64))
    low = int(cols.min()) if cols.size else 0
    span = int(cols.max()) - low + 1 if cols.size else 1
    keys = owners(counts) * span + (cols - low)
    unique, inverse = np.unique(keys, return_inverse=True)
    e = np.bincount(inverse, weights=exposure, minlength=unique.size)
    g = np.bincount(inverse, weights=gamma, minlength=unique.size)
    book_columns = unique % span + low
    bounds = np.searchsorted(unique // span, np.arange(len(columns) + 1)).tolist()
    return [
        UnderlyingBook(columns=book_columns[a:b], exposure=e[a:b], gamma_dollar=g[a:b]) for a, b in pairwise(bounds)
    ]


def pnl_matrices(filled_returns: np.ndarray, books: Sequence[UnderlyingBook]) -> tuple[np.ndarray, np.ndarray]:
    """(linear P&L, delta-gamma P&L), one row per book: `r e` and `r e + ½ (r∘r) Γ$` (§8.1).

    The filled panel has no NaN/inf, so a book without gamma adds an exact +0.0 curvature term and
    its product is skipped.
    """
    days = filled_returns.shape[0]
    linear = np.empty((len(books), days))
    pnl = np.empty((len(books), days))
    for i, book in enumerate(books):
        r = filled_returns[:, book.columns]
        linear[i] = r @ book.exposure
        curvature = (r * r) @ book.gamma_dollar if book.gamma_dollar.any() else 0.0
        pnl[i] = linear[i] + 0.5 * curvature
    return linear, pnl


def var_metrics_many(
    filled_returns: np.ndarray, books: Sequence[UnderlyingBook], *, min_obs: int = VAR_MIN_OBS
) -> list[VarResult]:
    """`var_metrics(filled_returns, book)` of every book."""
    linear, pnl = pnl_matrices(filled_returns, books)
    n = int(filled_returns.shape[0])
    if n < min_obs:
        return [VarResult(n, {}, {}, None, None, {}, pnl[i]) for i in range(len(books))]
    # ddof 1: e' Σ_R e with the sample covariance is the sample variance of r·e (§8.3).
    sigma = np.std(linear, axis=1, ddof=1).tolist() if n > 1 else [0.0] * len(books)
    weights = ewma_weights(n)[::-1]  # ascending rows: the last day is j = 0
    squares = linear * linear
    sigma_ewma = [math.sqrt(float(weights @ row)) for row in squares]
    ordered = np.sort(-pnl, axis=1)[:, ::-1]  # losses, largest first
    tails: dict[float, tuple[int, list[float], list[float]]] = {}
    for alpha in CONFIDENCES:
        k = tail_count(n, alpha)
        largest = ordered[:, :k]
        tails[alpha] = (k, largest[:, -1].tolist(), largest.mean(axis=1).tolist())
    return [
        VarResult(
            observations=n,
            historical={a: TailRisk(var=tails[a][1][i], es=tails[a][2][i], k=tails[a][0]) for a in CONFIDENCES},
            parametric={a: parametric_var_es(sigma[i], a) for a in CONFIDENCES},
            sigma_daily=sigma[i],
            ewma_sigma=sigma_ewma[i],
            ewma={a: parametric_var_es(sigma_ewma[i], a) for a in CONFIDENCES},
            pnl=pnl[i],
        )
        for i in range(len(books))
    ]
