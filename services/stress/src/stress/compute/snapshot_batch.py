"""Snapshot figures of a batch of portfolios (calculations.md §2.1-2.3, §3.5, §9) in one pass.

The positions of every portfolio lie back to back in one HeldPositions / ClosedPositions (`counts`
elements each), so each sum, count and flag of `build_snapshot` is one array operation for the whole
batch. Each portfolio's figures equal `build_snapshot` of its own positions bit for bit: the sums are
numpy's own sums of each portfolio's kept values (`segments`), the counts are integers, and the
per-portfolio arithmetic after the sums is the same Python float arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from stress.compute.segments import masked_nansums, owners, segment_counts
from stress.compute.snapshot import (
    POSITION_TYPES,
    ChainAnchor,
    ChainResult,
    ClosedPositions,
    HeldPositions,
    SnapshotFigures,
    cash_notes,
    closed_day_pnl,
    leverage,
)


def concat_held(parts: Sequence[HeldPositions]) -> HeldPositions:
    """The positions of several portfolios back to back."""
    fields = HeldPositions.__dataclass_fields__
    return HeldPositions(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in fields})


def concat_closed(parts: Sequence[ClosedPositions]) -> ClosedPositions:
    """The closed positions of several portfolios back to back."""
    fields = ClosedPositions.__dataclass_fields__
    return ClosedPositions(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in fields})


def build_snapshots(
    held: HeldPositions,
    held_counts: np.ndarray,
    closed: ClosedPositions,
    closed_counts: np.ndarray,
    cash_cents: Sequence[float | None],
    extra_missing: Sequence[Sequence[str]],
) -> list[SnapshotFigures]:
    """`build_snapshot` of each portfolio, its `missing` followed by its `extra_missing` (the inputs
    outside its positions that were not available)."""
    p = len(cash_cents)
    h_owner, c_owner = owners(held_counts), owners(closed_counts)
    everything, every_closed = np.ones(h_owner.size, dtype=bool), np.ones(c_owner.size, dtype=bool)

    def held_sums(values: np.ndarray, mask: np.ndarray) -> list[float]:
        return masked_nansums(values, mask, h_owner, p).tolist()

    def held_counts_of(mask: np.ndarray) -> list[int]:
        return segment_counts(mask, h_owner, p).tolist()

    mv, de = held.market_value, held.dollar_exposure
    priced = ~np.isnan(mv)
    # Capital view (§2.3) by the sign of the market value; directional view on dollar_exposure.
    long_mv, short_mv = held_sums(mv, mv > 0), held_sums(mv, mv < 0)
    long_exposure, short_exposure = held_sums(de, de > 0), held_sums(de, de < 0)
    notional = held_sums(held.notional, priced)
    unrealized = held_sums(held.unrealized_pnl, priced)
    held_pnl = held_sums(held.daily_pnl, everything)
    # A closed position valued on t0 already has its day P&L in the held rows: never count it twice.
    closed_pnl = np.where(closed.valued_on_t0, 0.0, closed_day_pnl(closed))
    closed_day = masked_nansums(closed_pnl, every_closed, c_owner, p).tolist()
    realized = masked_nansums(closed.realized_pnl, every_closed, c_owner, p).tolist()
    held_pnl_missing = held_counts_of(priced & np.isnan(held.daily_pnl))
    closed_pnl_missing = segment_counts(np.isnan(closed_pnl), c_owner, p).tolist()
    realized_missing = segment_counts(np.isnan(closed.realized_pnl), c_owner, p).tolist()

    options = held.is_option
    greek_arrays = (held.dollar_gamma_1pct, held.theta, held.vega, held.rho)
    has_greeks = options & ~np.isnan(np.vstack(greek_arrays)).any(axis=0)
    greek_sums = [held_sums(arr, has_greeks) for arr in greek_arrays]
    n_options = held_counts_of(options)
    n_with_greeks = held_counts_of(has_greeks)
    without_greeks = held_counts_of(options & np.isnan(de))
    unpriced = held_counts_of(~priced)
    q = held.quantity
    n_long, n_short = held_counts_of(q > 0), held_counts_of(q < 0)
    n_stale = held_counts_of(held.stale)
    by_type = {t: held_counts_of(held.position_type == t) for t in POSITION_TYPES}
    n_positions = np.asarray(held_counts).tolist()

    out = []
    for j, cash_cents_j in enumerate(cash_cents):
        cash, cash_unknown, missing, flags = cash_notes(cash_cents_j)
        net_mv, gross_mv = long_mv[j] + short_mv[j], long_mv[j] - short_mv[j]
        net_exposure = long_exposure[j] + short_exposure[j]
        gross_exposure = long_exposure[j] - short_exposure[j]
        equity = cash + net_mv
        gross_leverage, net_leverage = leverage(equity, gross_exposure, net_exposure)
        if gross_leverage is None:
            flags.append("equity_undefined")
        options_j, with_greeks_j = n_options[j], n_with_greeks[j]
        greeks: list[float | None] = [s[j] for s in greek_sums]
        if options_j and not with_greeks_j:
            greeks = [None, None, None, None]
        if unpriced[j]:
            missing.append("positions_unpriced")
        if without_greeks[j]:
            missing.append("options_without_greeks")
        if with_greeks_j < options_j:
            missing.append("greeks_missing")
        if held_pnl_missing[j]:
            missing.append("daily_pnl_missing")
        if closed_pnl_missing[j]:
            missing.append("closed_pnl_missing")
        if realized_missing[j]:
            missing.append("realized_pnl_missing")
        missing.extend(extra_missing[j])
        out.append(
            SnapshotFigures(
                equity=equity,
                cash_balance=cash,
                cash_unknown=cash_unknown,
                long_mv=long_mv[j],
                short_mv=short_mv[j],
                gross_mv=gross_mv,
                net_mv=net_mv,
                long_exposure=long_exposure[j],
                short_exposure=short_exposure[j],
                gross_exposure=gross_exposure,
                net_exposure=net_exposure,
                notional=notional[j],
                gross_leverage=gross_leverage,
                net_leverage=net_leverage,
                unrealized_pnl_total=unrealized[j],
                daily_pnl=held_pnl[j] + closed_day[j],
                realized_pnl_day=realized[j],
                dollar_delta=net_exposure,  # §9: includes stocks (delta 1); equals the net exposure
                dollar_gamma_1pct=greeks[0],
                theta=greeks[1],
                vega=greeks[2],
                rho=greeks[3],
                num_positions=n_positions[j],
                num_long=n_long[j],
                num_short=n_short[j],
                num_stocks=n_positions[j] - options_j,
                num_options=options_j,
                counts_by_type={t: by_type[t][j] for t in POSITION_TYPES},
                positions_unpriced=unpriced[j],
                positions_stale=n_stale[j],
                options_without_greeks=without_greeks[j],
                missing=tuple(missing),
                flags=tuple(flags),
            )
        )
    return out


def chainable(anchor: ChainAnchor | None) -> bool:
    """True when `first_day_chains` computes the chain from this anchor (numbers, not NULLs)."""
    return anchor is None or all(
        isinstance(x, float | int) for x in (anchor.equity, anchor.cumulative_pnl, anchor.cumulative_return)
    )


def first_day_chains(anchors: Sequence[ChainAnchor | None], daily_pnl: Sequence[float]) -> list[ChainResult]:
    """`chain_returns(anchor, [equity], [daily_pnl])` of each portfolio with no later snapshot (each
    anchor `chainable`): the one-day chain of §9, element by element for the whole batch. A one-day
    chain reads only the anchor's equity, never the day's own."""
    n = len(anchors)
    has = np.array([a is not None for a in anchors], dtype=bool)
    prev_equity = np.array([math.nan if a is None else a.equity for a in anchors], dtype=np.float64)
    base_pnl = np.array([0.0 if a is None else a.cumulative_pnl for a in anchors], dtype=np.float64)
    base_return = np.array([0.0 if a is None else a.cumulative_return for a in anchors], dtype=np.float64)
    pnl = np.asarray(daily_pnl, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        daily_return = np.where(prev_equity > 0, pnl / prev_equity, np.nan)
    # The first snapshot of a history has no return: its wealth index starts there.
    growth = np.where(has, 1.0 + daily_return, 1.0)
    cumulative_pnl = base_pnl + pnl
    cumulative_return = (1.0 + base_return) * growth - 1.0
    return [
        ChainResult(
            daily_return=daily_return[j : j + 1],
            cumulative_pnl=cumulative_pnl[j : j + 1],
            cumulative_return=cumulative_return[j : j + 1],
        )
        for j in range(n)
    ]
