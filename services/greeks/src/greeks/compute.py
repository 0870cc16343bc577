"""Black-Scholes-Merton prices, Greeks and implied volatility with the rules of calculations.md §3.

Pure, vectorised numpy/scipy: every function takes column arrays (one element per option contract)
and never loops over options in Python. Units follow §3.1: T in years ACT/365, theta in $ per
calendar day, vega in $ per vol point (σ + 0.01), rho in $ per percentage point of r. Rates,
dividend yields and volatilities are decimal fractions (0.05 = 5 %), continuously compounded.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, NamedTuple

import numpy as np
from scipy.optimize.elementwise import find_root
from scipy.special import ndtr

ENGINE_VERSION = "greeks-bsm-1.0"

DAYS_PER_YEAR = 365.0
DEFAULT_IV = 0.25
DEFAULT_RISK_FREE_RATE = 0.04
IV_MIN, IV_MAX, IV_XTOL = 0.001, 5.0, 1e-8
VENDOR_IV_MIN, VENDOR_IV_MAX = 0.01, 5.0
HV_WINDOW, HV_MIN_OBS, HV_MIN, HV_MAX = 63, 20, 0.05, 3.0
ANNUALIZATION = 252
RATE_MAX_AGE_DAYS = 10
DEGENERATE_SIGMA_SQRT_T = 1e-8
STALE_PRICE_MAX_DAYS = 5
# FRED constant-maturity Treasury nodes of the risk-free curve and their tenors in years.
CURVE_TENORS: dict[str, float] = {"DGS1MO": 1 / 12, "DGS3MO": 0.25, "DGS6MO": 0.5, "DGS1": 1.0, "DGS2": 2.0}

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_CHUNK = 8192  # elements per kernel chunk: keeps the ~10 temporaries inside L2 cache
PARALLEL_MIN = 65_536  # below this a thread pool costs more than it saves

# Status of one option's Greeks (greeks.position_greek.status).
STATUS_OK, STATUS_EXPIRED, STATUS_MISSING, STATUS_ERROR = 0, 1, 2, 3
STATUS_NAMES = ("ok", "expired", "missing_inputs", "error")

# Volatility source (iv_source). `override` exists only for ad hoc requests that pass a volatility.
IV_MARKET, IV_VENDOR, IV_HISTORICAL, IV_DEFAULT, IV_OVERRIDE = 0, 1, 2, 3, 4
IV_SOURCE_NAMES = ("market", "vendor", "historical", "default", "override")
_NO_SOURCE = -1

# Reason codes for rows without Greeks.
REASON_NONE, REASON_UNDERLYING_MISSING, REASON_BAD_UNDERLYING, REASON_BAD_STRIKE, REASON_BAD_INPUT = 0, 1, 2, 3, 4
REASON_NAMES = (None, "underlying_price_missing", "invalid_underlying_price", "invalid_strike", "invalid_input")

# Quality flags, as bits (inputs prepared by the service may carry the first three).
FLAG_UNDERLYING_PRICE_STALE = 1 << 0
FLAG_RATE_DEFAULT = 1 << 1
FLAG_DIVIDEND_UNKNOWN = 1 << 2
FLAG_IV_DEFAULT = 1 << 3
FLAG_IV_MARKET_FAILED = 1 << 4
FLAG_EXPIRED_UNSETTLED = 1 << 5
FLAG_EXPIRY_DAY = 1 << 6
FLAG_ZERO_VOLATILITY = 1 << 7
FLAG_NAMES: tuple[tuple[int, str], ...] = (
    (FLAG_UNDERLYING_PRICE_STALE, "underlying_price_stale"),
    (FLAG_RATE_DEFAULT, "rate_default"),
    (FLAG_DIVIDEND_UNKNOWN, "dividend_unknown"),
    (FLAG_IV_DEFAULT, "iv_default"),
    (FLAG_IV_MARKET_FAILED, "iv_market_solve_failed"),
    (FLAG_EXPIRED_UNSETTLED, "expired_unsettled"),
    (FLAG_EXPIRY_DAY, "expiry_day"),
    (FLAG_ZERO_VOLATILITY, "zero_volatility"),
)


class Greeks(NamedTuple):
    """Per-share model price and Greeks (arrays)."""

    price: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    theta: np.ndarray
    vega: np.ndarray
    rho: np.ndarray


def _f64(x: np.ndarray | float | Iterable[float]) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64)


def _sign(is_call: np.ndarray) -> np.ndarray:
    """+1.0 for calls, −1.0 for puts."""
    return np.where(np.asarray(is_call, dtype=bool), 1.0, -1.0)


def d1_d2(
    S: np.ndarray, K: np.ndarray, T: np.ndarray, r: np.ndarray, q: np.ndarray, sigma: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """d1 and d2 of §3.1 (valid inputs: S, K, σ, T > 0)."""
    vs = sigma * np.sqrt(T)
    d1 = (np.log(S / K) + (r - q + 0.5 * sigma * sigma) * T) / vs
    return d1, d1 - vs


def _kernel(
    S: np.ndarray,
    K: np.ndarray,
    T: np.ndarray,
    r: np.ndarray,
    q: np.ndarray,
    sig: np.ndarray,
    sgn: np.ndarray,
    out: Greeks,
) -> None:
    """BSM price and Greeks into `out` for one chunk; in-place ufuncs keep temporaries few.

    Puts use N(−d1), N(−d2) directly (sign s = −1) rather than parity, so deep out-of-the-money
    puts keep full relative precision.
    """
    price, delta, gamma, theta, vega, rho = out
    sqrt_t = np.sqrt(T)
    vs = np.multiply(sig, sqrt_t)
    d1 = np.divide(S, K)
    np.log(d1, out=d1)
    a = np.multiply(sig, sig)
    a *= 0.5
    a += r
    a -= q
    a *= T
    d1 += a
    d1 /= vs
    d2 = np.subtract(d1, vs, out=a)
    dq = np.multiply(q, T)
    dq *= -1.0
    np.exp(dq, out=dq)  # e^{-qT}
    dr = np.multiply(r, T)
    dr *= -1.0
    np.exp(dr, out=dr)  # e^{-rT}
    sq = np.multiply(S, dq)
    kr = np.multiply(K, dr)
    n1 = np.multiply(sgn, d1)
    ndtr(n1, out=n1)  # N(s·d1)
    n2 = np.multiply(sgn, d2)
    ndtr(n2, out=n2)  # N(s·d2)
    pdf = np.multiply(d1, d1, out=d2)
    pdf *= -0.5
    np.exp(pdf, out=pdf)
    pdf *= _INV_SQRT_2PI  # φ(d1)
    tmp = np.multiply(kr, n2)
    np.multiply(sq, n1, out=price)
    price -= tmp
    price *= sgn
    np.multiply(dq, n1, out=delta)
    delta *= sgn
    np.multiply(dq, pdf, out=gamma)
    np.multiply(S, vs, out=tmp)
    gamma /= tmp
    np.multiply(sq, pdf, out=vega)
    vega *= sqrt_t  # S·e^{-qT}·φ(d1)·√T, per 1.00 of σ
    np.multiply(vega, sig, out=theta)
    theta /= T
    theta *= -0.5  # −S·e^{-qT}·φ(d1)·σ/(2√T)
    np.multiply(r, kr, out=tmp)
    tmp *= n2
    tmp *= sgn
    theta -= tmp
    np.multiply(q, sq, out=tmp)
    tmp *= n1
    tmp *= sgn
    theta += tmp
    theta *= 1.0 / DAYS_PER_YEAR  # per calendar day
    vega *= 0.01  # per vol point
    np.multiply(K, T, out=rho)
    rho *= dr
    rho *= n2
    rho *= sgn
    rho *= 0.01  # per percentage point


def bsm_greeks(
    S: np.ndarray,
    K: np.ndarray,
    T: np.ndarray,
    r: np.ndarray,
    q: np.ndarray,
    sigma: np.ndarray,
    is_call: np.ndarray,
    *,
    workers: int = 1,
) -> Greeks:
    """Closed-form BSM price and Greeks (§3.1) for regular inputs: S, K, σ, T > 0.

    Edge cases (expired, expiry day, σ√T ≈ 0, invalid inputs) are handled by `evaluate`.
    `workers > 1` splits the arrays into chunks computed on threads (numpy releases the GIL).
    """
    arrays = [_f64(v) for v in (S, K, T, r, q, sigma)]
    signs = np.atleast_1d(_sign(is_call))
    n = max(max(a.size for a in arrays), signs.size)
    S_, K_, T_, r_, q_, sig_ = (np.broadcast_to(a, (n,)) if a.size != n else a.reshape(n) for a in arrays)
    sgn = np.broadcast_to(signs, (n,)) if signs.size != n else signs.reshape(n)
    out = Greeks(*(np.empty(n) for _ in range(6)))
    bounds = [(i, min(i + _CHUNK, n)) for i in range(0, n, _CHUNK)]

    def run(bound: tuple[int, int]) -> None:
        s = slice(*bound)
        _kernel(S_[s], K_[s], T_[s], r_[s], q_[s], sig_[s], sgn[s], Greeks(*(o[s] for o in out)))

    with np.errstate(all="ignore"):
        if workers > 1 and len(bounds) > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(run, bounds))
        else:
            for bound in bounds:
                run(bound)
    return out


def bsm_price(
    sigma: np.ndarray, S: np.ndarray, K: np.ndarray, T: np.ndarray, r: np.ndarray, q: np.ndarray, sgn: np.ndarray
) -> np.ndarray:
    """Model price per share only (σ first, for the root finder); `sgn` = +1 call, −1 put."""
    sqrt_t = np.sqrt(T)
    vs = sigma * sqrt_t
    d1 = (np.log(S / K) + (r - q + 0.5 * sigma * sigma) * T) / vs
    d2 = d1 - vs
    return sgn * (S * np.exp(-q * T) * ndtr(sgn * d1) - K * np.exp(-r * T) * ndtr(sgn * d2))


def no_arbitrage_bounds(
    S: np.ndarray, K: np.ndarray, T: np.ndarray, r: np.ndarray, q: np.ndarray, is_call: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) price bounds of §3.2: call max(0, Se^{-qT} − Ke^{-rT}) .. Se^{-qT}; put mirrored."""
    fs = S * np.exp(-q * T)
    fk = K * np.exp(-r * T)
    call = np.asarray(is_call, dtype=bool)
    lower = np.where(call, np.maximum(fs - fk, 0.0), np.maximum(fk - fs, 0.0))
    upper = np.where(call, fs, fk)
    return lower, upper


def implied_volatility(
    price: np.ndarray,
    S: np.ndarray,
    K: np.ndarray,
    T: np.ndarray,
    r: np.ndarray,
    q: np.ndarray,
    is_call: np.ndarray,
) -> np.ndarray:
    """σ ∈ [0.001, 5.0] solving BS(σ) = price (xtol 1e-8, vectorised Chandrupatla bracketing); NaN on failure.

    A solve is attempted only when the price lies strictly inside the no-arbitrage bounds and T > 0;
    a price whose root lies outside the σ bracket fails too (invalid bracket).
    """
    price, S, K, T, r, q = (_f64(v) for v in (price, S, K, T, r, q))
    call = np.asarray(is_call, dtype=bool)
    out = np.full(price.shape, np.nan)
    with np.errstate(all="ignore"):
        lower, upper = no_arbitrage_bounds(S, K, T, r, q, call)
        ok = np.isfinite(price) & (price > lower) & (price < upper) & (T > 0) & (S > 0) & (K > 0)
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            return out
        args = (S[idx], K[idx], T[idx], r[idx], q[idx], _sign(call[idx]), price[idx])

        def objective(
            sig: np.ndarray,
            s: np.ndarray,
            k: np.ndarray,
            t: np.ndarray,
            rr: np.ndarray,
            qq: np.ndarray,
            sg: np.ndarray,
            target: np.ndarray,
        ) -> np.ndarray:
            return bsm_price(sig, s, k, t, rr, qq, sg) - target

        lo = np.full(idx.size, IV_MIN)
        hi = np.full(idx.size, IV_MAX)
        res = find_root(objective, (lo, hi), args=args, tolerances={"xatol": IV_XTOL, "xrtol": 0.0, "fatol": 0.0})
    success = np.asarray(res.success, dtype=bool) & np.isfinite(res.x)
    out[idx[success]] = np.asarray(res.x)[success]
    return out


def curve_nodes(observations: Iterable[tuple[str, date, float]], as_of: date) -> tuple[np.ndarray, np.ndarray]:
    """(tenors, yields) of the risk-free curve: each node's value on `as_of` or the latest within 10 days.

    `observations` are (series_id, observation_date, value as a fraction); unknown series, future
    and older observations are ignored. Loops over the few curve observations, not over options.
    """
    oldest = as_of - timedelta(days=RATE_MAX_AGE_DAYS)
    latest: dict[str, tuple[date, float]] = {}
    for series, day, value in observations:
        if series not in CURVE_TENORS or not (oldest <= day <= as_of) or value is None or not math.isfinite(value):
            continue
        if series not in latest or day > latest[series][0]:
            latest[series] = (day, float(value))
    series_sorted = sorted(latest, key=CURVE_TENORS.__getitem__)
    tenors = np.array([CURVE_TENORS[s] for s in series_sorted], dtype=np.float64)
    yields = np.array([latest[s][1] for s in series_sorted], dtype=np.float64)
    return tenors, yields


def risk_free_rates(T: np.ndarray, tenors: np.ndarray, yields: np.ndarray) -> tuple[np.ndarray, bool]:
    """Continuous r at each T: linear in T between nodes, flat beyond the ends, r = ln(1 + y).

    Without any node every rate is DEFAULT_RISK_FREE_RATE and the second value is True (rate_default).
    """
    T = _f64(T)
    if tenors.size == 0:
        return np.full(T.shape, DEFAULT_RISK_FREE_RATE), True
    return np.log1p(np.interp(T, tenors, yields)), False


def historical_volatility(
    prices: np.ndarray, cur_idx: np.ndarray, prev_idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Annualised realised volatility per row: std(r, ddof=1)·√252, clipped to [0.05, 3.0].

    `prices` is (n_underlyings, n_dates) of adjusted closes with NaN where missing; the return of
    slot j is prices[:, cur_idx[j]] / prices[:, prev_idx[j]] − 1 and exists only when both closes
    exist (no forward fill). Rows with fewer than 20 returns get NaN. Returns (vol, observations).
    """
    prices = np.asarray(prices, dtype=np.float64)
    if prices.ndim != 2 or prices.shape[0] == 0 or len(cur_idx) == 0:
        rows = prices.shape[0] if prices.ndim == 2 else 0
        return np.full(rows, np.nan), np.zeros(rows, dtype=np.int64)
    with np.errstate(all="ignore"):
        rets = prices[:, cur_idx] / prices[:, prev_idx] - 1.0
        valid = np.isfinite(rets)
        nobs = valid.sum(axis=1)
        filled = np.where(valid, rets, 0.0)
        mean = filled.sum(axis=1) / np.maximum(nobs, 1)
        dev = np.where(valid, rets - mean[:, None], 0.0)
        var = (dev * dev).sum(axis=1) / np.maximum(nobs - 1, 1)
        vol = np.sqrt(var) * math.sqrt(ANNUALIZATION)
    vol = np.clip(vol, HV_MIN, HV_MAX)
    vol[nobs < HV_MIN_OBS] = np.nan
    return vol, nobs.astype(np.int64)


@dataclass(frozen=True)
class OptionBatch:
    """Inputs for n option contracts as aligned column arrays (NaN = not available).

    rate and dividend_yield are already resolved per contract (continuous fractions);
    `flags` carries input flags (stale underlying, rate default, dividend unknown).
    """

    spot: np.ndarray
    strike: np.ndarray
    days_to_expiry: np.ndarray
    is_call: np.ndarray
    quantity: np.ndarray
    multiplier: np.ndarray
    rate: np.ndarray
    dividend_yield: np.ndarray
    option_price: np.ndarray
    vendor_iv: np.ndarray
    historical_vol: np.ndarray
    sigma_override: np.ndarray
    flags: np.ndarray

    @classmethod
    def build(cls, n: int, **columns: Any) -> OptionBatch:
        """A batch of n contracts; omitted float columns are NaN, flags 0."""
        defaults: dict[str, Any] = {
            name: np.full(n, np.nan)
            for name in ("option_price", "vendor_iv", "historical_vol", "sigma_override", "rate", "dividend_yield")
        }
        defaults["flags"] = np.zeros(n, dtype=np.int64)
        defaults["multiplier"] = np.full(n, 100.0)
        defaults.update(columns)
        values = {
            k: (
                np.asarray(v, dtype=bool)
                if k == "is_call"
                else np.asarray(v, dtype=np.int64)
                if k == "flags"
                else _f64(v)
            )
            for k, v in defaults.items()
        }
        return cls(**values)

    def __len__(self) -> int:
        return int(self.spot.shape[0])


@dataclass(frozen=True)
class OptionResults:
    """Per-contract outputs of `evaluate` (NaN where a value does not apply)."""

    status: np.ndarray
    reason: np.ndarray
    flags: np.ndarray
    time_to_expiry: np.ndarray
    sigma: np.ndarray
    iv_source: np.ndarray
    per_share: Greeks
    delta: np.ndarray
    gamma: np.ndarray
    theta: np.ndarray
    vega: np.ndarray
    rho: np.ndarray
    dollar_delta: np.ndarray
    dollar_gamma_1pct: np.ndarray


def select_volatility(batch: OptionBatch, T: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """σ per contract by the source order of §3.2 (override → market → vendor → historical → 0.25).

    Returns (sigma, iv_source, flags) — NaN / -1 for contracts that are not `live`.
    """
    n = len(batch)
    override = np.isfinite(batch.sigma_override) & (batch.sigma_override > 0)
    has_price = np.isfinite(batch.option_price) & (batch.option_price > 0)
    try_market = live & ~override & has_price & (T > 0)
    market = np.full(n, np.nan)
    if try_market.any():
        idx = np.flatnonzero(try_market)
        market[idx] = implied_volatility(
            batch.option_price[idx],
            batch.spot[idx],
            batch.strike[idx],
            T[idx],
            batch.rate[idx],
            batch.dividend_yield[idx],
            batch.is_call[idx],
        )
    market_ok = np.isfinite(market)
    vendor_ok = np.isfinite(batch.vendor_iv) & (batch.vendor_iv >= VENDOR_IV_MIN) & (batch.vendor_iv <= VENDOR_IV_MAX)
    hist_ok = np.isfinite(batch.historical_vol) & (batch.historical_vol > 0)
    source = np.select(
        [override, market_ok, vendor_ok, hist_ok],
        [IV_OVERRIDE, IV_MARKET, IV_VENDOR, IV_HISTORICAL],
        default=IV_DEFAULT,
    ).astype(np.int8)
    sigma = np.choose(
        source,
        [market, batch.vendor_iv, batch.historical_vol, np.full(n, DEFAULT_IV), batch.sigma_override],
    ).astype(np.float64)
    flags = np.where(source == IV_DEFAULT, FLAG_IV_DEFAULT, 0) | np.where(
        try_market & ~market_ok, FLAG_IV_MARKET_FAILED, 0
    )
    source = np.where(live, source, _NO_SOURCE).astype(np.int8)
    sigma = np.where(live, sigma, np.nan)
    flags = np.where(live, flags, 0).astype(np.int64)
    return sigma, source, flags


def evaluate(batch: OptionBatch, *, workers: int = 1) -> OptionResults:
    """Greeks for every contract of `batch` with the edge cases of §3.6 and scaling of §3.3.

    Order per contract: T < 0 → expired (zero Greeks, intrinsic price); no underlying price →
    missing_inputs; S ≤ 0 or K ≤ 0 (or other non-finite inputs) → error (NULL Greeks); otherwise
    ok: T = 0 or σ√T < 1e-8 use the intrinsic rule on forward moneyness, else the closed form.
    `workers` threads are used for the closed form on batches of at least PARALLEL_MIN contracts.
    """
    n = len(batch)
    S, K = batch.spot, batch.strike
    days = batch.days_to_expiry
    T = days / DAYS_PER_YEAR
    status = np.full(n, STATUS_OK, dtype=np.int8)
    reason = np.zeros(n, dtype=np.int8)
    with np.errstate(all="ignore"):
        expired = days < 0
        missing = ~expired & ~np.isfinite(S)
        bad_s = ~expired & ~missing & ~(S > 0)
        bad_k = ~expired & ~missing & ~bad_s & ~(np.isfinite(K) & (K > 0))
        bad_other = (
            ~expired
            & ~missing
            & ~bad_s
            & ~bad_k
            & ~(
                np.isfinite(S)
                & np.isfinite(days)
                & np.isfinite(batch.rate)
                & np.isfinite(batch.dividend_yield)
                & np.isfinite(batch.quantity)
                & np.isfinite(batch.multiplier)
            )
        )
    status[expired] = STATUS_EXPIRED
    status[missing] = STATUS_MISSING
    reason[missing] = REASON_UNDERLYING_MISSING
    status[bad_s | bad_k | bad_other] = STATUS_ERROR
    reason[bad_s] = REASON_BAD_UNDERLYING
    reason[bad_k] = REASON_BAD_STRIKE
    reason[bad_other] = REASON_BAD_INPUT
    live = status == STATUS_OK

    sigma, iv_source, iv_flags = select_volatility(batch, T, live)
    flags = batch.flags.astype(np.int64) | iv_flags
    flags |= np.where(expired, FLAG_EXPIRED_UNSETTLED, 0)

    price, delta, gamma, theta, vega, rho = (np.full(n, np.nan) for _ in range(6))
    with np.errstate(all="ignore"):
        sig_sqrt_t = sigma * np.sqrt(np.where(T > 0, T, 0.0))
    regular = live & (T > 0) & (sig_sqrt_t >= DEGENERATE_SIGMA_SQRT_T)
    degenerate = live & ~regular
    if regular.any():
        idx = np.flatnonzero(regular)
        g = bsm_greeks(
            S[idx],
            K[idx],
            T[idx],
            batch.rate[idx],
            batch.dividend_yield[idx],
            sigma[idx],
            batch.is_call[idx],
            workers=workers if idx.size >= PARALLEL_MIN else 1,
        )
        for target, values in zip((price, delta, gamma, theta, vega, rho), g, strict=True):
            target[idx] = values
    if degenerate.any():
        idx = np.flatnonzero(degenerate)
        t = T[idx]
        dq = np.exp(-batch.dividend_yield[idx] * t)
        fs = S[idx] * dq  # forward moneyness S·e^{-qT} vs K·e^{-rT} (= S vs K on expiry day)
        fk = K[idx] * np.exp(-batch.rate[idx] * t)
        sgn = _sign(batch.is_call[idx])
        moneyness = sgn * (fs - fk)
        price[idx] = np.maximum(moneyness, 0.0)
        itm = np.where(moneyness > 0, 1.0, np.where(moneyness == 0, 0.5, 0.0))
        delta[idx] = sgn * dq * itm + 0.0  # + 0.0 turns −0.0 into 0.0
        gamma[idx] = theta[idx] = vega[idx] = rho[idx] = 0.0
        # On expiry day σ plays no part: the source is still recorded but not flagged as a default.
        flags[idx] = np.where(
            t == 0, (flags[idx] & ~FLAG_IV_DEFAULT) | FLAG_EXPIRY_DAY, flags[idx] | FLAG_ZERO_VOLATILITY
        )
    if expired.any():
        idx = np.flatnonzero(expired)
        with np.errstate(invalid="ignore"):
            price[idx] = np.maximum(_sign(batch.is_call[idx]) * (S[idx] - K[idx]), 0.0)
        delta[idx] = gamma[idx] = theta[idx] = vega[idx] = rho[idx] = 0.0

    qm = batch.quantity * batch.multiplier
    pos = [g * qm + 0.0 for g in (delta, gamma, theta, vega, rho)]  # + 0.0: no −0.0 for short zeros
    with np.errstate(invalid="ignore"):
        # Zero Greeks give zero dollar Greeks even when S is unknown (expired without a price).
        dollar_delta = np.where(pos[0] == 0, 0.0, pos[0] * S)
        dollar_gamma = np.where(pos[1] == 0, 0.0, pos[1] * S * S / 100.0)
    return OptionResults(
        status=status,
        reason=reason,
        flags=flags,
        time_to_expiry=T,
        sigma=sigma,
        iv_source=iv_source,
        per_share=Greeks(price, delta, gamma, theta, vega, rho),
        delta=pos[0],
        gamma=pos[1],
        theta=pos[2],
        vega=pos[3],
        rho=pos[4],
        dollar_delta=dollar_delta,
        dollar_gamma_1pct=dollar_gamma,
    )


def flag_names(bits: int) -> list[str]:
    """Flag bitmask → names (for one stored row)."""
    return [name for bit, name in FLAG_NAMES if bits & bit]


def default_workers() -> int:
    """Threads for large batches (the kernel releases the GIL)."""
    return max(1, min(4, os.cpu_count() or 1))
