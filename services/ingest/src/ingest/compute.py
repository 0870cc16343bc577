"""Position valuation, daily P&L, exposures and aggregation (calculations.md §1-§2). Pure numpy.

Money is exact: quantities and prices arrive as integers scaled by 10^4 (their NUMERIC(18,4)
storage), so `q·m·P` is an exact integer in units of 10^-8 USD, rounded half-even to cents once.
Only the option exposure `q·m·Δ·S` involves a float (the model delta); it is rounded half-even to
cents from float64. Every function takes its dates explicitly and never reads the clock.

Missing values use the sentinel `NA` (int arrays) or NaN (float arrays); reasons are bit flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
D64 = npt.NDArray[np.datetime64]

SCALE = 10_000  # quantities and prices: 4 dp
TO_CENTS = 1_000_000  # (qty 1e-4) × (price 1e-4) = 1e-8 USD; cents = 1e-2 USD
NA = np.iinfo(np.int64).min
_SAFE = float(2**62)

# price_source codes (position.price_source): 0 = unpriced
SOURCE_NONE, SOURCE_CLOSE, SOURCE_STALE, SOURCE_MODEL = 0, 1, 2, 3
SOURCE_NAMES = {SOURCE_CLOSE: "close", SOURCE_STALE: "stale", SOURCE_MODEL: "model"}

# Reason flags (calculations.md §0.5: a value that could not be computed is NULL with a reason).
FLAG_UNPRICED = 1
FLAG_PRICE_STALE = 2
FLAG_MODEL_PRICE = 4
FLAG_PREV_PRICE_MISSING = 8
FLAG_NO_DELTA = 16
FLAG_NO_UNDERLYING_PRICE = 32
FLAG_EXPIRED_UNSETTLED = 64
FLAG_EXPIRY_INTRINSIC = 128
FLAG_NAMES = {
    FLAG_UNPRICED: "unpriced",
    FLAG_PRICE_STALE: "price_stale",
    FLAG_MODEL_PRICE: "model_price",
    FLAG_PREV_PRICE_MISSING: "prev_price_missing",
    FLAG_NO_DELTA: "no_delta",
    FLAG_NO_UNDERLYING_PRICE: "no_underlying_price",
    FLAG_EXPIRED_UNSETTLED: "expired_unsettled",
    FLAG_EXPIRY_INTRINSIC: "expiry_intrinsic",
}


def flag_names(bits: int) -> list[str]:
    """Names of the flags set in `bits`."""
    return [name for bit, name in FLAG_NAMES.items() if bits & bit]


def div_half_even(x: I64, d: int) -> I64:
    """x / d rounded half-even, elementwise, exact on int64."""
    quo, rem = np.divmod(x, d)
    twice = 2 * rem
    up = (twice > d) | ((twice == d) & (quo % 2 == 1))
    return (quo + up).astype(np.int64)


def _exact_cents(a: I64, b: I64, c: I64, valid: B) -> I64:
    """round_half_even(a·b·c / 10^6) on int64 where `valid`, NA elsewhere (big rows via Python ints)."""
    out = np.full(a.shape, NA, dtype=np.int64)
    approx = np.abs(a.astype(np.float64) * b.astype(np.float64) * c.astype(np.float64))
    fast = valid & (approx < _SAFE)
    if fast.any():
        out[fast] = div_half_even(a[fast] * b[fast] * c[fast], TO_CENTS)
    for i in np.flatnonzero(valid & ~fast):  # only rows beyond 2^62 × 1e-8 USD (≈ $46 bn)
        quo, rem = divmod(int(a[i]) * int(b[i]) * int(c[i]), TO_CENTS)
        out[i] = quo + (1 if 2 * rem > TO_CENTS or (2 * rem == TO_CENTS and quo % 2) else 0)
    return out


def float_cents(x: F64) -> I64:
    """USD float64 → cents, half-even; NaN → NA."""
    out = np.full(x.shape, NA, dtype=np.int64)
    ok = np.isfinite(x)
    out[ok] = np.rint(x[ok] * 100.0).astype(np.int64)
    return out


@dataclass(frozen=True)
class ValuationInput:
    """Everything needed to value n positions at `as_of` (arrays aligned by position)."""

    as_of: date
    prev_date: date
    quantity: I64  # signed, × 10^4
    multiplier: I64
    is_option: B
    is_call: B
    strike: I64  # × 10^4; 0 for stocks
    expiry: D64  # datetime64[D]; NaT for stocks
    entry_price: I64  # × 10^4
    entry_date: D64
    cost_basis: I64  # cents (stored, generated column)
    close_t: I64  # latest close ≤ as_of inside the stale window, × 10^4; NA when none
    close_t_date: D64  # its date; NaT when none
    close_p: I64  # latest close ≤ prev_date inside its stale window, × 10^4; NA when none
    close_p_date: D64
    model_t: F64  # option model price per share at as_of (greeks); NaN when none
    model_p: F64  # option model price per share at prev_date; NaN when none
    underlying_t: I64  # underlying close for options (stocks: ignored), × 10^4; NA when none
    delta_ps: F64  # per-share delta at as_of (greeks); NaN when none


@dataclass(frozen=True)
class ValuationResult:
    """Per-position outputs of §1.7 and §2.2 (cents / × 10^4 ints, NA = NULL)."""

    last_price: I64
    price_date: D64
    price_source: npt.NDArray[np.int8]
    underlying_price: I64
    market_value: I64
    dollar_exposure: I64
    notional: I64
    unrealized_pnl: I64
    daily_pnl: I64
    delta: F64  # per-share delta actually used (NaN when none)
    flags: npt.NDArray[np.int32]

    @property
    def n(self) -> int:
        return int(self.market_value.shape[0])

    @property
    def priced(self) -> B:
        return self.market_value != NA


def value_positions(inp: ValuationInput) -> ValuationResult:
    """Value every position in one vectorised pass (calculations.md §1.1-§1.3, §1.5, §2.2)."""
    n = inp.quantity.shape[0]
    t = np.datetime64(inp.as_of, "D")
    p = np.datetime64(inp.prev_date, "D")
    q, m = inp.quantity, inp.multiplier
    flags = np.zeros(n, dtype=np.int32)

    # Underlying price S: stocks use their own price (set below); options their underlying's close.
    has_s = inp.is_option & (inp.underlying_t != NA)

    # §1.2 hierarchy: close on t → close within the stale window → option model price → unpriced.
    has_close = inp.close_t != NA
    on_day = has_close & (inp.close_t_date == t)
    stale = has_close & ~on_day
    model_ok = inp.is_option & ~has_close & np.isfinite(inp.model_t)
    price = np.where(has_close, inp.close_t, NA)
    price_date = np.where(has_close, inp.close_t_date, np.datetime64("NaT", "D"))
    source = np.zeros(n, dtype=np.int8)
    source[on_day] = SOURCE_CLOSE
    source[stale] = SOURCE_STALE
    flags[stale] |= FLAG_PRICE_STALE
    if model_ok.any():
        price[model_ok] = np.rint(inp.model_t[model_ok] * SCALE).astype(np.int64)
        price_date[model_ok] = t
        source[model_ok] = SOURCE_MODEL
        flags[model_ok] |= FLAG_MODEL_PRICE

    # §1.5: an option expiring on or before t is valued at intrinsic value max(±(S − K), 0).
    expired = inp.is_option & (inp.expiry <= t)
    flags[inp.is_option & (inp.expiry < t)] |= FLAG_EXPIRED_UNSETTLED
    flags[inp.is_option & (inp.expiry == t)] |= FLAG_EXPIRY_INTRINSIC
    intrinsic_ok = expired & has_s
    if intrinsic_ok.any():
        s, k = inp.underlying_t[intrinsic_ok], inp.strike[intrinsic_ok]
        price[intrinsic_ok] = np.where(inp.is_call[intrinsic_ok], np.maximum(s - k, 0), np.maximum(k - s, 0))
        price_date[intrinsic_ok] = t
        source[intrinsic_ok] = SOURCE_MODEL
    unpriced_expired = expired & ~has_s
    price[unpriced_expired] = NA
    price_date[unpriced_expired] = np.datetime64("NaT", "D")
    source[unpriced_expired] = SOURCE_NONE

    priced = price != NA
    flags[~priced] |= FLAG_UNPRICED
    source[~priced] = SOURCE_NONE

    # §1.1 market value (signed), unrealized P&L against the stored cost basis.
    mv = _exact_cents(q, m, price, priced)
    unrealized = np.where(priced, mv - inp.cost_basis, NA)

    # §2.2 notional (unsigned) and exposure (signed, delta-adjusted).
    underlying = np.where(inp.is_option, np.where(has_s, inp.underlying_t, NA), price)
    stock = ~inp.is_option
    notional = np.full(n, NA, dtype=np.int64)
    notional[stock & priced] = np.abs(mv[stock & priced])
    opt_notional = inp.is_option & priced & has_s
    notional[opt_notional] = _exact_cents(np.abs(q), m, inp.underlying_t, opt_notional)[opt_notional]
    flags[inp.is_option & priced & ~has_s] |= FLAG_NO_UNDERLYING_PRICE

    delta = np.where(stock, 1.0, np.where(expired & (inp.expiry < t), 0.0, inp.delta_ps))
    exposure = np.full(n, NA, dtype=np.int64)
    exposure[stock & priced] = mv[stock & priced]
    opt_exp = inp.is_option & priced & has_s & np.isfinite(delta)
    if opt_exp.any():
        dollars = (
            q[opt_exp].astype(np.float64)
            / SCALE
            * m[opt_exp]
            * delta[opt_exp]
            * (inp.underlying_t[opt_exp].astype(np.float64) / SCALE)
        )
        exposure[opt_exp] = float_cents(dollars)
    flags[inp.is_option & priced & ~np.isfinite(delta)] |= FLAG_NO_DELTA

    # §1.3 daily P&L: opened after prev(t) → vs entry price; held through both closes → vs P_p.
    opened = inp.entry_date > p
    prev_price = np.where(inp.close_p != NA, inp.close_p, NA)
    prev_model = inp.is_option & (inp.close_p == NA) & np.isfinite(inp.model_p)
    if prev_model.any():
        prev_price[prev_model] = np.rint(inp.model_p[prev_model] * SCALE).astype(np.int64)
    reference = np.where(opened, inp.entry_price, prev_price)
    has_ref = reference != NA
    flags[priced & ~opened & ~has_ref] |= FLAG_PREV_PRICE_MISSING
    pnl_ok = priced & has_ref
    move = np.where(pnl_ok, price - reference, 0)
    daily = _exact_cents(q, m, move, pnl_ok)

    return ValuationResult(
        last_price=np.where(priced, price, NA),
        price_date=price_date,
        price_source=source,
        underlying_price=np.where(inp.is_option & has_s, underlying, NA),
        market_value=mv,
        dollar_exposure=exposure,
        notional=notional,
        unrealized_pnl=unrealized,
        daily_pnl=daily,
        delta=np.where(priced, delta, np.nan),
        flags=flags,
    )


# ---------------------------------------------------------------------------------------------
# Aggregation (§2.3) and groupings (§2.4)
# ---------------------------------------------------------------------------------------------

SUM_FIELDS = (
    "long_mv",
    "short_mv",
    "gross_mv",
    "net_mv",
    "long_exposure",
    "short_exposure",
    "gross_exposure",
    "net_exposure",
    "notional",
    "unrealized_pnl",
    "daily_pnl",
)
GREEK_FIELDS = ("dollar_gamma_1pct", "theta", "vega", "rho")


@dataclass(frozen=True)
class Book:
    """Stored per-position values (cents, NA = NULL) and dollar Greeks (float, NaN = none)."""

    market_value: I64
    dollar_exposure: I64
    notional: I64
    unrealized_pnl: I64
    daily_pnl: I64
    quantity_sign: npt.NDArray[np.int8]
    is_option: B
    dollar_gamma_1pct: F64
    theta: F64
    vega: F64
    rho: F64

    @property
    def n(self) -> int:
        return int(self.market_value.shape[0])


@dataclass(frozen=True)
class GroupSums:
    """Per-group sums; money in cents (int64), Greeks float, counts int."""

    count: I64
    sums: dict[str, I64]
    greeks: dict[str, F64]
    options_without_delta: I64
    unpriced: I64


def _add(members: I64, groups: I64, values: I64, n_groups: int) -> I64:
    out = np.zeros(n_groups, dtype=np.int64)
    ok = values[members] != NA
    np.add.at(out, groups[ok], values[members][ok])
    return out


def _addf(members: I64, groups: I64, values: F64, n_groups: int) -> F64:
    out = np.zeros(n_groups, dtype=np.float64)
    vals = values[members]
    ok = np.isfinite(vals)
    np.add.at(out, groups[ok], vals[ok])
    return out


def group_sums(book: Book, members: I64, groups: I64, n_groups: int) -> GroupSums:
    """Sums of §2.3 per group; `members[k]` (a position index) belongs to `groups[k]`.

    A partition passes each position once; overlapping groupings (tags) pass a position once
    per group. NULL values are skipped (unpriced positions, options without a delta).
    """
    mv, ex = book.market_value, book.dollar_exposure
    pos_mv = np.where((mv != NA) & (mv > 0), mv, 0)
    neg_mv = np.where((mv != NA) & (mv < 0), mv, 0)
    abs_mv = np.where(mv != NA, np.abs(mv), NA)
    pos_ex = np.where((ex != NA) & (ex > 0), ex, 0)
    neg_ex = np.where((ex != NA) & (ex < 0), ex, 0)
    abs_ex = np.where(ex != NA, np.abs(ex), NA)
    sums = {
        "long_mv": _add(members, groups, pos_mv, n_groups),
        "short_mv": _add(members, groups, neg_mv, n_groups),
        "gross_mv": _add(members, groups, abs_mv, n_groups),
        "net_mv": _add(members, groups, mv, n_groups),
        "long_exposure": _add(members, groups, pos_ex, n_groups),
        "short_exposure": _add(members, groups, neg_ex, n_groups),
        "gross_exposure": _add(members, groups, abs_ex, n_groups),
        "net_exposure": _add(members, groups, ex, n_groups),
        "notional": _add(members, groups, book.notional, n_groups),
        "unrealized_pnl": _add(members, groups, book.unrealized_pnl, n_groups),
        "daily_pnl": _add(members, groups, book.daily_pnl, n_groups),
    }
    greeks = {name: _addf(members, groups, getattr(book, name), n_groups) for name in GREEK_FIELDS}
    count = np.bincount(groups, minlength=n_groups).astype(np.int64)
    no_delta = (book.is_option & (mv != NA) & (ex == NA)).astype(np.int64)
    unpriced = (mv == NA).astype(np.int64)
    return GroupSums(
        count=count,
        sums=sums,
        greeks=greeks,
        options_without_delta=_add(members, groups, no_delta, n_groups),
        unpriced=_add(members, groups, unpriced, n_groups),
    )


def portfolio_sums(book: Book) -> GroupSums:
    """The whole book as one group."""
    idx = np.arange(book.n, dtype=np.int64)
    return group_sums(book, idx, np.zeros(book.n, dtype=np.int64), 1)


def ratio(numerator: float | int | None, denominator: float | int | None) -> float | None:
    """numerator / denominator; None when undefined (denominator ≤ 0 or missing, §0.5)."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return float(numerator) / float(denominator)


@dataclass(frozen=True)
class Ratios:
    """§2.3 ratios of one set of totals against equity V (cents in, fractions out)."""

    equity: int
    long_mv_pct: float | None
    short_mv_pct: float | None
    gross_mv_pct: float | None
    net_mv_pct: float | None
    long_pct: float | None
    short_pct: float | None
    gross_leverage: float | None
    net_leverage: float | None


def ratios(cash_cents: int, sums: dict[str, int]) -> Ratios:
    """Equity V = C + Σ MV (§2.1) and every equity-relative ratio (NULL when V ≤ 0)."""
    equity = cash_cents + sums["net_mv"]
    return Ratios(
        equity=equity,
        long_mv_pct=ratio(sums["long_mv"], equity),
        short_mv_pct=ratio(sums["short_mv"], equity),
        gross_mv_pct=ratio(sums["gross_mv"], equity),
        net_mv_pct=ratio(sums["net_mv"], equity),
        long_pct=ratio(sums["long_exposure"], equity),
        short_pct=ratio(sums["short_exposure"], equity),
        gross_leverage=ratio(sums["gross_exposure"], equity),
        net_leverage=ratio(sums["net_exposure"], equity),
    )


def factorize(keys: npt.NDArray[np.object_]) -> tuple[I64, list[str]]:
    """Group codes and their labels (labels sorted)."""
    labels, codes = np.unique(keys.astype(str), return_inverse=True)
    return codes.astype(np.int64), [str(x) for x in labels]


@dataclass(frozen=True)
class Calendar:
    """prev(t) and the oldest close date accepted for t and for prev(t) (§1.2 stale window)."""

    prev_date: date
    window_t: date
    window_p: date


def trading_calendar(days_before: list[date], as_of: date, stale_days: int) -> Calendar:
    """From the NYSE trading days strictly before `as_of` (any order).

    Falls back to Monday-Friday business days where the stored calendar does not reach back far
    enough (e.g. a calendar not seeded yet), so valuation never guesses "yesterday".
    """
    known = sorted({d for d in days_before if d < as_of}, reverse=True)
    need = stale_days + 1
    if len(known) < need:
        start = known[-1] if known else as_of
        extra = [
            np.busday_offset(np.datetime64(start, "D"), -k, roll="forward").astype(date)
            for k in range(1, need - len(known) + 1)
        ]
        known = known + [d for d in extra if d < start]
    prev = known[0]
    return Calendar(prev_date=prev, window_t=known[max(stale_days - 1, 0)], window_p=known[stale_days])
