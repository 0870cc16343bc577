"""Batched OLS with intercept from centred moments: the kernels of calculations.md §4.3–4.5.

Layout: the per-regression quantities are symbols-last — cross-products X'y and slopes (q, g),
sums and R² (g,) — so elementwise work runs along the long axis (thousands of symbols) and numpy's
inner loops stay long and contiguous; with symbols first every small per-factor broadcast split
them into g loops of q values. The small X'X systems are (G, q, q) batches: G = 1 when every
regression shares one design (the common case), else G = g. `FitResult`, the complete fit kept for
tests, is symbols-first like statsmodels' params.

Pure numpy: no I/O, deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from factors.student_t import t_and_p

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

# OpenBLAS runs a gemm on one thread only when m·n·k ≤ 65536·4. The products here are skinny (N
# symbols × ~250 days × ≤ 64) and fast, so its threads buy little, and on a shared 2-core host a
# threaded gemm stalls on a descheduled worker for a timeslice (measured 2–3× slower regressions
# under load). Splitting the long side keeps every call single-threaded at no cost in flops.
_SERIAL_GEMM_WORK = 65_536 * 4


def serial_matmul(a: F64, b: F64) -> F64:
    """a @ b for 2-D a (m, k) and b (k, n), in blocks of the longer side that OpenBLAS runs single-threaded."""
    m, k = a.shape
    n = b.shape[1]
    if m * n * k <= _SERIAL_GEMM_WORK:
        out: F64 = a @ b
        return out
    if m < n:
        return _column_blocks(a, b)
    if a.flags.f_contiguous and not a.flags.c_contiguous:
        # `a` is the transpose of a C-ordered array (returns.T): blocks of its rows are strided, so
        # take the transposed product in column blocks, which read a.T row by row (~20 % faster).
        return _column_blocks(b.T, a.T).T
    out = np.empty((m, n), dtype=np.result_type(a, b))
    rows = max(1, _SERIAL_GEMM_WORK // max(1, k * n))
    for start in range(0, m, rows):
        np.matmul(a[start : start + rows], b, out=out[start : start + rows])
    return out


def _column_blocks(a: F64, b: F64) -> F64:
    m, k = a.shape
    n = b.shape[1]
    out = np.empty((m, n), dtype=np.result_type(a, b))
    cols = max(1, _SERIAL_GEMM_WORK // max(1, m * k))
    for start in range(0, n, cols):
        np.matmul(a, b[:, start : start + cols], out=out[:, start : start + cols])
    return out


def exact_inv(a: F64) -> F64 | None:
    """Inverse of a (batch of) square matrices, or None when one of them is singular."""
    try:
        out: F64 = np.linalg.inv(a).astype(np.float64, copy=False)
    except np.linalg.LinAlgError:
        return None
    return out


def safe_inv(a: F64) -> F64:
    """Inverse of a (batch of) square matrices; the pseudo-inverse when one of them is singular."""
    out = exact_inv(a)
    if out is None:
        out = np.linalg.pinv(a).astype(np.float64, copy=False)
    return out


def small_inv(a: F64) -> tuple[F64, bool]:
    """Inverse of a batch of q×q matrices and whether it is exact: closed form for q ≤ 2 (elementwise,
    fast; a singular matrix gives inf/NaN), LAPACK otherwise (the pseudo-inverse, not exact, when one
    of the batch is singular)."""
    q = a.shape[-1]
    if q == 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            out1: F64 = 1.0 / a
        return out1, True
    if q == 2:
        a00, a01, a10, a11 = a[..., 0, 0], a[..., 0, 1], a[..., 1, 0], a[..., 1, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            det = a00 * a11 - a01 * a10
            out2 = np.empty_like(a)
            out2[..., 0, 0] = a11 / det
            out2[..., 0, 1] = -a01 / det
            out2[..., 1, 0] = -a10 / det
            out2[..., 1, 1] = a00 / det
        return out2, True
    exact = exact_inv(a)
    if exact is None:
        return np.linalg.pinv(a).astype(np.float64, copy=False), False
    return exact, True


@dataclass
class FitResult:
    """OLS-with-intercept results of a batch of regressions; params[..., 0] is the intercept."""

    params: F64  # (..., p)
    bse: F64
    rsquared: F64  # (...)
    rsquared_adj: F64
    ssr: F64
    df_resid: F64
    nobs: F64
    tvalues: F64 | None = None
    pvalues: F64 | None = None

    def with_pvalues(self) -> FitResult:
        """Fill t-values and p-values of every parameter."""
        self.tvalues, self.pvalues = t_and_p(self.params, self.bse, self.df_resid[..., None])
        return self

    @property
    def resid_std(self) -> F64:
        """Residual standard deviation with ddof = p (daily)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            out: F64 = np.sqrt(self.ssr / self.df_resid)
        return out


@dataclass(frozen=True)
class SlopeFit:
    """The slopes of g OLS-with-intercept fits on q regressors, without the intercept's estimate and SE."""

    inv: F64  # (G, q, q) inverse of the centred cross-products
    inv_exact: bool  # False when a singular batch member made `inv` a pseudo-inverse
    beta: F64  # (q, g)
    bse: F64  # (q, g)
    rsquared: F64  # (g,)
    rsquared_adj: F64
    ssr: F64
    df_resid: F64


def _fit_stats(ssr: F64, cyy: F64, n: F64, q: int) -> tuple[F64, F64, F64]:
    """(residual df, R², adjusted R²) of fits on q regressors plus an intercept."""
    df = n - (q + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1.0 - ssr / cyy
        r2adj = 1.0 - (1.0 - r2) * (n - 1.0) / df
    return df, r2, r2adj


def ols_slopes(cxx: F64, cxy: F64, cyy: F64, n: F64) -> SlopeFit:
    """Slopes, their SEs and R² of OLS with intercept from centred moments: cxx (G, q, q), cxy (q, g),
    cyy and n (g,)."""
    inv, inv_exact = small_inv(cxx)
    q = cxx.shape[-1]
    # One shared inverse: a single small gemm; one per regression: a batched product.
    beta = serial_matmul(inv[0], cxy) if inv.shape[0] == 1 else np.einsum("gij,gj->ig", inv, cxy.T)
    ssr = np.maximum(cyy - np.einsum("ig,ig->g", beta, cxy), 0.0)
    df, r2, r2adj = _fit_stats(ssr, cyy, n, q)
    with np.errstate(invalid="ignore", divide="ignore"):
        bse = np.sqrt((ssr / df) * np.diagonal(inv, axis1=-2, axis2=-1).T)
    return SlopeFit(inv, inv_exact, beta, bse, r2, r2adj, ssr, df)


def with_intercept(s: SlopeFit, xbar: F64, n: F64, ybar: F64) -> FitResult:
    """The full fit: the intercept and its SE (from the regressor means xbar (q, g or 1)) in front of
    the slopes; symbols-first FitResult (g, q + 1)."""
    xb = np.broadcast_to(xbar, s.beta.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        quad = np.einsum("ig,gij,jg->g", xb, np.broadcast_to(s.inv, (xb.shape[1], *s.inv.shape[1:])), xb)
        var_a = s.ssr / s.df_resid * (1.0 / n + quad)
        alpha = ybar - np.einsum("ig,ig->g", s.beta, xb)
        params = np.concatenate([alpha[:, None], s.beta.T], axis=1)
        bse = np.concatenate([np.sqrt(var_a)[:, None], s.bse.T], axis=1)
    nobs = np.broadcast_to(n, s.ssr.shape).astype(np.float64)
    return FitResult(params, bse, s.rsquared, s.rsquared_adj, s.ssr, s.df_resid, nobs)


@dataclass(frozen=True)
class Moments:
    """Centred moments of g masked regressions on the k columns of one design (symbols last)."""

    n: F64  # (g,) observations
    xbar: F64  # (k, g), or (k, 1) when shared: regressor means in original units
    cxx: F64  # (G, k, k), G = 1 (shared) or g
    cxy: F64  # (k, g)
    cyy: F64  # (g,)
    ybar: F64  # (g,)

    def cross(self, idx: I64) -> F64:
        """X'X (G, …, q, q) of the regressors `idx` (q,), or of each row of `idx` (…, q)."""
        return self.cxx[:, idx[..., :, None], idx[..., None, :]]

    def fit(self, idx: I64) -> SlopeFit:
        """The slopes of the fits on the regressors `idx`."""
        return ols_slopes(self.cross(idx), self.cxy[idx], self.cyy, self.n)

    def full_fit(self, idx: I64, slopes: SlopeFit | None = None) -> FitResult:
        """The complete fit on the regressors `idx` (from its `slopes` when already computed)."""
        s = self.fit(idx) if slopes is None else slopes
        return with_intercept(s, self.xbar[idx], self.n, self.ybar)


@dataclass(frozen=True)
class PairSlopes:
    """The f_k coefficient of each fit on [1, x_0, x_k], k = 1…P, symbols last: (P, g)."""

    beta: F64
    bse: F64
    rsquared: F64
    rsquared_adj: F64
    df_resid: F64  # (g,)


def pair_slopes(m: Moments) -> PairSlopes:
    """The slope on x_k of every two-regressor fit [x_0, x_k].

    The same numbers as `m.fit([0, k])` for each k, written out so that the P fits run as a few
    (P, g) array operations on the 2×2 inverses.
    """
    p = m.cxy.shape[0] - 1
    pairs = np.column_stack([np.zeros(p, dtype=np.int64), np.arange(1, p + 1)])  # (P, 2): [0, k]
    inv, _ = small_inv(m.cross(pairs))  # (G, P, 2, 2), closed form
    i00, i0k, ik0, ikk = (inv[..., i, j].T for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)))  # (P, G)
    c0, ck = m.cxy[0], m.cxy[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        b0 = i00 * c0 + i0k * ck
        bk = ik0 * c0 + ikk * ck
        ssr = np.maximum(m.cyy - (b0 * c0 + bk * ck), 0.0)
        df, r2, r2adj = _fit_stats(ssr, m.cyy, m.n, 2)
        bse = np.sqrt(ssr / df * ikk)
    return PairSlopes(bk, bse, r2, r2adj, df)


def pair_fits(m: Moments) -> FitResult:
    """The complete fits on [1, x_0, x_k] of every k ≥ 1, symbols first (g, P, 3) (for tests)."""
    fits = [m.full_fit(np.array([0, j])) for j in range(1, m.cxy.shape[0])]

    def stacked(name: str) -> F64:
        return np.stack([getattr(f, name) for f in fits], axis=1)

    return FitResult(
        *(stacked(name) for name in ("params", "bse", "rsquared", "rsquared_adj", "ssr", "df_resid", "nobs"))
    )


@dataclass(frozen=True)
class YMoments:
    """Sample moments of N return series; `ys` holds the sample rows with every missing value set to 0."""

    n: I64  # (N,) finite rows
    sum_y: F64
    syy: F64
    ys: F64  # (T, N)
    gappy: I64  # sorted columns with at least one missing row (usually a few per cent)
    gappy_finite: B  # (T, gappy.size) their finite rows

    def finite(self, cols: I64) -> B:
        """Finite-row mask (T, cols.size) of `cols`, all of them gappy columns."""
        return self.gappy_finite[:, np.searchsorted(self.gappy, cols)]

    def finite_all(self) -> B:
        """Finite-row mask (T, N) of every column."""
        fin = np.ones(self.ys.shape, dtype=bool)
        fin[:, self.gappy] = self.gappy_finite
        return fin


def y_moments(ys: F64) -> YMoments:
    """Moments of the sample rows `ys` (T, N) of N series, zeroing their missing values in place.

    A column's plain sum is non-finite exactly when it has a missing (NaN/inf) row, so one sum over
    all columns finds the gappy few and only those are masked and summed again (column by column
    in the same order, so the sums are bitwise those of a masked pass over everything).
    """
    sum_y = ys.sum(axis=0)
    gappy = np.flatnonzero(~np.isfinite(sum_y))
    n = np.full(ys.shape[1], ys.shape[0], dtype=np.int64)
    gappy_finite = np.ones((ys.shape[0], 0), dtype=bool)
    if gappy.size:
        sub = ys[:, gappy]
        gappy_finite = np.isfinite(sub)
        sub[~gappy_finite] = 0.0
        ys[:, gappy] = sub
        n[gappy] = np.count_nonzero(gappy_finite, axis=0)
        sum_y[gappy] = sub.sum(axis=0)
    return YMoments(n, sum_y, np.einsum("tn,tn->n", ys, ys), ys, gappy, gappy_finite)


def group_moments(xcs: F64, mu: F64, n: F64, sum_y: F64, syy: F64, sxy: F64, weights: F64 | None) -> Moments:
    """Moments of one group from the centred design rows xcs (T, k) and their means mu, the group's
    observation counts, Σy, Σy² (g,) and X'y (k, g); `weights` (T, g) row validity, or None when
    every row is valid (one shared X'X)."""
    k = xcs.shape[1]
    safe_n = np.where(n > 0, n, 1.0)
    ybar = sum_y / safe_n
    cyy = syy - n * ybar * ybar
    if weights is None:
        sx = xcs.sum(axis=0)[:, None]
        cxx = (xcs.T @ xcs - np.outer(sx[:, 0], sx[:, 0]) / xcs.shape[0])[None]
        xbar = sx / xcs.shape[0] + mu[:, None]
    else:
        sx = serial_matmul(xcs.T, weights)
        xx = (xcs[:, :, None] * xcs[:, None, :]).reshape(xcs.shape[0], k * k)
        sxt = sx.T
        cxx = serial_matmul(weights.T, xx).reshape(-1, k, k) - sxt[:, :, None] * sxt[:, None, :] / safe_n[:, None, None]
        xbar = sx / safe_n + mu[:, None]
    return Moments(n, xbar, cxx, sxy - sx * ybar, cyy, ybar)


def batched_ols(x: F64, y: F64, mask: B | None = None) -> FitResult:
    """OLS with intercept of every column of y (T, N) on x (T, k), each on its own finite rows.

    A row enters regression j when x is finite on it, y[:, j] is finite and `mask` (T,) allows it.
    Returns params/bse/t/p of shape (N, k+1), the intercept first.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    y = np.asarray(y, dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    rows = np.all(np.isfinite(x), axis=1)
    if mask is not None:
        rows &= mask
    xs = x[rows]
    mu = xs.mean(axis=0)
    xcs = xs - mu
    ym = y_moments(y[rows].copy())
    sxy = serial_matmul(xcs.T, ym.ys)
    m = group_moments(xcs, mu, ym.n.astype(np.float64), ym.sum_y, ym.syy, sxy, ym.finite_all().astype(np.float64))
    return m.full_fit(np.arange(xcs.shape[1])).with_pvalues()
