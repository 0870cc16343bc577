"""The offline deterministic market of demo.md §7 (pure: no I/O, no clock, no global randomness).

Every series ends on the fixture end date at the exact demo close and reaches
`FIXTURE_HISTORY_DAYS` NYSE sessions back (≥ 3 years). Daily returns are

    r[s,t] = beta[s]·m[t] + Σ_k L[s,k]·f[k,t] + rate[s]·Δy10[t] + idio[s]·ε[s,t]

with a common market return `m`, five latent style factors (growth-minus-value, momentum,
quality, size, low volatility), the fixture 10-year yield change and per-symbol noise. Each
random stream is seeded from a SHA-256 of its name (never Python's `hash()`), so the same end
date gives byte-identical output in every process. Prices are built backwards from the final
close, so the last close is exact. VIX and the option contracts are mean-reverting log levels
driven by their underlying, anchored the same way; options also carry a vendor implied
volatility per day. Rates (fractions) move a few basis points a day and have no observation on
bond-market holidays (Columbus Day, Veterans Day) even when NYSE trades.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import numpy as np

from marketdata import calendar
from marketdata.demo_securities import LISTED, OPTIONS, RATE_FINAL, STYLE_KEYS, VIX, DemoSecurity

FIXTURE_VERSION = "v1"
FIXTURE_HISTORY_DAYS = 1260  # sessions (≈ 5 years: the #72 maximum range)

MARKET_VOL, MARKET_DRIFT = 0.0105, 0.0004
STYLE_VOL = {"gv": 0.005, "mom": 0.006, "qual": 0.003, "size": 0.006, "lowvol": 0.004}
VIX_KAPPA, VIX_NOISE = 0.03, 0.04
OPTION_KAPPA, OPTION_NOISE = 0.02, 0.02
RATE_KAPPA, RATE_SHOCK, RATE_OWN = 0.01, 0.0004, 0.00015
# Loadings of each series on the level and slope of the fixture curve.
RATE_LOADINGS = {
    "DGS1MO": (0.6, -0.6),
    "DGS3MO": (0.65, -0.5),
    "DGS6MO": (0.7, -0.4),
    "DGS1": (0.8, -0.2),
    "DGS2": (0.9, 0.0),
    "DGS10": (1.0, 0.6),
}


def stable_seed(key: str) -> int:
    """A 64-bit seed from a SHA-256 of `key` (identical across processes and platforms)."""
    digest = hashlib.sha256(f"sigmasight-fixture-{FIXTURE_VERSION}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _rng(key: str) -> np.random.Generator:
    return np.random.default_rng(stable_seed(key))


def _ou(shocks: np.ndarray, kappa: float) -> np.ndarray:
    """Mean-reverting path d[t] = (1-κ)·d[t-1] + shock[t] along axis 0 (starts at 0)."""
    out = np.empty_like(shocks)
    level = np.zeros(shocks.shape[1:], dtype=float)
    keep = 1.0 - kappa
    for t in range(shocks.shape[0]):
        level = keep * level + shocks[t]
        out[t] = level
    return out


def _round2(values: np.ndarray) -> np.ndarray:
    return np.round(values, 2)


def _anchor_backwards(returns: np.ndarray, final: np.ndarray) -> np.ndarray:
    """Closes whose simple returns are `returns` (row t = return into day t) ending at `final`."""
    log_growth = np.cumsum(np.log1p(returns[1:]), axis=0)  # growth from day 0 to day t (t ≥ 1)
    total = log_growth[-1]
    rel = np.vstack([-total[None, :], log_growth - total[None, :]])
    return final[None, :] * np.exp(rel)


@dataclass(frozen=True)
class FixtureSeries:
    """One symbol's daily bars as arrays aligned with `FixtureMarket.dates`."""

    symbol: str
    open: np.ndarray | None
    high: np.ndarray | None
    low: np.ndarray | None
    close: np.ndarray
    volume: np.ndarray | None
    implied_volatility: np.ndarray | None


@dataclass(frozen=True)
class FixtureMarket:
    """The whole fixture market for one end date."""

    end_date: date
    dates: tuple[date, ...]
    series: dict[str, FixtureSeries]
    rates: dict[str, np.ndarray]  # value per session, NaN on bond-market holidays

    def window(self, start: date, end: date) -> tuple[int, int]:
        """Index range [lo, hi) of sessions within [start, end]."""
        arr = np.array([d.toordinal() for d in self.dates])
        lo = int(np.searchsorted(arr, start.toordinal(), side="left"))
        hi = int(np.searchsorted(arr, end.toordinal(), side="right"))
        return lo, hi


def bond_market_holidays(start: date, end: date) -> set[date]:
    """Weekdays the US bond market closes while NYSE trades: Columbus Day and Veterans Day (observed)."""
    out: set[date] = set()
    for year in range(start.year, end.year + 1):
        october_first = date(year, 10, 1)
        first_monday = october_first + timedelta(days=(0 - october_first.weekday()) % 7)
        out.add(first_monday + timedelta(days=7))
        veterans = date(year, 11, 11)
        if veterans.weekday() == 5:
            veterans -= timedelta(days=1)
        elif veterans.weekday() == 6:
            veterans += timedelta(days=1)
        out.add(veterans)
    return {d for d in out if start <= d <= end}


def _sessions(end_date: date) -> list[date]:
    if not calendar.is_trading_day(end_date):
        raise ValueError(f"fixture end date {end_date.isoformat()} is not an NYSE trading day")
    earliest = max(calendar.CALENDAR_START, end_date - timedelta(days=FIXTURE_HISTORY_DAYS * 2))
    days = calendar.trading_days(earliest, end_date)
    return days[-FIXTURE_HISTORY_DAYS:]


def _rates(n: int, dates: list[date]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Rate levels per session (NaN on bond holidays) and the latent daily 10-year yield change."""
    rng = _rng("rates")
    level = _ou(rng.standard_normal((n, 1)) * RATE_SHOCK, RATE_KAPPA)[:, 0]
    slope = _ou(rng.standard_normal((n, 1)) * RATE_SHOCK * 0.6, RATE_KAPPA)[:, 0]
    closed = bond_market_holidays(dates[0], dates[-1])
    mask = np.array([d in closed for d in dates])
    out: dict[str, np.ndarray] = {}
    latent10 = np.zeros(n)
    for series_id, final in RATE_FINAL.items():
        a, b = RATE_LOADINGS[series_id]
        own = _ou(_rng(f"rate:{series_id}").standard_normal((n, 1)) * RATE_OWN, 0.05)[:, 0]
        path = a * level + b * slope + own
        values = final + (path - path[-1])
        if series_id == "DGS10":
            latent10 = values.copy()
        values = np.clip(np.round(values, 4), 0.0005, 0.2)
        values[mask] = np.nan
        out[series_id] = values
    dy = np.concatenate([[0.0], np.diff(latent10)])
    return out, dy


def _ohlcv(
    sec_key: str, close: np.ndarray, sigma: np.ndarray, volume_base: np.ndarray | None, returns: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Plausible open/high/low (and volume) around given closes; all streams seeded per symbol."""
    n, k = close.shape
    gaps = np.empty((n, k))
    wick_hi = np.empty((n, k))
    wick_lo = np.empty((n, k))
    vol_noise = np.empty((n, k))
    for j, key in enumerate(sec_key.split("|")):
        rng = _rng(f"ohlc:{key}")
        gaps[:, j] = rng.standard_normal(n)
        wick_hi[:, j] = np.abs(rng.standard_normal(n))
        wick_lo[:, j] = np.abs(rng.standard_normal(n))
        vol_noise[:, j] = rng.standard_normal(n)
    prev_close = np.vstack([close[:1] / (1.0 + returns[:1]), close[:-1]])
    open_ = prev_close * (1.0 + 0.3 * sigma[None, :] * gaps)
    top = np.maximum(open_, close)
    bottom = np.minimum(open_, close)
    high = top * (1.0 + 0.5 * sigma[None, :] * wick_hi)
    low = bottom * (1.0 - np.minimum(0.5 * sigma[None, :] * wick_lo, 0.5))
    open_r, high_r, low_r = _round2(open_), _round2(high), _round2(low)
    close_r = _round2(close)
    high_r = np.maximum(high_r, np.maximum(open_r, close_r))
    low_r = np.maximum(np.minimum(low_r, np.minimum(open_r, close_r)), 0.01)
    volume = None
    if volume_base is not None:
        scale = np.exp(0.3 * vol_noise) * (1.0 + 8.0 * np.abs(returns))
        volume = np.maximum(np.round(volume_base[None, :] * scale), 1.0)
    return open_r, high_r, low_r, volume


def generate_market(end_date: date) -> FixtureMarket:
    """Generate the fixture market ending on `end_date` (a trading day). Pure and deterministic."""
    dates = _sessions(end_date)
    n = len(dates)
    rates, dy10 = _rates(n, dates)

    market = MARKET_DRIFT + MARKET_VOL * _rng("market").standard_normal(n)
    styles = np.column_stack([STYLE_VOL[k] * _rng(f"style:{k}").standard_normal(n) for k in STYLE_KEYS])

    listed: list[DemoSecurity] = list(LISTED.values())
    symbols = [s.symbol for s in listed]
    beta = np.array([s.beta for s in listed])
    load = np.array([[s.styles.get(k, 0.0) for k in STYLE_KEYS] for s in listed])
    rate_beta = np.array([s.rate for s in listed])
    idio = np.array([s.idio for s in listed])
    eps = np.column_stack([_rng(f"symbol:{s}").standard_normal(n) for s in symbols])
    returns = (
        market[:, None] * beta[None, :] + styles @ load.T + dy10[:, None] * rate_beta[None, :] + eps * idio[None, :]
    )
    returns = np.clip(returns, -0.3, 0.3)
    finals = np.array([float(s.close) for s in listed])
    closes = _anchor_backwards(returns, finals)
    sigma = np.sqrt(beta**2 * MARKET_VOL**2 + (load**2) @ np.array([STYLE_VOL[k] ** 2 for k in STYLE_KEYS]) + idio**2)
    vol_base = np.array([s.volume or 0.0 for s in listed])
    opens, highs, lows, volumes = _ohlcv("|".join(symbols), closes, sigma, vol_base, returns)

    series: dict[str, FixtureSeries] = {}
    for j, sec in enumerate(listed):
        close = _round2(closes[:, j])
        if sec.security_type == "mutual_fund":
            series[sec.symbol] = FixtureSeries(sec.symbol, close, close, close, close, None, None)
            continue
        volume = volumes[:, j].astype(np.int64) if volumes is not None and sec.volume else None
        series[sec.symbol] = FixtureSeries(sec.symbol, opens[:, j], highs[:, j], lows[:, j], close, volume, None)

    # VIX: log level = μ + d, d mean-reverting and driven against the market; anchored at the final close.
    vix_shock = VIX.beta * (market - MARKET_DRIFT) + VIX_NOISE * _rng("symbol:VIX").standard_normal(n)
    vix_dev = _ou(vix_shock[:, None], VIX_KAPPA)[:, 0]
    vix_close = float(VIX.close) * np.exp(vix_dev - vix_dev[-1])
    vix_ret = np.concatenate([[0.0], np.diff(np.log(vix_close))])
    v_open, v_high, v_low, _ = _ohlcv("VIX", vix_close[:, None], np.array([0.06]), None, vix_ret[:, None])
    series["VIX"] = FixtureSeries("VIX", v_open[:, 0], v_high[:, 0], v_low[:, 0], _round2(vix_close), None, None)

    # Options: mean-reverting log price driven by the underlying's return (elasticity), anchored at the close.
    index = {s: j for j, s in enumerate(symbols)}
    under_ret = np.column_stack(
        [vix_ret if o.underlying == "VIX" else returns[:, index[o.underlying]] for o in OPTIONS]
    )
    elasticity = np.array([o.elasticity for o in OPTIONS])
    noise = np.column_stack([_rng(f"option:{o.symbol}").standard_normal(n) for o in OPTIONS])
    dev = _ou(under_ret * elasticity[None, :] + OPTION_NOISE * noise, OPTION_KAPPA)
    opt_finals = np.array([float(o.close) for o in OPTIONS])
    opt_close = opt_finals[None, :] * np.exp(dev - dev[-1][None, :])
    opt_ret = np.vstack([np.zeros((1, len(OPTIONS))), np.diff(np.log(opt_close), axis=0)])
    opt_sigma = np.abs(elasticity) * 0.012 + OPTION_NOISE
    o_open, o_high, o_low, o_volume = _ohlcv(
        "|".join(o.symbol for o in OPTIONS), opt_close, opt_sigma, np.full(len(OPTIONS), 1500.0), opt_ret
    )
    iv_noise = _ou(np.column_stack([_rng(f"iv:{o.symbol}").standard_normal(n) for o in OPTIONS]) * 0.01, 0.05)
    base_iv = np.array([o.base_iv for o in OPTIONS])
    vix_mean_dev = vix_dev - vix_dev.mean()
    ivs = np.clip(np.round(base_iv[None, :] * np.exp(0.5 * vix_mean_dev[:, None] + iv_noise), 4), 0.05, 3.0)
    for j, opt in enumerate(OPTIONS):
        series[opt.symbol] = FixtureSeries(
            opt.symbol,
            np.maximum(o_open[:, j], 0.01),
            np.maximum(o_high[:, j], 0.01),
            np.maximum(o_low[:, j], 0.01),
            np.maximum(_round2(opt_close[:, j]), 0.01),
            o_volume[:, j].astype(np.int64) if o_volume is not None else None,
            ivs[:, j],
        )
    return FixtureMarket(end_date=end_date, dates=tuple(dates), series=series, rates=rates)


@functools.lru_cache(maxsize=4)
def market_for(end_date: date) -> FixtureMarket:
    """The fixture market for `end_date`, generated once per process."""
    return generate_market(end_date)


def _dec(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


def bars_as_tuples(
    fm: FixtureMarket, symbol: str, start: date, end: date
) -> list[tuple[date, Decimal, Decimal | None, Decimal | None, Decimal | None, int | None, float | None]]:
    """(date, close, open, high, low, volume, iv) for `symbol` in [start, end]; empty when unknown."""
    s = fm.series.get(symbol)
    if s is None:
        return []
    lo, hi = fm.window(start, end)
    out = []
    for i in range(lo, hi):
        out.append(
            (
                fm.dates[i],
                _dec(float(s.close[i])),
                None if s.open is None else _dec(float(s.open[i])),
                None if s.high is None else _dec(float(s.high[i])),
                None if s.low is None else _dec(float(s.low[i])),
                None if s.volume is None else int(s.volume[i]),
                None if s.implied_volatility is None else float(s.implied_volatility[i]),
            )
        )
    return out
