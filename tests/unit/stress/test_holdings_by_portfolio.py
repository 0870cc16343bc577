"""`holdings_by_portfolio`: the risk metrics' holdings cut from the batch's one positions read.

The risk metrics used to read their own holdings (one row of arrays per portfolio, positions ordered by
id). They now take them from the stress step's shared positions read; on generated books — a portfolio
without positions, options without Greeks, unpriced positions, NULL gammas and prices, a portfolio
not asked for — the holdings must be, to the bit, what the former per-row conversion built.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import numpy as np
import pytest
from asyncpg.pgproto import pgproto
from tests.unit.stress.bitwise import identical
from tests.unit.stress.test_stress_generated_books import generated_columns

from stress.risk_repository import HoldingRows, holdings_by_portfolio


def _nan(values: list[Any]) -> list[float]:
    return [math.nan if x is None else float(x) for x in values]


def former_holdings(columns: dict[str, list[Any]]) -> dict[Any, HoldingRows]:
    """What the former holdings read gave: per portfolio, its positions in the order read, each
    value converted one by one (`coalesce(underlying_symbol, symbol)`, NULL → NaN / False)."""
    rows: dict[Any, list[int]] = {}
    for i, pid in enumerate(columns["portfolio_id"]):
        rows.setdefault(pid, []).append(i)
    out = {}
    for pid, index in rows.items():

        def col(name: str, index: list[int] = index) -> list[Any]:
            return [columns[name][i] for i in index]

        underlying = [u if u is not None else s for u, s in zip(col("underlying_symbol"), col("symbol"), strict=True)]
        out[pid] = HoldingRows(
            underlying=underlying,
            is_option=[bool(x) for x in col("is_option")],
            market_value=_nan(col("market_value")),
            dollar_exposure=_nan(col("dollar_exposure")),
            gamma=_nan(col("gamma")),
            underlying_price=_nan(col("underlying_price")),
            greek_status=col("greek_status"),
        )
    return out


def with_risk_columns(rng: np.random.Generator, columns: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """The generated position columns plus the gamma and underlying price the shared read carries."""
    n = len(columns["position_id"])
    gamma = [None if s is None or rng.random() < 0.1 else float(rng.normal(0, 5)) for s in columns["greek_status"]]
    price = [None if rng.random() < 0.1 else float(rng.uniform(5, 500)) for _ in range(n)]
    return {**columns, "gamma": gamma, "underlying_price": price}


def same(a: dict[Any, HoldingRows], b: dict[Any, HoldingRows]) -> list[str]:
    keys = sorted(a, key=str)
    if sorted(b, key=str) != keys:
        return ["portfolio ids"]
    return identical([a[k] for k in keys], [b[k] for k in keys])


@pytest.mark.parametrize("seed", range(12))
def test_holdings_are_the_former_per_row_holdings(seed: int) -> None:
    rng = np.random.default_rng(seed)
    columns = with_risk_columns(rng, generated_columns(rng, sorted(uuid.uuid4() for _ in range(7))))
    got = holdings_by_portfolio(columns)
    assert same(got, former_holdings(columns)) == []
    assert all(type(x) is float for h in got.values() for x in h.market_value + h.gamma + h.underlying_price)


def test_no_positions_no_holdings_and_one_position_one_holding() -> None:
    empty = {name: [] for name in ("portfolio_id", "underlying_symbol", "symbol", "is_option", "greek_status")}
    empty |= {name: [] for name in ("market_value", "dollar_exposure", "gamma", "underlying_price")}
    assert holdings_by_portfolio(empty) == {}
    pid = pgproto.UUID(str(uuid.uuid4()))
    one = {
        "portfolio_id": [pid],
        "underlying_symbol": [None],  # coalesced to the position's own symbol
        "symbol": ["AAPL"],
        "is_option": [None],
        "market_value": [None],
        "dollar_exposure": [-0.0],
        "gamma": [None],
        "underlying_price": [187.25],
        "greek_status": [None],
    }
    got = holdings_by_portfolio(one)
    assert same(got, former_holdings(one)) == []
    assert got[pid].underlying == ["AAPL"] and got[pid].is_option == [False]


def test_positions_not_grouped_by_portfolio_keep_their_order_within_each() -> None:
    rng = np.random.default_rng(99)
    columns = with_risk_columns(rng, generated_columns(rng, sorted(uuid.uuid4() for _ in range(5))))
    order = rng.permutation(len(columns["portfolio_id"])).tolist()
    shuffled = {name: [values[i] for i in order] for name, values in columns.items()}
    assert same(holdings_by_portfolio(shuffled), former_holdings(shuffled)) == []
