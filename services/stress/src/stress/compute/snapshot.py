"""Daily portfolio snapshot (calculations.md §2.1-2.3, §3.5, §9).

Money arrives and leaves as float64 **cents** (a numeric(20,2) value × 100), NaN meaning NULL.
Integer-valued float64 sums are exact below 2**53 cents (≈ $90 trillion), so every total here is
exact to the cent and the §2.5 identities (gross = long + |short|, net = long + short) hold
exactly in both views. Prices and quantities are plain float64 (only the closed-position P&L of
§1.3 multiplies them, and that product is rounded half-even to the cent).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

ENGINE_VERSION = "stress-1.0.0"
POSITION_TYPES: tuple[str, ...] = ("LONG", "SHORT", "LC", "LP", "SC", "SP")

FloatArray = np.ndarray


def _f(values: object) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def _b(values: object) -> np.ndarray:
    return np.asarray(values, dtype=bool)


@dataclass(frozen=True)
class HeldPositions:
    """One element per position held at t0 (its valuation row; a held position without one has NaN values).

    Money fields are cents (NaN = NULL): `market_value` NaN means unpriced; `dollar_exposure` NaN on an
    option means no delta. Greeks are position-level dollar Greeks (NaN for stocks and for options
    without Greeks): `dollar_gamma_1pct` in cents, `theta` $/day, `vega` $/vol-pt, `rho` $/pp.
    """

    quantity: FloatArray
    is_option: np.ndarray
    position_type: np.ndarray
    market_value: FloatArray
    dollar_exposure: FloatArray
    notional: FloatArray
    unrealized_pnl: FloatArray
    daily_pnl: FloatArray
    stale: np.ndarray
    dollar_gamma_1pct: FloatArray
    theta: FloatArray
    vega: FloatArray
    rho: FloatArray

    @classmethod
    def build(
        cls,
        *,
        quantity: object,
        is_option: object,
        position_type: object,
        market_value: object,
        dollar_exposure: object,
        notional: object,
        unrealized_pnl: object,
        daily_pnl: object,
        stale: object | None = None,
        dollar_gamma_1pct: object | None = None,
        theta: object | None = None,
        vega: object | None = None,
        rho: object | None = None,
    ) -> HeldPositions:
        """Coerce sequences (None → NaN) into typed arrays; Greeks default to NaN, `stale` to False."""
        q = _f(quantity)
        nan = np.full(q.shape, np.nan)
        return cls(
            quantity=q,
            is_option=_b(is_option),
            position_type=np.asarray(position_type, dtype=object),
            market_value=_f(market_value),
            dollar_exposure=_f(dollar_exposure),
            notional=_f(notional),
            unrealized_pnl=_f(unrealized_pnl),
            daily_pnl=_f(daily_pnl),
            stale=_b(stale) if stale is not None else np.zeros(q.shape, dtype=bool),
            dollar_gamma_1pct=_f(dollar_gamma_1pct) if dollar_gamma_1pct is not None else nan,
            theta=_f(theta) if theta is not None else nan,
            vega=_f(vega) if vega is not None else nan,
            rho=_f(rho) if rho is not None else nan,
        )

    @classmethod
    def empty(cls) -> HeldPositions:
        """A portfolio holding nothing at t0."""
        return cls.build(
            quantity=[],
            is_option=[],
            position_type=[],
            market_value=[],
            dollar_exposure=[],
            notional=[],
            unrealized_pnl=[],
            daily_pnl=[],
        )


@dataclass(frozen=True)
class ClosedPositions:
    """Positions closed in (prev(t0), t0]: their realised P&L, and their day P&L unless a valuation row
    of t0 already carries it (`valued_on_t0`, then the position is in HeldPositions).

    `prev_price`: the position's last valued price before t0 (NaN if never valued);
    `opened_after_prev`: entry after prev(t0), so the day P&L runs from the entry price;
    `realized_pnl`: cents, q·m·(P_exit − P_entry) as stored by ingest (NaN if missing).
    """

    quantity: FloatArray
    multiplier: FloatArray
    entry_price: FloatArray
    exit_price: FloatArray
    prev_price: FloatArray
    opened_after_prev: np.ndarray
    realized_pnl: FloatArray
    valued_on_t0: np.ndarray

    @classmethod
    def build(
        cls,
        *,
        quantity: object,
        multiplier: object,
        entry_price: object,
        exit_price: object,
        prev_price: object,
        opened_after_prev: object,
        realized_pnl: object,
        valued_on_t0: object | None = None,
    ) -> ClosedPositions:
        """Coerce sequences (None → NaN) into typed arrays; `valued_on_t0` defaults to False."""
        q = _f(quantity)
        return cls(
            quantity=q,
            multiplier=_f(multiplier),
            entry_price=_f(entry_price),
            exit_price=_f(exit_price),
            prev_price=_f(prev_price),
            opened_after_prev=_b(opened_after_prev),
            realized_pnl=_f(realized_pnl),
            valued_on_t0=_b(valued_on_t0) if valued_on_t0 is not None else np.zeros(q.shape, dtype=bool),
        )

    @classmethod
    def empty(cls) -> ClosedPositions:
        """No position closed on t0."""
        return cls.build(
            quantity=[],
            multiplier=[],
            entry_price=[],
            exit_price=[],
            prev_price=[],
            opened_after_prev=[],
            realized_pnl=[],
        )


@dataclass(frozen=True)
class SnapshotFigures:
    """Everything of calculations.md §9 that depends on t0's positions alone (money in cents)."""

    equity: float
    cash_balance: float
    cash_unknown: bool
    long_mv: float
    short_mv: float
    gross_mv: float
    net_mv: float
    long_exposure: float
    short_exposure: float
    gross_exposure: float
    net_exposure: float
    notional: float
    gross_leverage: float | None
    net_leverage: float | None
    unrealized_pnl_total: float
    daily_pnl: float
    realized_pnl_day: float
    dollar_delta: float
    dollar_gamma_1pct: float | None
    theta: float | None
    vega: float | None
    rho: float | None
    num_positions: int
    num_long: int
    num_short: int
    num_stocks: int
    num_options: int
    counts_by_type: dict[str, int]
    positions_unpriced: int
    positions_stale: int
    options_without_greeks: int
    missing: tuple[str, ...] = field(default_factory=tuple)
    flags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def inputs_status(self) -> str:
        """`partial` when any input was missing (calculations.md §0.5: never silently complete)."""
        return "partial" if self.missing else "complete"


def closed_day_pnl(closed: ClosedPositions) -> FloatArray:
    """Day P&L of positions closed on t0, in cents (calculations.md §1.3); NaN when P_p is unknown.

    Held at prev(t0): q·m·(P_exit − P_p). Opened and closed within the day: the realised P&L
    q·m·(P_exit − P_entry). Expired options carry their intrinsic value as the exit price.
    """
    from_prev = closed.quantity * closed.multiplier * (closed.exit_price - closed.prev_price) * 100.0
    from_entry = np.where(
        np.isnan(closed.realized_pnl),
        closed.quantity * closed.multiplier * (closed.exit_price - closed.entry_price) * 100.0,
        closed.realized_pnl,
    )
    return np.round(np.where(closed.opened_after_prev, from_entry, from_prev))


def cash_notes(cash_cents: float | None) -> tuple[float, bool, list[str], list[str]]:
    """(cash, cash_unknown, missing, flags) of a portfolio: unknown cash counts as 0 and is both a
    missing input and a flag (§9). The lists are the start of the snapshot's missing and flags."""
    if cash_cents is None:
        return 0.0, True, ["cash_unknown"], ["cash_unknown"]
    return float(cash_cents), False, [], []


def leverage(equity: float, gross_exposure: float, net_exposure: float) -> tuple[float | None, float | None]:
    """(gross, net) leverage: exposure / equity, undefined (None) when equity ≤ 0 (flag equity_undefined)."""
    if equity > 0:
        return gross_exposure / equity, net_exposure / equity
    return None, None


def _sum(values: FloatArray, mask: np.ndarray | None = None) -> float:
    chosen = values if mask is None else values[mask]
    return float(np.nansum(chosen))


def build_snapshot(held: HeldPositions, closed: ClosedPositions, cash_cents: float | None) -> SnapshotFigures:
    """Aggregate t0's positions into the snapshot figures (pure; no per-position Python loop)."""
    cash, cash_unknown, missing, flags = cash_notes(cash_cents)

    mv = held.market_value
    priced = ~np.isnan(mv)
    # Capital view (§2.3): long/short by the sign of the market value (= the sign of q).
    long_mv = _sum(mv, mv > 0)
    short_mv = _sum(mv, mv < 0)
    net_mv = long_mv + short_mv
    gross_mv = long_mv - short_mv

    # Directional view on dollar_exposure; positions without an exposure are excluded and counted.
    de = held.dollar_exposure
    long_exposure = _sum(de, de > 0)
    short_exposure = _sum(de, de < 0)
    net_exposure = long_exposure + short_exposure
    gross_exposure = long_exposure - short_exposure

    notional = _sum(held.notional, priced)
    unrealized = _sum(held.unrealized_pnl, priced)

    equity = cash + net_mv
    gross_leverage, net_leverage = leverage(equity, gross_exposure, net_exposure)
    if gross_leverage is None:
        flags.append("equity_undefined")

    # Daily P&L (§1.3, §9): held positions plus positions closed on t0 (realised), never a difference of exposures.
    held_pnl_missing = priced & np.isnan(held.daily_pnl)
    # A closed position valued on t0 already has its day P&L in the held rows: never count it twice.
    closed_pnl = np.where(closed.valued_on_t0, 0.0, closed_day_pnl(closed))
    daily_pnl = _sum(held.daily_pnl) + _sum(closed_pnl)
    realized_day = _sum(closed.realized_pnl)

    options = held.is_option
    n_options = int(options.sum())
    options_without_greeks = int((options & np.isnan(de)).sum())
    greek_arrays = (held.dollar_gamma_1pct, held.theta, held.vega, held.rho)
    has_greeks = options & ~np.isnan(np.vstack(greek_arrays)).any(axis=0)
    n_with_greeks = int(has_greeks.sum())
    greek_sums: list[float | None]
    if n_options and not n_with_greeks:
        greek_sums = [None, None, None, None]
    else:
        # Portfolio dollar Greeks (§3.5): only dollar Greeks add across underlyings; stocks contribute none.
        greek_sums = [_sum(arr, has_greeks) for arr in greek_arrays]

    positions_unpriced = int((~priced).sum())
    if positions_unpriced:
        missing.append("positions_unpriced")
    if options_without_greeks:
        missing.append("options_without_greeks")
    if n_with_greeks < n_options:
        missing.append("greeks_missing")
    if held_pnl_missing.any():
        missing.append("daily_pnl_missing")
    if np.isnan(closed_pnl).any():
        missing.append("closed_pnl_missing")
    if np.isnan(closed.realized_pnl).any():
        missing.append("realized_pnl_missing")

    q = held.quantity
    types = held.position_type
    return SnapshotFigures(
        equity=equity,
        cash_balance=cash,
        cash_unknown=cash_unknown,
        long_mv=long_mv,
        short_mv=short_mv,
        gross_mv=gross_mv,
        net_mv=net_mv,
        long_exposure=long_exposure,
        short_exposure=short_exposure,
        gross_exposure=gross_exposure,
        net_exposure=net_exposure,
        notional=notional,
        gross_leverage=gross_leverage,
        net_leverage=net_leverage,
        unrealized_pnl_total=unrealized,
        daily_pnl=daily_pnl,
        realized_pnl_day=realized_day,
        # §9: the portfolio dollar delta includes stocks (delta 1) and equals the net exposure.
        dollar_delta=net_exposure,
        dollar_gamma_1pct=greek_sums[0],
        theta=greek_sums[1],
        vega=greek_sums[2],
        rho=greek_sums[3],
        num_positions=int(q.size),
        num_long=int((q > 0).sum()),
        num_short=int((q < 0).sum()),
        num_stocks=int(q.size) - n_options,
        num_options=n_options,
        counts_by_type={t: int((types == t).sum()) for t in POSITION_TYPES},
        positions_unpriced=positions_unpriced,
        positions_stale=int(held.stale.sum()),
        options_without_greeks=options_without_greeks,
        missing=tuple(missing),
        flags=tuple(flags),
    )


@dataclass(frozen=True)
class SnapshotAnalytics:
    """The §9 fields a snapshot copies from the day's factor, stress and risk results (None = absent).

    Money is exact Decimal dollars as stored; `factor_exposures` maps factor code → X_f for the
    factors calculated that day (7 equity factors plus `interest_rate`).
    """

    factors_available: bool
    market_beta_ex_ante: float | None = None
    market_exposure: Decimal | None = None
    factor_exposures: dict[str, Any] | None = None
    beta_coverage: float | None = None
    risk_metrics_available: bool = False
    var_95_1d: Decimal | None = None
    var_99_1d: Decimal | None = None
    es_95_1d: Decimal | None = None
    es_99_1d: Decimal | None = None
    annualized_volatility: float | None = None
    max_drawdown: float | None = None
    risk_flags: tuple[str, ...] = ()
    worst_stress_pnl: Decimal | None = None
    worst_stress_id: str | None = None

    def fields(self) -> dict[str, Any]:
        """The snapshot columns these analytics fill."""
        return {
            "market_beta_ex_ante": self.market_beta_ex_ante,
            "market_exposure": self.market_exposure,
            "factor_exposures": self.factor_exposures,
            "beta_coverage": self.beta_coverage,
            "var_95_1d": self.var_95_1d,
            "var_99_1d": self.var_99_1d,
            "es_95_1d": self.es_95_1d,
            "es_99_1d": self.es_99_1d,
            "annualized_volatility": self.annualized_volatility,
            "max_drawdown": self.max_drawdown,
            "worst_stress_pnl": self.worst_stress_pnl,
            "worst_stress_id": self.worst_stress_id,
        }

    def missing(self) -> tuple[str, ...]:
        """Inputs of §9 that were not available (each makes the snapshot `partial`)."""
        out: list[str] = []
        if not self.factors_available or self.market_exposure is None:
            out.append("factor_exposures_missing")
        if not self.risk_metrics_available:
            out.append("risk_metrics_missing")
        elif self.var_95_1d is None or self.var_99_1d is None:
            out.append("var_missing")
        if self.annualized_volatility is None and self.risk_metrics_available:
            out.append("volatility_missing")
        if self.worst_stress_id is None:
            out.append("stress_results_missing")
        return tuple(out)


@dataclass(frozen=True)
class ChainAnchor:
    """The snapshot just before the chained ones: equity and cumulative P&L in cents."""

    equity: float
    cumulative_pnl: float
    cumulative_return: float


@dataclass(frozen=True)
class ChainResult:
    """Return chain of consecutive snapshots (cumulative P&L in cents; NaN = NULL)."""

    daily_return: FloatArray
    cumulative_pnl: FloatArray
    cumulative_return: FloatArray


def chain_returns(anchor: ChainAnchor | None, equity: object, daily_pnl: object) -> ChainResult:
    """Daily return, cumulative P&L and chain-linked cumulative return of ascending snapshots (§9).

    `daily_return_t = daily_pnl_t / equity_prev` (NaN without a previous snapshot or when that equity
    is ≤ 0); `cumulative_pnl_t = cumulative_pnl_prev + daily_pnl_t` (the first snapshot starts at its
    daily P&L); `cumulative_return_t = (1 + cumulative_return_prev)(1 + daily_return_t) − 1` with the
    first snapshot of a history at 0 (wealth index W_0 = 1). A missing return is never replaced by
    zero: it breaks the cumulative return (NaN) from there on.
    """
    eq = _f(equity)
    pnl = _f(daily_pnl)
    prev_equity = np.empty_like(eq)
    if eq.size:
        prev_equity[0] = anchor.equity if anchor is not None else np.nan
        prev_equity[1:] = eq[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        daily_return = np.where(prev_equity > 0, pnl / prev_equity, np.nan)
    base_pnl = anchor.cumulative_pnl if anchor is not None else 0.0
    cumulative_pnl = base_pnl + np.cumsum(pnl)
    growth = 1.0 + daily_return
    base_return = 0.0
    if anchor is None:
        if growth.size:
            growth[0] = 1.0  # the first snapshot of a history has no return; the index starts there
    else:
        base_return = anchor.cumulative_return
    cumulative_return = (1.0 + base_return) * np.cumprod(growth) - 1.0
    return ChainResult(daily_return=daily_return, cumulative_pnl=cumulative_pnl, cumulative_return=cumulative_return)
