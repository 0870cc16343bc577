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

The batched OLS (factors.ols) works on centred cross-products: X'X and X'y of every underlying are
stacked (masked by its validity) and the small (k×k) systems are inverted as one (N, k, k) batch.
Underlyings whose sample is the whole factor sample share one X'X (the common case).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import numpy.typing as npt

from factors.ols import (  # FitResult and safe_inv are also used as compute.* by callers and tests
    FitResult,
    Moments,
    group_moments,
    pair_fits,
    pair_slopes,
    safe_inv,
    serial_matmul,
    y_moments,
)
from factors.ols import batched_ols as batched_ols  # re-exported: the tests' worked examples use compute.*
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


def _standardised_diagnostics(cxx: F64, inv: F64 | None) -> tuple[F64, F64]:
    """(VIF (G, J), condition number (G,)) from centred cross-products `cxx` of the joint regressors.

    corr = D⁻¹·cxx·D⁻¹ with D² = diag(cxx), so diag(corr⁻¹) = diag(cxx⁻¹)·diag(cxx): given the exact
    inverse `inv` of cxx (the joint fit has it already) the VIFs need no second inversion. Members
    with a zero-variance column, a non-finite result or no exact inverse use corr⁻¹ itself.
    """
    var = np.diagonal(cxx, axis1=-2, axis2=-1)
    d = np.sqrt(var)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cxx / (d[..., :, None] * d[..., None, :])
    corr = np.where(np.isfinite(corr), corr, 0.0)
    j = cxx.shape[-1]
    corr[..., np.arange(j), np.arange(j)] = 1.0
    with np.errstate(invalid="ignore", over="ignore"):
        vif = np.diagonal(inv, axis1=-2, axis2=-1) * var if inv is not None else np.full(var.shape, np.nan)
        redo = ~((var > 0.0).all(axis=-1) & np.isfinite(vif).all(axis=-1))
    if redo.any():
        vif[redo] = np.diagonal(safe_inv(corr[redo]), axis1=-2, axis2=-1)
    eig = np.linalg.eigvalsh(corr)
    with np.errstate(invalid="ignore", divide="ignore"):
        cond = np.where(eig[..., 0] > 0, np.sqrt(eig[..., -1] / eig[..., 0]), np.inf)
    return vif, cond


# Per-underlying outputs of the regressions, in one (height, N) array (symbols last, like the fits)
# so that the gappy group is scattered into place once: (name, rows in units of k = model factors,
# J = joint regressors, 1 = one row). The RegressionBatch fields are (transposed) views of it.
_OUTPUT_FIELDS = (
    ("beta", "k"),  # market slope of the univariate fit, then the f_k coefficient of each pair fit
    ("se", "k"),
    ("t", "k"),
    ("p", "k"),
    ("r2", "k"),
    ("r2a", "k"),
    ("vif", "J"),
    ("jbeta", "J"),
    ("jse", "J"),
    ("alpha", "1"),
    ("alpha_p", "1"),
    ("resid_vol", "1"),
    ("r2j", "1"),
    ("cond", "1"),
    ("degenerate", "1"),  # 1.0 / 0.0
    ("no_variation", "1"),
)


@dataclass(frozen=True)
class _OutputLayout:
    """Row ranges of the per-underlying output array for k model factors and J joint regressors."""

    k: int
    j: int

    def _heights(self) -> list[int]:
        return [{"k": self.k, "J": self.j, "1": 1}[unit] for _, unit in _OUTPUT_FIELDS]

    @property
    def height(self) -> int:
        return sum(self._heights())

    def views(self, out: F64) -> dict[str, F64]:
        """Writable views of `out` (height, N): (h, N) per field, (N,) for one-row fields."""
        views: dict[str, F64] = {}
        start = 0
        for (name, unit), h in zip(_OUTPUT_FIELDS, self._heights(), strict=True):
            views[name] = out[start] if unit == "1" else out[start : start + h]
            start += h
        return views


def _degenerate_columns(m: Moments) -> tuple[Moments, B]:
    """Per-regression degenerate regressors (std < 1e-8 in its sample), (k, g), replaced by identity
    rows so the batch stays invertible; their coefficients are discarded (NULL with factor_degenerate)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.diagonal(m.cxx, axis1=-2, axis2=-1).T / (m.n - 1.0)
    deg: B = ~(np.sqrt(np.maximum(var, 0.0)) >= DEGENERATE_STD)
    if not deg.any():
        return m, deg
    cxx = m.cxx.copy()
    cols, rows = np.nonzero(deg)
    cxx[rows, cols, :] = 0.0
    cxx[rows, :, cols] = 0.0
    cxx[rows, cols, cols] = 1.0
    return Moments(m.n, m.xbar, cxx, m.cxy, m.cyy, m.ybar), deg


def _fit_group(m: Moments, joint_idx: I64, keep: list[FitResult] | None, layout: _OutputLayout) -> F64:
    """Market, pair and joint fits of one group of g underlyings: their (layout.height, g) outputs."""
    g = m.n.shape[0]
    deg = np.zeros((m.cxy.shape[0], g), dtype=bool)  # (k, g)
    # A shared X'X is the model's own factor sample, where build_factor_model already dropped every
    # degenerate factor (factor_degenerate); only an underlying's own, shorter sample can make one.
    if not (m.cxx.shape[0] == 1 and g > 1):
        m, deg = _degenerate_columns(m)
    market = m.full_fit(np.array([0]))
    pairs = pair_slopes(m)
    jf = m.fit(joint_idx)
    if keep is not None:
        keep.extend((market.with_pvalues(), pair_fits(m).with_pvalues(), m.full_fit(joint_idx, jf).with_pvalues()))

    # The market fit's intercept and slope share one df (n − 2): one t/p pass for both.
    market_t, market_p = t_and_p(market.params, market.bse, market.df_resid[:, None])
    pair_t, pair_p = t_and_p(pairs.beta, pairs.bse, pairs.df_resid)
    out = np.empty((layout.height, g))
    v = layout.views(out)
    b, s, slopes_t, slopes_p, r2, r2a = v["beta"], v["se"], v["t"], v["p"], v["r2"], v["r2a"]
    b[0], b[1:] = market.params[:, 1], pairs.beta
    s[0], s[1:] = market.bse[:, 1], pairs.bse
    slopes_t[0], slopes_t[1:] = market_t[:, 1], pair_t
    slopes_p[0], slopes_p[1:] = market_p[:, 1], pair_p
    r2[0], r2[1:] = market.rsquared, pairs.rsquared
    r2a[0], r2a[1:] = market.rsquared_adj, pairs.rsquared_adj
    if deg.any():
        col_deg = deg | deg[0]  # a degenerate market voids every pair fit too
        for arr in (b, s, slopes_t, slopes_p, r2, r2a):
            arr[col_deg] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        const = np.sqrt(np.maximum(m.cyy, 0.0) / (m.n - 1.0)) < DEGENERATE_STD
    vif, jb, jse = v["vif"], v["jbeta"], v["jse"]
    diag_vif, diag_cond = _standardised_diagnostics(m.cross(joint_idx), jf.inv if jf.inv_exact else None)
    vif[:], v["cond"][:] = diag_vif.T, diag_cond  # (J, G) and (G,): broadcast when shared
    jb[:], jse[:], v["r2j"][:] = jf.beta, jf.bse, jf.rsquared
    joint_deg = deg[joint_idx].any(axis=0)
    for arr in (vif, jb, jse):
        arr[:, joint_deg] = np.nan
    v["cond"][joint_deg] = np.nan
    v["r2j"][joint_deg] = np.nan
    market_bad = const | deg[0]
    if const.any():
        # A constant series (e.g. a money-market fund): every beta is a legitimate exact zero.
        b[:, const] = 0.0
        jb[:, const] = 0.0
        for arr in (s, slopes_t, slopes_p, r2, r2a, jse):
            arr[:, const] = np.nan
        v["r2j"][const] = np.nan
        v["cond"][const] = np.nan
    with np.errstate(invalid="ignore"):
        v["resid_vol"][:] = np.where(market_bad, np.nan, market.resid_std * np.sqrt(ANNUALIZATION))
    v["alpha"][:] = np.where(market_bad, np.nan, market.params[:, 0])
    v["alpha_p"][:] = np.where(market_bad, np.nan, market_p[:, 0])
    v["degenerate"][:] = deg.any(axis=0)
    v["no_variation"][:] = const
    return out


def _to_codes(rows: F64, idx: I64, width: int) -> F64:
    """(nb, width) per-underlying values of all codes from `rows` (h, nb) of the codes `idx`, NaN
    elsewhere; a transposed view when `idx` is already every code in order."""
    if rows.shape[0] == width and np.array_equal(idx, np.arange(width)):
        return rows.T
    out = np.full((rows.shape[1], width), np.nan)
    out[:, idx] = rows.T
    return out


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
    joint_idx = np.array([model.codes.index(c) for c in model.joint_codes], dtype=np.int64)

    sample_rows = np.flatnonzero(model.sample)
    n_sample = sample_rows.size
    mu = model.means
    xcs = model.design[sample_rows] - mu
    ym = y_moments(y[sample_rows])
    n, sum_y, syy, ys = ym.n, ym.sum_y, ym.syy, ym.ys
    sxy = serial_matmul(xcs.T, ys)  # (k, N)
    # §0.4 suspect data: a single-day |r| > 0.5 (only possible where Σr² ≥ 0.25; checked there only).
    suspect = np.zeros(nb, dtype=bool)
    maybe = np.flatnonzero(syy >= SUSPECT_RETURN * SUSPECT_RETURN)
    if maybe.size:
        suspect[maybe] = (np.abs(ys[:, maybe]) > SUSPECT_RETURN).any(axis=0)
    regress = n >= min_obs
    whole_sample = n == n_sample  # no missing return on any factor-sample row
    full = np.flatnonzero(regress & whole_sample)
    partial = np.flatnonzero(regress & ~whole_sample)
    nf = n.astype(np.float64)
    layout = _OutputLayout(k, joint_idx.size)
    fits: list[tuple[I64, I64 | slice, list[FitResult]]] = []
    if not full.size:
        out = np.full((layout.height, nb), np.nan)
    else:
        # One shared X'X: fitted for every underlying at once, as if on the whole sample (no gather,
        # no scatter, one df); the columns of the others are overwritten below with their own fits,
        # or NaN.
        m = group_moments(xcs, mu, np.full(nb, float(n_sample)), sum_y, syy, sxy, None)
        keep: list[FitResult] | None = [] if keep_fits else None
        out = _fit_group(m, joint_idx, keep, layout)
        if keep is not None:
            fits.append((full, full, keep))
        out[:, ~(regress & whole_sample)] = np.nan
    if partial.size:
        m = group_moments(
            xcs, mu, nf[partial], sum_y[partial], syy[partial], sxy[:, partial], ym.finite(partial).astype(np.float64)
        )
        keep = [] if keep_fits else None
        out[:, partial] = _fit_group(m, joint_idx, keep, layout)
        if keep is not None:
            fits.append((partial, slice(None), keep))
    v = layout.views(out)
    if not regress.all():
        v["beta"][:, ~regress] = 0.0
        v["beta"][0, ~regress] = 1.0  # default betas: market 1, others 0
    width = len(codes)
    beta = _to_codes(v["beta"], out_cols, width)
    vif = _to_codes(v["vif"], out_cols[joint_idx], width)
    p_value = _to_codes(v["p"], out_cols, width)

    first = np.full(nb, -1, dtype=np.int64)
    last = np.full(nb, -1, dtype=np.int64)
    first[whole_sample], last[whole_sample] = sample_rows[0], sample_rows[-1]
    other = np.flatnonzero((n > 0) & ~whole_sample)
    if other.size:
        rows_col = sample_rows[:, None]
        sub = ym.finite(other)
        first[other] = np.where(sub, rows_col, np.iinfo(np.int64).max).min(axis=0)
        last[other] = np.where(sub, rows_col, -1).max(axis=0)
    quality = np.where(n >= full_obs, QUALITY_FULL, np.where(n >= min_obs, QUALITY_LIMITED, QUALITY_INSUFFICIENT))
    source = np.where(regress, "regression", "default")
    flags = _flag_bits(
        beta=beta,
        vif=v["vif"],
        cond=v["cond"],
        market_p=v["p"][0],
        regress=regress,
        no_variation=v["no_variation"] == 1.0,
        degenerate=v["degenerate"] == 1.0,
        suspect=suspect,
        unavailable=model.unavailable,
        styles=np.array([col[c] for c in model.joint_codes[1:]], dtype=np.int64),
        market=col[model.codes[0]],
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
        beta=beta,
        std_error=_to_codes(v["se"], out_cols, width),
        t_stat=_to_codes(v["t"], out_cols, width),
        p_value=p_value,
        r_squared=_to_codes(v["r2"], out_cols, width),
        adj_r_squared=_to_codes(v["r2a"], out_cols, width),
        vif=vif,
        alpha=v["alpha"],
        alpha_p_value=v["alpha_p"],
        residual_volatility=v["resid_vol"],
        r_squared_joint=v["r2j"],
        condition_number=v["cond"],
        joint_beta=v["jbeta"].T,
        joint_std_error=v["jse"].T,
        flags=flags,
        market_fit=market_fit,
        pair_fit=pair_fit,
        joint_fit=joint_fit,
    )


def _gather_fits(
    fits: list[tuple[I64, I64 | slice, list[FitResult]]], nb: int, k: int, jn: int
) -> tuple[FitResult, FitResult, FitResult]:
    """Full fits of every regressed underlying (NaN for the others), for tests and diagnostics: each
    group's fits, rows `select` of them, go to the underlyings `rows`."""

    def empty(shape: tuple[int, ...], p: int) -> FitResult:
        def full(*s: int) -> F64:
            return np.full((*shape, *s), np.nan)

        return FitResult(full(p), full(p), full(), full(), full(), full(), full(), full(p), full(p))

    targets = (empty((nb,), 2), empty((nb, k - 1), 3), empty((nb,), jn + 1))
    for rows, select, sources in fits:
        for target, source in zip(targets, sources, strict=True):
            for name in ("params", "bse", "rsquared", "rsquared_adj", "ssr", "df_resid", "nobs", "tvalues", "pvalues"):
                getattr(target, name)[rows] = getattr(source, name)[select]
    return targets


def _flag_bits(
    *,
    beta: F64,
    vif: F64,  # (J, nb) joint-fit VIFs
    cond: F64,
    market_p: F64,
    regress: B,
    no_variation: B,
    degenerate: B,
    suspect: B,
    unavailable: Mapping[str, str],
    styles: I64,
    market: int,
) -> npt.NDArray[np.int32]:
    """§4.5 warnings per underlying as bit flags (vectorised). NaN compares false: a missing beta,
    VIF, condition number or p-value raises no flag; ±inf ones do (the VIF only when finite)."""
    reasons = set(unavailable.values())
    with np.errstate(invalid="ignore"):
        extreme = regress & (
            (np.abs(beta[:, market]) > EXTREME_MARKET_BETA) | (np.abs(beta[:, styles]) > EXTREME_STYLE_BETA).any(axis=1)
        )
        max_vif = np.max(np.where(np.isfinite(vif), vif, -np.inf), axis=0, initial=-np.inf)
        severe = regress & ((max_vif > VIF_SEVERE) | (cond > COND_SEVERE))
        warn = regress & ~severe & (max_vif > VIF_WARN)
        low_sig = regress & ~no_variation & (market_p > SIGNIFICANCE)
    bits = np.zeros(regress.shape[0], dtype=np.int32)
    for name, mask in (
        ("extreme_beta", extreme),
        ("collinearity_warn", warn),
        ("collinearity_severe", severe),
        ("low_significance", low_sig),
        ("no_variation", regress & no_variation),
        ("factor_degenerate", regress & (degenerate | ("factor_degenerate" in reasons))),
        ("suspect_return", suspect),
    ):
        bits[mask] |= FLAG_BITS[name]
    if "rate_data_missing" in reasons:
        bits |= FLAG_BITS["rate_data_missing"]
    return bits
