"""Value at Risk and Expected Shortfall (calculations.md §8.1–8.4), pure and vectorised.

* Ex-ante P&L series of today's holdings over the last 252 days of underlying returns with the
  delta-gamma term: `PnL_t = Σ_u e_u r_u,t + ½ Σ_u Γ$_u r_u,t²` (§8.1).
* Missing underlying returns are proxied by `β_u,M · r_M,t` (flagged), never by zero (§8.1).
* Historical VaR/ES: `k = ceil(N(1 − α))`, VaR = k-th largest loss, ES = mean of the k largest (§8.2).
* Parametric (delta-normal) VaR/ES: `σ_P = sqrt(e' Σ_R e)` with the sample covariance (ddof 1) of the
  filled return panel; `VaR = z_α σ_P`, `ES = σ_P φ(z_α)/(1 − α)` (§8.3); optional EWMA λ = 0.94.
* 10-day values = 1-day × √10 (§8.4). VaR and ES are positive loss amounts in dollars.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

VAR_WINDOW = 252
VAR_MIN_OBS = 60
CONFIDENCES: tuple[float, ...] = (0.95, 0.99)
HORIZONS: tuple[int, ...] = (1, 10)
EWMA_LAMBDA = 0.94
# Underlyings with fewer returns than this in the window use β = 1 for their missing days (§8.1).
PROXY_MIN_OBS = 60

REASON_STORED_BETA = "market_beta_proxy"
REASON_DEFAULT_BETA = "default_beta_proxy"
REASON_WINDOW_BETA = "window_beta_proxy"


@functools.lru_cache(maxsize=64)  # scipy's ppf costs ~0.1 ms a call; two confidences, every portfolio
def z_score(alpha: float) -> float:
    """Standard normal quantile z_α (1.644854 at 95 %, 2.326348 at 99 %)."""
    return float(norm.ppf(alpha))


@functools.lru_cache(maxsize=64)
def es_factor(alpha: float) -> float:
    """φ(z_α)/(1 − α): ES per unit σ (2.062713 at 95 %, 2.665214 at 99 %)."""
    return float(norm.pdf(norm.ppf(alpha)) / (1.0 - alpha))


def horizon_scale(value: float | None, days: int) -> float | None:
    """Square-root-of-time scaling of a 1-day VaR or ES to `days` (§8.4)."""
    return None if value is None else value * math.sqrt(days)


def tail_count(observations: int, alpha: float) -> int:
    """k = ceil(N(1 − α)), at least 1. The product is rounded to 9 dp first: 100 × (1 − 0.95) is
    5.000000000000004 in binary floating point and must give 5, not 6."""
    return max(1, math.ceil(round(observations * (1.0 - alpha), 9)))


@dataclass(frozen=True)
class TailRisk:
    """1-day VaR and ES in dollars (positive = loss) and the tail size k (0 for parametric)."""

    var: float
    es: float
    k: int = 0


def historical_var_es(pnl: np.ndarray, alpha: float) -> TailRisk:
    """VaR = k-th largest loss and ES = mean of the k largest losses of L_t = −PnL_t."""
    losses = -np.asarray(pnl, dtype=np.float64)
    k = tail_count(int(losses.size), alpha)
    largest = np.sort(losses)[::-1][:k]
    return TailRisk(var=float(largest[-1]), es=float(largest.mean()), k=k)


def parametric_var_es(sigma: float, alpha: float) -> TailRisk:
    """Delta-normal VaR = z_α σ and ES = σ φ(z_α)/(1 − α) (mean assumed 0)."""
    return TailRisk(var=z_score(alpha) * sigma, es=es_factor(alpha) * sigma)


def parametric_sigma(exposure: np.ndarray, covariance: np.ndarray) -> float:
    """σ_P = sqrt(e' Σ e) in dollars per day."""
    e = np.asarray(exposure, dtype=np.float64)
    return float(math.sqrt(max(float(e @ covariance @ e), 0.0)))


def ewma_weights(n: int, lam: float = EWMA_LAMBDA) -> np.ndarray:
    """w_j = (1 − λ) λ^j / (1 − λ^n), j = 0 the most recent day; they sum to 1 (§8.3)."""
    j = np.arange(n, dtype=np.float64)
    return (1.0 - lam) * lam**j / (1.0 - lam**n)


def ewma_covariance(returns: np.ndarray, lam: float = EWMA_LAMBDA) -> np.ndarray:
    """Σ = Σ_j w_j r_{t0−j} r_{t0−j}' of ascending-dated rows (newest last), no demeaning."""
    r = np.asarray(returns, dtype=np.float64)
    w = ewma_weights(r.shape[0], lam)[::-1]  # ascending rows: the last row is j = 0
    return (r * w[:, None]).T @ r


def ewma_effective_days(lam: float = EWMA_LAMBDA) -> float:
    """(1 + λ)/(1 − λ): about 32 days at λ = 0.94 (the label the output must carry)."""
    return (1.0 + lam) / (1.0 - lam)


def ewma_sigma(linear_pnl: np.ndarray, lam: float = EWMA_LAMBDA) -> float:
    """sqrt(e' Σ_EWMA e) computed as sqrt(Σ_j w_j (r_{t0−j}·e)²) from the ascending linear P&L series."""
    x = np.asarray(linear_pnl, dtype=np.float64)
    w = ewma_weights(x.size, lam)[::-1]
    return float(math.sqrt(float(w @ (x * x))))


def ex_ante_pnl(returns: np.ndarray, exposure: np.ndarray, gamma_dollar: np.ndarray) -> np.ndarray:
    """PnL_t = Σ_u e_u r_u,t + ½ Σ_u Γ$_u r_u,t² for each row t of a (T × U) return matrix."""
    r = np.asarray(returns, dtype=np.float64)
    return r @ exposure + 0.5 * ((r * r) @ gamma_dollar)


@dataclass(frozen=True)
class FilledPanel:
    """Underlying returns over the VaR window with missing days proxied by β·r_M.

    `returns` (T × S) has no NaN; `proxied` counts the filled days per symbol; `beta` is the proxy
    beta used and `reason` why (empty for symbols without a missing day).
    """

    returns: np.ndarray
    observed: np.ndarray
    proxied: np.ndarray
    beta: np.ndarray
    reason: np.ndarray


def window_betas(returns: np.ndarray, market: np.ndarray) -> np.ndarray:
    """OLS slope (with intercept) of each column on the market over its own observed days."""
    valid = np.isfinite(returns)
    n = valid.sum(axis=0).astype(np.float64)
    m = np.where(valid, market[:, None], 0.0)
    r = np.where(valid, returns, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_m = m.sum(axis=0) / n
        mean_r = r.sum(axis=0) / n
        dm = np.where(valid, market[:, None] - mean_m, 0.0)
        dr = np.where(valid, returns - mean_r, 0.0)
        sxx = (dm * dm).sum(axis=0)
        beta = np.where(sxx > 0, (dm * dr).sum(axis=0) / sxx, np.nan)
    return beta


def fill_panel(
    returns: np.ndarray,
    market: np.ndarray,
    stored_beta: np.ndarray,
    *,
    min_obs: int = PROXY_MIN_OBS,
    estimated: np.ndarray | None = None,
) -> FilledPanel:
    """Fill missing returns with β·r_M (§8.1): β = 1 for symbols with fewer than `min_obs` returns,
    else the stored factor-model market beta, else (no stored beta) the window OLS beta
    (`estimated`: those betas when already known, else computed here)."""
    r = np.asarray(returns, dtype=np.float64)
    valid = np.isfinite(r)
    observed = valid.sum(axis=0)
    stored = np.asarray(stored_beta, dtype=np.float64)
    if estimated is None:
        estimated = window_betas(r, market)
    has_stored = np.isfinite(stored)
    default = (observed < min_obs) | ~(has_stored | np.isfinite(estimated))
    beta = np.where(default, 1.0, np.where(has_stored, stored, estimated))
    reason = np.where(default, REASON_DEFAULT_BETA, np.where(has_stored, REASON_STORED_BETA, REASON_WINDOW_BETA))
    proxied = r.shape[0] - observed
    reason = np.where(proxied > 0, reason, "")
    filled = np.where(valid, r, beta[None, :] * market[:, None])
    return FilledPanel(returns=filled, observed=observed, proxied=proxied, beta=beta, reason=reason)


@dataclass(frozen=True)
class UnderlyingBook:
    """Today's holdings collapsed to underlyings: e_u = Σ E_i and Γ$_u = Σ Γ_i q_i m_i S_u²."""

    columns: np.ndarray
    exposure: np.ndarray
    gamma_dollar: np.ndarray


def aggregate_underlyings(columns: np.ndarray, exposure: np.ndarray, gamma_dollar: np.ndarray) -> UnderlyingBook:
    """Sum position exposures and dollar gammas per panel column (options join their underlying)."""
    cols = np.asarray(columns, dtype=np.int64)
    unique, inverse = np.unique(cols, return_inverse=True)
    e = np.bincount(inverse, weights=np.asarray(exposure, dtype=np.float64), minlength=unique.size)
    g = np.bincount(inverse, weights=np.nan_to_num(np.asarray(gamma_dollar, dtype=np.float64)), minlength=unique.size)
    return UnderlyingBook(columns=unique, exposure=e, gamma_dollar=g)


@dataclass(frozen=True)
class VarResult:
    """Every VaR figure of one portfolio and date (dollars; None where not computable)."""

    observations: int
    historical: dict[float, TailRisk]
    parametric: dict[float, TailRisk]
    sigma_daily: float | None
    ewma_sigma: float | None
    ewma: dict[float, TailRisk]
    pnl: np.ndarray


def var_metrics(filled_returns: np.ndarray, book: UnderlyingBook, *, min_obs: int = VAR_MIN_OBS) -> VarResult:
    """Historical (delta-gamma series) and parametric (delta-normal) VaR/ES at 95 and 99 %, plus EWMA.

    `filled_returns` is the (T × S) filled panel; `book.columns` select the portfolio's underlyings.
    Below `min_obs` window days nothing is computed (the caller flags `insufficient_history`).
    """
    r = filled_returns[:, book.columns]
    n = int(r.shape[0])
    pnl = ex_ante_pnl(r, book.exposure, book.gamma_dollar)
    if n < min_obs:
        return VarResult(n, {}, {}, None, None, {}, pnl)
    linear = r @ book.exposure
    # e' Σ_R e with Σ_R the sample covariance (ddof 1) equals the sample variance of r·e.
    sigma = float(np.std(linear, ddof=1)) if n > 1 else 0.0
    sigma_ewma = ewma_sigma(linear)
    return VarResult(
        observations=n,
        historical={a: historical_var_es(pnl, a) for a in CONFIDENCES},
        parametric={a: parametric_var_es(sigma, a) for a in CONFIDENCES},
        sigma_daily=sigma,
        ewma_sigma=sigma_ewma,
        ewma={a: parametric_var_es(sigma_ewma, a) for a in CONFIDENCES},
        pnl=pnl,
    )
