"""The factor model (calculations.md §4 and §7.1). Pure numpy/scipy: no I/O, no clock, deterministic.

* Returns: simple returns of adjusted closes; a return exists only when the day and its previous
  trading day both have a close (never forward-filled, never zero-filled).
* Factor sample: the listwise-complete rows of SPY, the style ETFs and Δy (DGS10 change, fractions).
* Orthogonalisation: f_k = r_k − b_k·r_M with b_k the OLS slope (with intercept) of r_k on r_M in
  that sample, so every non-market factor has exactly zero sample covariance with the market.
* Matrices: sample covariance (ddof 1) and Pearson correlation of the model series and of the raw
  proxies, with eigenvalues, the standardised condition number sqrt(λmax/λmin) of the correlation
  matrix, VIFs and off-diagonal statistics.
* Regressions for every underlying at once (one batched linear-algebra pass, no per-symbol loop):
  each underlying's sample is the inner join of its returns with the factor sample; the market beta
  is the univariate OLS slope, each other beta the coefficient on f_k in OLS on [1, r_M, f_k], plus
  the joint diagnostic fit on [1, r_M, styles] (VIF, standardised condition number).

The batched OLS works on centred cross-products: X'X and X'y of every underlying are stacked
(masked by its validity) and the small (k×k) systems are inverted as one (N, k, k) batch.
Underlyings whose sample is the whole factor sample share one X'X (the common case).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import numpy.typing as npt

from factors.student_t import t_and_p  # re-exported: callers and tests use compute.t_and_p

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

ENGINE_VERSION = "factors-1.0.0"

FACTOR_WINDOW = 252
FACTOR_MIN_OBS = 60
FACTOR_FULL_HISTORY_OBS = 202
ANNUALIZATION = 252
VIF_WARN, VIF_SEVERE, COND_SEVERE = 5.0, 10.0, 30.0
FACTOR_CORR_WARN = 0.80
EXTREME_MARKET_BETA, EXTREME_STYLE_BETA = 4.0, 5.0
DEGENERATE_STD = 1e-8
SUSPECT_RETURN = 0.5
SIGNIFICANCE = 0.05

MARKET = "market"
RATE = "interest_rate"
STYLE_CODES = ("momentum", "value", "growth", "quality", "size", "low_volatility")
MODEL_CODES = (MARKET, *STYLE_CODES, RATE)
RAW_RATE_NAME = "dy10"

QUALITY_FULL, QUALITY_LIMITED, QUALITY_INSUFFICIENT = "full_history", "limited_history", "insufficient_history"


class FactorModelError(ValueError):
    """The factor model cannot be built for this window (bad or missing factor data)."""

    def __init__(self, message: str, *, code: str, details: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.details = details or []


# ---------------------------------------------------------------------------------------------
# Returns
# ---------------------------------------------------------------------------------------------


def simple_returns(closes: F64) -> F64:
    """r_t = A_t / A_{t-1} − 1 along axis 0 (row t-1 → t); NaN when either close is missing or ≤ 0."""
    a = np.asarray(closes, dtype=np.float64)
    a = np.where(a > 0, a, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: F64 = a[1:] / a[:-1] - 1.0
    return out


def yield_changes(levels: F64) -> F64:
    """Δy_t = y_t − y_{t-1} of yield levels given as fractions (0.0425 = 4.25 %); NaN across a gap.

    A change of 0.0001 is 1 bp. Relative changes of the level (y_t / y_{t-1} − 1) are not yield
    changes (calculations.md §5.2) and are never produced here.
    """
    y = np.asarray(levels, dtype=np.float64)
    out: F64 = y[1:] - y[:-1]
    return out


# ---------------------------------------------------------------------------------------------
# Matrices (§7.1)
# ---------------------------------------------------------------------------------------------


def safe_inv(a: F64) -> F64:
    """Inverse of a (batch of) square matrices; the pseudo-inverse when one of them is singular."""
    try:
        out: F64 = np.linalg.inv(a).astype(np.float64, copy=False)
    except np.linalg.LinAlgError:
        out = np.linalg.pinv(a).astype(np.float64, copy=False)
    return out


@dataclass(frozen=True)
class MatrixStats:
    """Covariance/correlation of k series over n complete rows, with the §7.1 diagnostics."""

    codes: tuple[str, ...]
    observations: int
    covariance: F64  # daily, ddof = 1
    correlation: F64
    volatility: F64  # annualised: sample std × √252
    eigenvalues: F64  # of the correlation matrix, descending
    condition_number: float  # sqrt(λmax / λmin) of the correlation matrix (standardised design)
    vif: F64  # VIF of each series against the others (with intercept) = diag(R⁻¹)
    off_diagonal_mean: float
    off_diagonal_max: float
    off_diagonal_min: float
    high_pairs: tuple[tuple[str, str, float], ...]  # |ρ| > FACTOR_CORR_WARN, i < j


def matrix_stats(series: F64, codes: Sequence[str], *, high_threshold: float = FACTOR_CORR_WARN) -> MatrixStats:
    """Pearson correlation, sample covariance (ddof 1) and diagnostics of the columns of `series`."""
    x = np.asarray(series, dtype=np.float64)
    n, k = x.shape
    cov = np.atleast_2d(np.cov(x, rowvar=False, ddof=1))
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    # Only round-off is removed here (|ρ| can exceed 1 by an ulp); correlations are never clipped.
    corr = np.clip(corr, -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    eig = np.linalg.eigvalsh(corr)[::-1]
    cond = float(np.sqrt(eig[0] / eig[-1])) if eig[-1] > 0 else float("inf")
    vif = np.diag(safe_inv(corr)).copy() if k > 1 else np.ones(1)
    iu = np.triu_indices(k, 1)
    off = corr[iu]
    pairs = tuple(
        (codes[int(i)], codes[int(j)], float(corr[i, j]))
        for i, j in zip(*iu, strict=True)
        if abs(corr[i, j]) > high_threshold
    )
    return MatrixStats(
        codes=tuple(codes),
        observations=int(n),
        covariance=cov,
        correlation=corr,
        volatility=sd * np.sqrt(ANNUALIZATION),
        eigenvalues=eig,
        condition_number=cond,
        vif=vif,
        off_diagonal_mean=float(off.mean()) if off.size else float("nan"),
        off_diagonal_max=float(off.max()) if off.size else float("nan"),
        off_diagonal_min=float(off.min()) if off.size else float("nan"),
        high_pairs=pairs,
    )


def unstandardized_condition_number(design_with_constant: F64) -> float:
    """sqrt(λmax/λmin) of X'X on the raw design including the constant (what statsmodels reports as
    `condition_number`). It mostly measures the scale of returns against the constant, so it is NOT
    a collinearity measure (calculations.md §4.5); kept for the contrast in tests and diagnostics."""
    x = np.asarray(design_with_constant, dtype=np.float64)
    eig = np.linalg.eigvalsh(x.T @ x)
    return float(np.sqrt(eig.max() / eig.min()))


def factor_data_suspect(raw: MatrixStats, market_code: str, style_codes: Collection[str]) -> bool:
    """§4.6: SPY less correlated with every style ETF than the style ETFs are among themselves."""
    idx = {c: i for i, c in enumerate(raw.codes)}
    styles = [idx[c] for c in raw.codes if c in style_codes]
    if market_code not in idx or len(styles) < 2:
        return False
    m = idx[market_code]
    with_market = raw.correlation[m, styles]
    among = raw.correlation[np.ix_(styles, styles)][np.triu_indices(len(styles), 1)]
    return bool(with_market.max() < among.min())


# ---------------------------------------------------------------------------------------------
# Factor model (§4.1-4.4)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FactorModel:
    """The market-wide factor model of one window: sample, orthogonalised series and matrices."""

    dates: tuple[date, ...]  # the T return dates of the window
    sample: B  # (T,) listwise-complete rows
    all_codes: tuple[str, ...]  # every requested factor (market first), available or not
    codes: tuple[str, ...]  # available model factors, market first
    raw_names: tuple[str, ...]  # raw series names aligned with `codes` (SPY, MTUM, …, dy10)
    design: F64  # (T, k) model series [r_M, f_…]; NaN outside the sample
    raw: F64  # (T, k) raw series [r_M, r_…]
    loadings: dict[str, float]  # b_k of each non-market series on the market
    intercepts: dict[str, float]
    joint_codes: tuple[str, ...]  # regressors of the joint diagnostic fit (market + styles)
    model_stats: MatrixStats
    raw_stats: MatrixStats
    flags: tuple[str, ...]
    unavailable: dict[str, str] = field(default_factory=dict)  # code → reason (rate_data_missing, …)

    @property
    def observations(self) -> int:
        return int(self.sample.sum())

    @property
    def window_start(self) -> date:
        return self.dates[int(np.argmax(self.sample))]

    @property
    def window_end(self) -> date:
        return self.dates[len(self.dates) - 1 - int(np.argmax(self.sample[::-1]))]

    @property
    def means(self) -> F64:
        """Sample mean of each model series (centre of the regressors)."""
        out: F64 = self.design[self.sample].mean(axis=0)
        return out


def build_factor_model(
    dates: Sequence[date],
    market: F64,
    others: Mapping[str, F64],
    *,
    raw_names: Mapping[str, str] | None = None,
    market_code: str = MARKET,
    market_name: str = "SPY",
    style_codes: Collection[str] = STYLE_CODES,
    optional: Mapping[str, str] | None = None,
    min_obs: int = FACTOR_MIN_OBS,
) -> FactorModel:
    """Factor sample, loadings b_k, orthogonalised series and both matrices for one window.

    `others` maps each non-market code (styles, interest_rate) to its raw return series (T,).
    Series named in `optional` (code → reason; default: interest_rate → rate_data_missing) are
    dropped from the model when they lack `min_obs` complete rows instead of failing the window.
    Raises FactorModelError (code INSUFFICIENT_FACTOR_HISTORY) when fewer than `min_obs` rows are
    complete, with the per-series counts in `details`.
    """
    optional = {RATE: "rate_data_missing"} if optional is None else dict(optional)
    names = dict(raw_names or {})
    if len(dates) != len(market):
        raise ValueError("dates and market returns must be aligned")
    rm = np.asarray(market, dtype=np.float64)
    series = {code: np.asarray(v, dtype=np.float64) for code, v in others.items()}
    finite = {code: np.isfinite(v) for code, v in series.items()}
    required = np.isfinite(rm)
    for code, ok in finite.items():
        if code not in optional:
            required &= ok
    unavailable: dict[str, str] = {}
    sample = required.copy()
    for code, reason in optional.items():
        if code not in series:
            continue
        if int((required & finite[code]).sum()) >= min_obs:
            sample &= finite[code]
        else:
            unavailable[code] = reason
    n = int(sample.sum())
    if n < min_obs:
        details: list[dict[str, object]] = [
            {"field": market_name, "issue": "returns in window", "value": int(np.isfinite(rm).sum())}
        ]
        details += [
            {"field": names.get(code, code), "issue": "returns in window", "value": int(finite[code].sum())}
            for code in series
        ]
        details.append({"field": "listwise", "issue": f"complete rows (need {min_obs})", "value": n})
        raise FactorModelError(
            f"only {n} complete factor rows in the window; at least {min_obs} are needed",
            code="INSUFFICIENT_FACTOR_HISTORY",
            details=details,
        )
    m_s = rm[sample]
    m_c = m_s - m_s.mean()
    var_m = float(m_c @ m_c)
    if np.sqrt(var_m / (n - 1)) < DEGENERATE_STD:
        raise FactorModelError("the market series has no variation in the window", code="FACTOR_DATA_DEGENERATE")

    loadings: dict[str, float] = {}
    intercepts: dict[str, float] = {}
    model_cols = [rm]
    raw_cols = [rm]
    codes = [market_code]
    raw_list = [market_name]
    flags: list[str] = []
    for code, values in series.items():
        if code in unavailable:
            continue
        r_s = values[sample]
        b = float((r_s - r_s.mean()) @ m_c / var_m)
        f = values - b * rm
        if np.std(f[sample], ddof=1) < DEGENERATE_STD:
            unavailable[code] = "factor_degenerate"
            continue
        loadings[code] = b
        intercepts[code] = float(r_s.mean() - b * m_s.mean())
        model_cols.append(f)
        raw_cols.append(values)
        codes.append(code)
        raw_list.append(names.get(code, code))
    design = np.column_stack(model_cols)
    raw = np.column_stack(raw_cols)
    design[~sample] = np.nan
    model_stats = matrix_stats(design[sample], codes)
    raw_stats = matrix_stats(raw[sample], raw_list)
    if model_stats.high_pairs:
        flags.append("factor_correlation_high")
    raw_styles = {names.get(c, c) for c in codes if c in style_codes}
    if factor_data_suspect(raw_stats, market_name, raw_styles):
        flags.append("factor_data_suspect")
    for reason in dict.fromkeys(unavailable.values()):
        flags.append(reason)
    joint = tuple(c for c in codes if c == market_code or c in style_codes)
    return FactorModel(
        dates=tuple(dates),
        sample=sample,
        all_codes=(market_code, *series.keys()),
        codes=tuple(codes),
        raw_names=tuple(raw_list),
        design=design,
        raw=raw,
        loadings=loadings,
        intercepts=intercepts,
        joint_codes=joint,
        model_stats=model_stats,
        raw_stats=raw_stats,
        flags=tuple(flags),
        unavailable=unavailable,
    )


# ---------------------------------------------------------------------------------------------
# Batched OLS on centred moments
# ---------------------------------------------------------------------------------------------


# OpenBLAS runs a gemm on one thread only when m·n·k ≤ 65536·4. The products here are skinny (N
# symbols × ~250 days × ≤ 64) and fast, so its threads buy little, and on a shared 2-core host a
# threaded gemm stalls on a descheduled worker for a timeslice (measured 2–3× slower regressions
# under load). Splitting the rows keeps every call single-threaded at no cost in flops.
_SERIAL_GEMM_WORK = 65_536 * 4


def serial_matmul(a: F64, b: F64) -> F64:
    """a @ b for 2-D a (m, k) and b (k, n), computed in row blocks that OpenBLAS runs single-threaded."""
    m, k = a.shape
    n = b.shape[1]
    rows = max(1, _SERIAL_GEMM_WORK // max(1, k * n))
    if m <= rows:
        out: F64 = a @ b
        return out
    out = np.empty((m, n), dtype=np.result_type(a, b))
    for start in range(0, m, rows):
        np.matmul(a[start : start + rows], b, out=out[start : start + rows])
    return out


def _small_inv(a: F64) -> F64:
    """Inverse of a batch of q×q matrices: closed form for q ≤ 2 (elementwise, fast), LAPACK otherwise."""
    q = a.shape[-1]
    if q == 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            out1: F64 = 1.0 / a
        return out1
    if q == 2:
        a00, a01, a10, a11 = a[..., 0, 0], a[..., 0, 1], a[..., 1, 0], a[..., 1, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            det = a00 * a11 - a01 * a10
            out2 = np.empty_like(a)
            out2[..., 0, 0] = a11 / det
            out2[..., 0, 1] = -a01 / det
            out2[..., 1, 0] = -a10 / det
            out2[..., 1, 1] = a00 / det
        return out2
    return safe_inv(a)


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
    """The slopes of a batch of OLS-with-intercept fits, without the intercept's estimate and SE."""

    inv: F64  # (G, …, q, q) inverse of the centred cross-products
    beta: F64  # (..., q)
    bse: F64
    rsquared: F64  # (...)
    rsquared_adj: F64
    ssr: F64
    df_resid: F64


def _ols_slopes(cxx: F64, cxy: F64, cyy: F64, n: F64) -> SlopeFit:
    """Slopes, their SEs and R² of OLS with intercept, from centred moments (shapes as _ols_moments)."""
    inv = _small_inv(cxx)
    q = cxx.shape[-1]
    if q == 1:
        beta = inv[..., 0] * cxy
    elif q == 2:
        beta = np.stack(
            [
                inv[..., 0, 0] * cxy[..., 0] + inv[..., 0, 1] * cxy[..., 1],
                inv[..., 1, 0] * cxy[..., 0] + inv[..., 1, 1] * cxy[..., 1],
            ],
            axis=-1,
        )
    elif inv.shape[0] == 1:
        beta = serial_matmul(cxy, inv[0].T)
    else:
        beta = np.einsum("...ij,...j->...i", inv, cxy)
    ssr = np.maximum(cyy - np.einsum("...i,...i->...", beta, cxy), 0.0)
    df = n - (q + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        bse = np.sqrt((ssr / df)[..., None] * np.diagonal(inv, axis1=-2, axis2=-1))
        r2 = 1.0 - ssr / cyy
        r2adj = 1.0 - (1.0 - r2) * (n - 1.0) / df
    return SlopeFit(inv, beta, bse, r2, r2adj, ssr, df)


def _with_intercept(s: SlopeFit, xbar: F64, n: F64, ybar: F64) -> FitResult:
    """The full fit: the intercept and its SE (from the regressor means) in front of the slopes."""
    with np.errstate(invalid="ignore", divide="ignore"):
        quad = np.einsum("...i,...ij,...j->...", xbar, s.inv, xbar)
        var_a = s.ssr / s.df_resid * (1.0 / n + quad)
        alpha = ybar - np.einsum("...i,...i->...", s.beta, xbar)
        params = np.concatenate([alpha[..., None], s.beta], axis=-1)
        bse = np.concatenate([np.sqrt(var_a)[..., None], s.bse], axis=-1)
    nobs = np.broadcast_to(n, s.ssr.shape).astype(np.float64)
    return FitResult(params, bse, s.rsquared, s.rsquared_adj, s.ssr, s.df_resid, nobs)


def _ols_moments(cxx: F64, cxy: F64, xbar: F64, cyy: F64, n: F64, ybar: F64) -> FitResult:
    """OLS with intercept from centred moments.

    cxx (G, …, q, q) with G = 1 (one design shared by every regression) or the batch size; cxy
    (N, …, q); cyy, n, ybar (N, …); xbar the regressor means in original units (broadcastable to cxy).
    """
    return _with_intercept(_ols_slopes(cxx, cxy, cyy, n), xbar, n, ybar)


@dataclass(frozen=True)
class _Moments:
    """Centred moments of a group of masked regressions on the columns of one design."""

    n: F64  # (N,)
    xbar: F64  # (N or 1, k) regressor means in original units
    cxx: F64  # (G, k, k), G = 1 (shared) or N
    cxy: F64  # (N, k)
    cyy: F64  # (N,)
    ybar: F64  # (N,)

    def take(self, idx: I64) -> tuple[F64, F64, F64]:
        """(cxx, cxy, xbar) restricted to the regressors `idx` (any leading index shape)."""
        cxx = self.cxx[:, idx[..., :, None], idx[..., None, :]]
        return cxx, self.cxy[:, idx], self.xbar[:, idx]


@dataclass(frozen=True)
class _YMoments:
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


def _y_moments(ys: F64) -> _YMoments:
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
    return _YMoments(n, sum_y, np.einsum("tn,tn->n", ys, ys), ys, gappy, gappy_finite)


def _group_moments(xcs: F64, mu: F64, n: F64, sum_y: F64, syy: F64, sxy: F64, weights: F64 | None) -> _Moments:
    """Moments of one group: `weights` (nS, N_g) validity, or None when every row is valid (shared X'X)."""
    k = xcs.shape[1]
    safe_n = np.where(n > 0, n, 1.0)
    ybar = sum_y / safe_n
    cyy = syy - n * ybar * ybar
    if weights is None:
        sx = xcs.sum(axis=0)[None, :]
        cxx = (xcs.T @ xcs - np.outer(sx[0], sx[0]) / xcs.shape[0])[None]
    else:
        sx = serial_matmul(weights.T, xcs)
        xx = (xcs[:, :, None] * xcs[:, None, :]).reshape(xcs.shape[0], k * k)
        cxx = serial_matmul(weights.T, xx).reshape(-1, k, k) - sx[:, :, None] * sx[:, None, :] / safe_n[:, None, None]
    cxy = sxy - sx * ybar[:, None]
    xbar = sx / (safe_n[:, None] if weights is not None else xcs.shape[0]) + mu
    return _Moments(n, xbar, cxx, cxy, cyy, ybar)


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
    ym = _y_moments(y[rows].copy())
    sxy = serial_matmul(ym.ys.T, xcs)
    m = _group_moments(xcs, mu, ym.n.astype(np.float64), ym.sum_y, ym.syy, sxy, ym.finite_all().astype(np.float64))
    return _ols_moments(m.cxx, m.cxy, m.xbar, m.cyy, m.n, m.ybar).with_pvalues()


def collinearity(x: F64) -> tuple[F64, float]:
    """(VIF per column with intercept, standardised condition number) of a design without constant."""
    stats = matrix_stats(np.asarray(x, dtype=np.float64), [str(i) for i in range(np.shape(x)[1])])
    return stats.vif, stats.condition_number


# ---------------------------------------------------------------------------------------------
# Per-underlying regressions (§4.3-4.5)
# ---------------------------------------------------------------------------------------------

FLAG_BITS: dict[str, int] = {
    "extreme_beta": 1,
    "collinearity_warn": 2,
    "collinearity_severe": 4,
    "low_significance": 8,
    "no_variation": 16,
    "factor_degenerate": 32,
    "suspect_return": 64,
    "rate_data_missing": 128,
}


def flag_names(bits: int) -> tuple[str, ...]:
    """Names of the §4.5 flags set in `bits`."""
    return tuple(name for name, bit in FLAG_BITS.items() if bits & bit)


@dataclass(frozen=True)
class RegressionBatch:
    """Betas and diagnostics of N underlyings; beta columns follow `codes` (= model.all_codes)."""

    codes: tuple[str, ...]
    joint_codes: tuple[str, ...]
    n: I64  # (N,) observations (position sample size)
    first: I64  # (N,) index into model.dates of the first sample row (-1 when none)
    last: I64
    quality: npt.NDArray[np.str_]  # full_history | limited_history | insufficient_history
    beta_source: npt.NDArray[np.str_]  # regression | default
    beta: F64  # (N, K): market = univariate slope; others = coefficient on f_k in [1, r_M, f_k]
    std_error: F64
    t_stat: F64
    p_value: F64
    r_squared: F64  # of the regression that produced each beta
    adj_r_squared: F64
    vif: F64  # from the joint diagnostic fit (NaN for factors outside it)
    alpha: F64  # (N,) daily intercept of the market regression
    alpha_p_value: F64
    residual_volatility: F64  # annualised std of the market-regression residuals (ddof = p)
    r_squared_joint: F64
    condition_number: F64  # standardised design of the joint fit
    joint_beta: F64  # (N, J) joint-fit coefficients (diagnostic only)
    joint_std_error: F64
    flags: npt.NDArray[np.int32]  # FLAG_BITS per underlying (flag_names() for the names)
    market_fit: FitResult | None = None  # (N,) fits with every t/p, when keep_fits
    pair_fit: FitResult | None = None  # (N, K-1)
    joint_fit: FitResult | None = None

    def __len__(self) -> int:
        return int(self.n.shape[0])


def _standardised_diagnostics(cxx: F64) -> tuple[F64, F64]:
    """(VIF (G, J), condition number (G,)) from centred cross-products of the joint regressors."""
    d = np.sqrt(np.diagonal(cxx, axis1=-2, axis2=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cxx / (d[..., :, None] * d[..., None, :])
    corr = np.where(np.isfinite(corr), corr, 0.0)
    j = cxx.shape[-1]
    corr[..., np.arange(j), np.arange(j)] = 1.0
    vif = np.diagonal(safe_inv(corr), axis1=-2, axis2=-1).copy()
    eig = np.linalg.eigvalsh(corr)
    with np.errstate(invalid="ignore", divide="ignore"):
        cond = np.where(eig[..., 0] > 0, np.sqrt(eig[..., -1] / eig[..., 0]), np.inf)
    return vif, cond


@dataclass
class _Out:
    """Output arrays of regress_underlyings, filled group by group."""

    nb: int
    kk: int
    jn: int
    beta: F64 = field(init=False)
    se: F64 = field(init=False)
    t: F64 = field(init=False)
    p: F64 = field(init=False)
    r2: F64 = field(init=False)
    r2a: F64 = field(init=False)
    vif: F64 = field(init=False)
    alpha: F64 = field(init=False)
    alpha_p: F64 = field(init=False)
    resid_vol: F64 = field(init=False)
    r2j: F64 = field(init=False)
    cond: F64 = field(init=False)
    jbeta: F64 = field(init=False)
    jse: F64 = field(init=False)
    degenerate: B = field(init=False)
    no_variation: B = field(init=False)

    def __post_init__(self) -> None:
        for name in ("beta", "se", "t", "p", "r2", "r2a", "vif"):
            setattr(self, name, np.full((self.nb, self.kk), np.nan))
        for name in ("alpha", "alpha_p", "resid_vol", "r2j", "cond"):
            setattr(self, name, np.full(self.nb, np.nan))
        self.jbeta = np.full((self.nb, self.jn), np.nan)
        self.jse = np.full((self.nb, self.jn), np.nan)
        self.degenerate = np.zeros(self.nb, dtype=bool)
        self.no_variation = np.zeros(self.nb, dtype=bool)


def _degenerate_columns(m: _Moments) -> tuple[_Moments, B]:
    """Per-regression degenerate regressors (std < 1e-8 in its sample), replaced by identity rows so
    the batch stays invertible; their coefficients are discarded (NULL with factor_degenerate)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.diagonal(m.cxx, axis1=-2, axis2=-1) / (m.n[:, None] - 1.0)
    deg: B = ~(np.sqrt(np.maximum(var, 0.0)) >= DEGENERATE_STD)
    if not deg.any():
        return m, deg
    cxx = m.cxx.copy()
    rows, cols = np.nonzero(deg)
    cxx[rows, cols, :] = 0.0
    cxx[rows, :, cols] = 0.0
    cxx[rows, cols, cols] = 1.0
    return _Moments(m.n, m.xbar, cxx, m.cxy, m.cyy, m.ybar), deg


def _fit_group(
    m: _Moments, rows: I64, out: _Out, out_cols: I64, pair_idx: I64, joint_idx: I64, keep: list[FitResult] | None
) -> None:
    """Market, pair and joint fits of one group of underlyings; results scattered into `out`."""
    g = rows.size
    shared = m.cxx.shape[0] == 1 and g > 1
    deg = np.zeros((g, m.cxy.shape[1]), dtype=bool)
    if not shared:
        m, deg = _degenerate_columns(m)
    c0 = np.array([0])
    mf = _ols_moments(*m.take(c0), m.cyy, m.n, m.ybar)
    npair = pair_idx.shape[0]
    pcxx, pcxy, pxbar = m.take(pair_idx)
    pair_cyy, pair_n = np.broadcast_to(m.cyy[:, None], (g, npair)), np.broadcast_to(m.n[:, None], (g, npair))
    # The pair and joint intercepts are never stored: only their slopes are fitted (the intercepts are
    # added for the tests' full fits).
    pf = _ols_slopes(pcxx, pcxy, pair_cyy, pair_n)
    jcxx, jcxy, jxbar = m.take(joint_idx)
    jf = _ols_slopes(jcxx, jcxy, m.cyy, m.n)
    if keep is not None:
        pair_ybar = np.broadcast_to(m.ybar[:, None], (g, npair))
        pair_full = _with_intercept(pf, pxbar, pair_n, pair_ybar)
        joint_full = _with_intercept(jf, jxbar, m.n, m.ybar)
        keep.extend((mf.with_pvalues(), pair_full.with_pvalues(), joint_full.with_pvalues()))

    # Stored columns: market slope of the univariate fit, the f_k coefficient of each pair fit.
    b = np.column_stack([mf.params[:, 1], pf.beta[:, :, 1]])
    s = np.column_stack([mf.bse[:, 1], pf.bse[:, :, 1]])
    market_t, market_p = t_and_p(mf.params[:, 1], mf.bse[:, 1], mf.df_resid)
    pair_t, pair_p = t_and_p(pf.beta[:, :, 1], pf.bse[:, :, 1], pf.df_resid)
    slopes_t = np.column_stack([market_t, pair_t])
    slopes_p = np.column_stack([market_p, pair_p])
    _, alpha_p = t_and_p(mf.params[:, 0], mf.bse[:, 0], mf.df_resid)
    r2 = np.column_stack([mf.rsquared, pf.rsquared])
    r2a = np.column_stack([mf.rsquared_adj, pf.rsquared_adj])
    col_deg = deg.copy()
    col_deg[:, 1:] |= deg[:, [0]]
    with np.errstate(invalid="ignore", divide="ignore"):
        const = np.sqrt(np.maximum(m.cyy, 0.0) / (m.n - 1.0)) < DEGENERATE_STD
    for arr in (b, s, slopes_t, slopes_p, r2, r2a):
        arr[col_deg] = np.nan
    vif, cond = _standardised_diagnostics(jcxx)
    if vif.shape[0] != g:
        vif = np.broadcast_to(vif, (g, joint_idx.size)).copy()
        cond = np.broadcast_to(cond, (g,)).copy()
    joint_deg = deg[:, joint_idx].any(axis=1)
    jb, jse, r2j = jf.beta.copy(), jf.bse.copy(), jf.rsquared.copy()
    for arr2 in (vif, jb, jse):
        arr2[joint_deg] = np.nan
    cond[joint_deg] = np.nan
    r2j[joint_deg] = np.nan
    market_bad = const | deg[:, 0]
    if const.any():
        # A constant series (e.g. a money-market fund): every beta is a legitimate exact zero.
        b[const] = 0.0
        jb[const] = 0.0
        for arr in (s, slopes_t, slopes_p, r2, r2a, jse):
            arr[const] = np.nan
        r2j[const] = np.nan
        cond[const] = np.nan
    sel = np.ix_(rows, out_cols)
    out.beta[sel], out.se[sel], out.t[sel], out.p[sel] = b, s, slopes_t, slopes_p
    out.r2[sel], out.r2a[sel] = r2, r2a
    out.vif[np.ix_(rows, out_cols[joint_idx])] = vif
    out.jbeta[rows], out.jse[rows] = jb, jse
    out.alpha[rows] = np.where(market_bad, np.nan, mf.params[:, 0])
    out.alpha_p[rows] = np.where(market_bad, np.nan, alpha_p)
    out.resid_vol[rows] = np.where(market_bad, np.nan, mf.resid_std * np.sqrt(ANNUALIZATION))
    out.r2j[rows] = r2j
    out.cond[rows] = cond
    out.degenerate[rows] = deg.any(axis=1)
    out.no_variation[rows] = const


def regress_underlyings(
    model: FactorModel,
    returns: F64,
    *,
    min_obs: int = FACTOR_MIN_OBS,
    full_obs: int = FACTOR_FULL_HISTORY_OBS,
    keep_fits: bool = False,
) -> RegressionBatch:
    """Betas of N underlyings from their returns (T, N) aligned with `model.dates`, in one batch.

    n ≥ full_obs → full_history; min_obs ≤ n < full_obs → limited_history; n < min_obs → no
    regression: default betas (market 1, others 0, beta_source "default"). Betas are never capped.
    `keep_fits` also returns the complete market, pair and joint fits (every t and p), for tests.
    """
    y = np.asarray(returns, dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    if y.ndim != 2 or y.shape[0] != len(model.dates):
        raise ValueError(f"returns must be (T, N) with T = {len(model.dates)} rows aligned with model.dates")
    nb = y.shape[1]
    codes = model.all_codes
    col = {c: i for i, c in enumerate(codes)}
    k = len(model.codes)
    out_cols = np.array([col[c] for c in model.codes], dtype=np.int64)
    pair_idx = np.array([[0, j] for j in range(1, k)], dtype=np.int64).reshape(-1, 2)
    joint_idx = np.array([model.codes.index(c) for c in model.joint_codes], dtype=np.int64)
    out = _Out(nb, len(codes), joint_idx.size)

    sample_rows = np.flatnonzero(model.sample)
    n_sample = sample_rows.size
    mu = model.means
    xcs = model.design[sample_rows] - mu
    ym = _y_moments(y[sample_rows])
    n, sum_y, syy, ys = ym.n, ym.sum_y, ym.syy, ym.ys
    sxy = serial_matmul(ys.T, xcs)
    # §0.4 suspect data: a single-day |r| > 0.5 (only possible where Σr² ≥ 0.25; checked there only).
    suspect = np.zeros(nb, dtype=bool)
    maybe = np.flatnonzero(syy >= SUSPECT_RETURN * SUSPECT_RETURN)
    if maybe.size:
        suspect[maybe] = (np.abs(ys[:, maybe]) > SUSPECT_RETURN).any(axis=0)
    regress = n >= min_obs
    full = np.flatnonzero(regress & (n == n_sample))
    partial = np.flatnonzero(regress & (n < n_sample))
    nf = n.astype(np.float64)
    fits: list[tuple[I64, list[FitResult]]] = []
    for group, weights in ((full, None), (partial, ym.finite(partial).astype(np.float64))):
        if group.size == 0:
            continue
        m = _group_moments(xcs, mu, nf[group], sum_y[group], syy[group], sxy[group], weights)
        keep: list[FitResult] | None = [] if keep_fits else None
        _fit_group(m, group, out, out_cols, pair_idx, joint_idx, keep)
        if keep is not None:
            fits.append((group, keep))

    default = ~regress
    out.beta[default] = 0.0
    out.beta[default, col[model.codes[0]]] = 1.0
    for code in model.unavailable:
        out.beta[:, col[code]] = np.nan

    first = np.full(nb, -1, dtype=np.int64)
    last = np.full(nb, -1, dtype=np.int64)
    first[n == n_sample], last[n == n_sample] = sample_rows[0], sample_rows[-1]
    other = np.flatnonzero((n > 0) & (n < n_sample))
    if other.size:
        rows_col = sample_rows[:, None]
        sub = ym.finite(other)
        first[other] = np.where(sub, rows_col, np.iinfo(np.int64).max).min(axis=0)
        last[other] = np.where(sub, rows_col, -1).max(axis=0)
    quality = np.where(n >= full_obs, QUALITY_FULL, np.where(n >= min_obs, QUALITY_LIMITED, QUALITY_INSUFFICIENT))
    source = np.where(regress, "regression", "default")
    flags = _flag_bits(
        codes=codes,
        out=out,
        regress=regress,
        suspect=suspect,
        unavailable=model.unavailable,
        market_code=model.codes[0],
        style_codes=set(model.joint_codes[1:]),
    )
    market_fit = pair_fit = joint_fit = None
    if keep_fits:
        market_fit, pair_fit, joint_fit = _gather_fits(fits, nb, k, joint_idx.size)
    return RegressionBatch(
        codes=codes,
        joint_codes=model.joint_codes,
        n=n,
        first=first,
        last=last,
        quality=quality,
        beta_source=source,
        beta=out.beta,
        std_error=out.se,
        t_stat=out.t,
        p_value=out.p,
        r_squared=out.r2,
        adj_r_squared=out.r2a,
        vif=out.vif,
        alpha=out.alpha,
        alpha_p_value=out.alpha_p,
        residual_volatility=out.resid_vol,
        r_squared_joint=out.r2j,
        condition_number=out.cond,
        joint_beta=out.jbeta,
        joint_std_error=out.jse,
        flags=flags,
        market_fit=market_fit,
        pair_fit=pair_fit,
        joint_fit=joint_fit,
    )


def _gather_fits(
    fits: list[tuple[I64, list[FitResult]]], nb: int, k: int, jn: int
) -> tuple[FitResult, FitResult, FitResult]:
    """Full fits of every regressed underlying (NaN for the others), for tests and diagnostics."""

    def empty(shape: tuple[int, ...], p: int) -> FitResult:
        def full(*s: int) -> F64:
            return np.full((*shape, *s), np.nan)

        return FitResult(full(p), full(p), full(), full(), full(), full(), full(), full(p), full(p))

    targets = (empty((nb,), 2), empty((nb, k - 1), 3), empty((nb,), jn + 1))
    for rows, sources in fits:
        for target, source in zip(targets, sources, strict=True):
            for name in ("params", "bse", "rsquared", "rsquared_adj", "ssr", "df_resid", "nobs", "tvalues", "pvalues"):
                getattr(target, name)[rows] = getattr(source, name)
    return targets


def _flag_bits(
    *,
    codes: tuple[str, ...],
    out: _Out,
    regress: B,
    suspect: B,
    unavailable: Mapping[str, str],
    market_code: str,
    style_codes: Collection[str],
) -> npt.NDArray[np.int32]:
    """§4.5 warnings per underlying as bit flags (vectorised)."""
    m = codes.index(market_code)
    styles = [i for i, c in enumerate(codes) if c in style_codes]
    reasons = set(unavailable.values())
    with np.errstate(invalid="ignore"):
        extreme = regress & (
            (np.abs(out.beta[:, m]) > EXTREME_MARKET_BETA)
            | (np.nan_to_num(np.abs(out.beta[:, styles]), nan=0.0) > EXTREME_STYLE_BETA).any(axis=1)
        )
        max_vif = np.max(np.where(np.isfinite(out.vif), out.vif, -np.inf), axis=1, initial=-np.inf)
        severe = regress & ((max_vif > VIF_SEVERE) | (np.nan_to_num(out.cond, nan=0.0) > COND_SEVERE))
        warn = regress & ~severe & (max_vif > VIF_WARN)
        low_sig = regress & ~out.no_variation & (out.p[:, m] > SIGNIFICANCE)
    bits = np.zeros(out.nb, dtype=np.int32)
    for name, mask in (
        ("extreme_beta", extreme),
        ("collinearity_warn", warn),
        ("collinearity_severe", severe),
        ("low_significance", low_sig),
        ("no_variation", regress & out.no_variation),
        ("factor_degenerate", regress & (out.degenerate | ("factor_degenerate" in reasons))),
        ("suspect_return", suspect),
        ("rate_data_missing", np.full(out.nb, "rate_data_missing" in reasons)),
    ):
        bits[mask] |= FLAG_BITS[name]
    return bits
