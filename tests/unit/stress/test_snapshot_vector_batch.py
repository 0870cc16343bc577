"""The batched snapshot pass equals the per-portfolio code bit for bit.

`snapshot_inputs.build_all` computes the figures of a whole batch in one array pass
(`compute.snapshot_batch`). Here it runs beside the one-portfolio code it replaces (`_build_one` =
`build_snapshot` + `chain_returns`) on generated books: unpriced positions, options
with and without Greeks or delta, non-integer Greeks (where the order of a sum shows), closed
positions, unknown cash, zero and negative equity, anchors, later snapshots, books that do not line
up. Every figure, chain and stored snapshot row must be identical.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from datetime import date
from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import numpy as np
from tests.unit.stress.bitwise import identical

from stress.compute.snapshot import (
    POSITION_TYPES,
    ChainAnchor,
    ClosedPositions,
    HeldPositions,
    SnapshotAnalytics,
)
from stress.repository import LaterSnapshots, closed_from_row, held_from_row
from stress.service import snapshot_row
from stress.snapshot_inputs import SnapshotInputs, _build_one, build_all

NAN = math.nan
AS_OF = date(2026, 11, 24)


def reference_all(inputs: dict[UUID, SnapshotInputs], failed: dict[UUID, bool]) -> dict[UUID, Any]:
    """build_all as it was: one portfolio at a time."""
    out: dict[UUID, Any] = {}
    for pid, one in inputs.items():
        try:
            out[pid] = _build_one(pid, one, failed[pid])
        except Exception as exc:
            out[pid] = exc
    return out


def nan_some(rng: np.random.Generator, x: np.ndarray, rate: float) -> np.ndarray:
    return np.where(rng.random(x.size) < rate, NAN, x)


def held_lists(rng: np.random.Generator) -> dict[str, list[Any]]:
    """One portfolio's HELD_SQL arrays (money in integer cents, Greeks in plain floats, None = NULL)."""
    n = int(rng.integers(1, 30))
    option = rng.random(n) < 0.45
    quantity = rng.integers(-500, 500, n).astype(float)
    mv = nan_some(rng, np.round(rng.normal(0, 3e6, n)), 0.08)
    de = np.where(option & (rng.random(n) < 0.15), NAN, np.round(mv * rng.uniform(-1.2, 1.2, n)))
    greek = option & (rng.random(n) < 0.8)

    def greeks(scale: float) -> np.ndarray:
        return np.where(greek, rng.normal(0, scale, n) * rng.uniform(0.5, 1.5, n), NAN)

    def listed(x: np.ndarray) -> list[float | None]:
        return [None if math.isnan(v) else float(v) for v in x]

    return {
        "quantity": quantity.tolist(),
        "is_option": option.tolist(),
        "position_type": [str(t) for t in rng.choice(POSITION_TYPES, n)],
        "market_value": listed(mv),
        "dollar_exposure": listed(de),
        "notional": listed(np.where(np.isnan(mv), NAN, np.abs(np.round(mv * 1.3)))),
        "unrealized_pnl": listed(np.where(np.isnan(mv), NAN, np.round(rng.normal(0, 1e5, n)))),
        "daily_pnl": listed(nan_some(rng, np.round(rng.normal(0, 5e4, n)), 0.05)),
        "stale": (rng.random(n) < 0.1).tolist(),
        "dollar_gamma_1pct": listed(np.round(greeks(1e4))),
        "theta": listed(greeks(37.3)),
        "vega": listed(greeks(113.7)),
        "rho": listed(greeks(9.1)),
    }


def closed_lists(rng: np.random.Generator) -> dict[str, list[Any]]:
    n = int(rng.integers(1, 4))
    entry = rng.uniform(10, 200, n)
    return {
        "quantity": rng.integers(-50, 50, n).astype(float).tolist(),
        "multiplier": rng.choice([1.0, 100.0], n).tolist(),
        "entry_price": entry.tolist(),
        "exit_price": (entry * rng.uniform(0.8, 1.2, n)).tolist(),
        "prev_price": [None if rng.random() < 0.2 else float(x) for x in entry * 1.01],
        "opened_after_prev": (rng.random(n) < 0.3).tolist(),
        "realized_pnl": [None if rng.random() < 0.1 else float(round(x)) for x in rng.normal(0, 1e5, n)],
        "valued_on_t0": (rng.random(n) < 0.3).tolist(),
    }


def analytics(rng: np.random.Generator) -> SnapshotAnalytics:
    risk = bool(rng.random() > 0.1)
    return SnapshotAnalytics(
        factors_available=bool(rng.random() > 0.1),
        market_exposure=None if rng.random() < 0.1 else Decimal("1234.56"),
        risk_metrics_available=risk,
        var_95_1d=Decimal("100.00") if risk and rng.random() > 0.1 else None,
        var_99_1d=Decimal("150.00") if risk else None,
        annualized_volatility=0.2 if rng.random() > 0.1 else None,
        worst_stress_id=None if rng.random() < 0.1 else "covid_crash",
    )


def snapshot_inputs(rng: np.random.Generator) -> SnapshotInputs:
    held = held_from_row(SimpleNamespace(**held_lists(rng))) if rng.random() > 0.05 else HeldPositions.empty()
    closed = closed_from_row(SimpleNamespace(**closed_lists(rng))) if rng.random() < 0.25 else ClosedPositions.empty()
    anchor = None
    if rng.random() > 0.2:
        anchor = ChainAnchor(
            float(rng.choice([0.0, -5e5, rng.uniform(1e6, 1e8)])),
            NAN if rng.random() < 0.05 else float(round(rng.normal(0, 1e6))),
            NAN if rng.random() < 0.05 else float(rng.normal(0, 0.1)),
        )
    later_n = int(rng.choice([0, 0, 0, 1, 3]))
    return SnapshotInputs(
        live=bool(rng.random() > 0.04),
        cash=[None, 0.0, -1e12, float(round(rng.uniform(0, 1e8)))][int(rng.choice(4, p=[0.1, 0.05, 0.05, 0.8]))],
        held=held,
        closed=closed,
        analytics=analytics(rng),
        anchor=anchor,
        later=LaterSnapshots(
            ids=[uuid.uuid4() for _ in range(later_n)],
            equity=rng.uniform(-1e6, 1e8, later_n).tolist(),
            daily_pnl=nan_some(rng, np.round(rng.normal(0, 1e5, later_n)), 0.2).tolist(),
        ),
    )


def test_build_all_equals_the_per_portfolio_code() -> None:
    rng = np.random.default_rng(3)
    for _ in range(6):
        inputs = {uuid.uuid4(): snapshot_inputs(rng) for _ in range(120)}
        misaligned = next(iter(inputs))
        inputs[misaligned] = dataclasses.replace(
            inputs[misaligned], held=dataclasses.replace(HeldPositions.empty(), quantity=np.ones(2))
        )
        failed = {pid: bool(rng.random() < 0.1) for pid in inputs}

        expected = reference_all(inputs, failed)
        got = build_all(inputs, failed)

        assert list(got) == list(expected)
        for pid, one in inputs.items():
            assert identical(expected[pid], got[pid]) == [], pid
            if isinstance(expected[pid], tuple):
                (fig_a, chain_a), (fig_b, chain_b) = expected[pid], got[pid]
                run = uuid.uuid4()
                row_a = snapshot_row(
                    pid, AS_OF, fig_a, source="batch", run_id=run, chain=chain_a, analytics=one.analytics
                )
                row_b = snapshot_row(
                    pid, AS_OF, fig_b, source="batch", run_id=run, chain=chain_b, analytics=one.analytics
                )
                assert identical(row_a, row_b) == []
        assert sum(isinstance(x, Exception) for x in got.values()) >= 1
