"""The batch's stacked compute returns, book by book, what the single-book compute returns, and the
kernels they share return what the per-portfolio kernels returned before
(tests/unit/factors/correlation_reference.py: node grouping, pairwise statistics, clusters); the
stacked metrics equal the pair-by-pair path (`pairwise_metrics`).

Generated batches mix NaN gaps, constant and price-less series, non-positive closes, nodes with 29/30/31
returns, pairs with 29/30/31 common returns, hedged and clustered names, several positions per
underlying and books with 0, 1 and 2 included nodes. The batched results must equal the single-book
ones bit for bit (the daily cycle stores either); against the former code floats are held to 1e-12
relative (they are equal in practice) and everything else — NULL patterns, counts, memberships, orders,
flags — exactly.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from tests.unit.factors import correlation_reference as ref

from common import pg_binary as pgb
from common.formatting import round_money
from factors import correlation_batch
from factors.correlation_bulk_store import copy_stream_by_rows
from factors.correlation_compute import (
    CorrelationFilters,
    PositionRow,
    average_linkage,
    build_nodes,
    candidate_mask,
    cluster_distances,
    compute_correlations,
    cut_linkage,
    direction_adjusted,
    find_clusters,
    node_sums,
    pairwise_correlations,
    pairwise_metrics,
    portfolio_metrics,
    position_columns,
    stacked_complete_metrics,
)
from factors.correlation_rows import money_cents
from factors.correlation_service import _Inputs
from factors.correlation_stacked import Book, compute_books

SEED = 20261125
T = 90  # returns in the window: T + 1 closes
AS_OF = date(2026, 11, 24)
DATES = [AS_OF - timedelta(days=T - i) for i in range(T + 1)]
EARLY, LATE = "EARLY", ("LATE29", "LATE30", "LATE31")


def universe(rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """Symbols and their (T + 1) × S closes: a market factor, two tight groups (clusters) and the edge
    cases named by their symbol."""
    market = rng.normal(0, 0.01, T)
    group = rng.normal(0, 0.01, (2, T))
    symbols, returns = [], []
    for i in range(30):
        r = market * rng.uniform(-1.5, 1.5) + rng.normal(0, rng.uniform(0.002, 0.02), T)
        if i < 12:
            r = r + group[i % 2] * rng.uniform(1.0, 3.0)
        symbols.append(f"S{i:02d}")
        returns.append(r)
    for name in ("CONST", "NOPRICE", "NEG", "GAPPY", "OBS29", "OBS30", "OBS31", EARLY, *LATE):
        symbols.append(name)
        returns.append(market + group[0] * 2 + rng.normal(0, 0.004, T))
    closes = 100.0 * np.vstack([np.ones(len(symbols)), np.cumprod(1.0 + np.array(returns).T, axis=0)])
    col = {s: j for j, s in enumerate(symbols)}
    closes[:, col["CONST"]] = 50.0  # zero variance: every pair NULL
    closes[:, col["NOPRICE"]] = np.nan
    closes[40:44, col["NEG"]] = -1.0  # non-positive closes give no return
    closes[rng.random(T + 1) < 0.35, col["GAPPY"]] = np.nan
    for name, missing in (("OBS29", T - 29), ("OBS30", T - 30), ("OBS31", T - 31)):
        closes[:missing, col[name]] = np.nan  # own returns: 29, 30, 31
    closes[61:, col[EARLY]] = np.nan  # returns on days 1…60
    for name, start in zip(LATE, (31, 30, 29), strict=True):
        closes[:start, col[name]] = np.nan  # returns on days start+1…90: 29, 30, 31 shared with EARLY
    return symbols, closes


def book(rng: np.random.Generator, symbols: list[str], size: int) -> list[PositionRow]:
    names = list(rng.choice(symbols, size=size, replace=True))
    if rng.random() < 0.3:
        names += [EARLY, *LATE]
    rows = []
    for name in names:
        exposure = None if rng.random() < 0.04 else float(np.round(rng.normal(0, 60_000), 2))
        if rng.random() < 0.08 and exposure is not None:
            exposure = float(rng.uniform(-2_000, 2_000))  # below the value filter
        rows.append(
            PositionRow(
                position_id=uuid.UUID(int=int(rng.integers(1, 1 << 62))),
                underlying=str(name),
                position_type=str(rng.choice(["LONG", "SHORT", "LC", "SP"])),
                dollar_exposure=exposure,
                market_value=None if rng.random() < 0.1 else float(np.round(rng.normal(0, 50_000), 2)),
                tags=tuple(str(t) for t in rng.choice(["tech", "growth", "value"], size=int(rng.integers(0, 3)))),
                sector=[None, "Tech", "Energy", "Unknown"][int(rng.integers(0, 4))],
            )
        )
    return sorted(rows, key=lambda r: r.position_id)


def batch(seed: int, books: int) -> tuple[list[list[PositionRow]], list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    symbols, closes = universe(rng)
    sizes = [0, 1, 2, 3, *rng.integers(2, 26, books - 4).tolist()]
    return [book(rng, symbols, int(n)) for n in sizes], symbols, closes


def single_book_grid(nodes: Any, candidates: np.ndarray, columns: np.ndarray, closes: np.ndarray) -> np.ndarray:
    grid = np.full((len(DATES), len(nodes)), np.nan)
    grid[:, np.flatnonzero(candidates)] = closes[:, columns[candidates]]
    return grid


def assert_same(a: Any, b: Any, path: str = "", *, rtol: float = 0.0) -> None:
    """Equal field by field: arrays and floats bit for bit (NaN = NaN), or within rtol for floats."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        assert type(a) is type(b), path
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}", rtol=rtol)
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype, path
        if a.dtype.kind == "f":
            assert np.array_equal(np.isnan(a), np.isnan(b)), path
            np.testing.assert_allclose(a, b, rtol=rtol, atol=0.0, err_msg=path)
            if rtol == 0.0:
                assert np.array_equal(a, b, equal_nan=True), path
        else:
            assert np.array_equal(a, b), path
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]", rtol=rtol)
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isnan(a) == math.isnan(b), path
        if not math.isnan(a):
            assert a == b if rtol == 0.0 else math.isclose(a, b, rel_tol=rtol, abs_tol=0.0), (path, a, b)
    else:
        assert type(a) is type(b) and a == b, (path, a, b)


@pytest.mark.parametrize(
    "filters",
    [
        CorrelationFilters(),
        CorrelationFilters(filter_mode="either", correlation_threshold=0.5),
        CorrelationFilters(filter_mode="value_only", correlation_threshold=0.9),
    ],
)
def test_batched_books_equal_each_book_alone_and_the_former_compute(filters: CorrelationFilters) -> None:
    included: set[int] = set()
    for seed in range(4):
        books, symbols, closes = batch(SEED + seed, 70)
        column = {s: j for j, s in enumerate(symbols)}
        nodes = [build_nodes(rows) for rows in books]
        candidates = [candidate_mask(n, filters) for n in nodes]
        columns = [np.array([column[s] for s in n.symbols], dtype=np.int64) for n in nodes]
        batched = compute_books(
            [Book(n, c, j) for n, c, j in zip(nodes, candidates, columns, strict=True)], closes, DATES, filters
        )
        for rows, n, c, j, (result, rho_dir) in zip(books, nodes, candidates, columns, batched, strict=True):
            grid = single_book_grid(n, c, j, closes)
            alone = compute_correlations(n, c, grid, DATES, filters)
            assert_same(result, alone)
            assert_same(rho_dir, direction_adjusted(alone.pairs.rho, n.exposure[alone.included_index]))
            assert_same(n, ref.build_nodes(rows))
            assert_same(rho_dir, ref.direction_adjusted(alone.pairs.rho, n.exposure[alone.included_index]), rtol=1e-12)
            included.add(len(result.included_index))
    assert {0, 1, 2} <= included and max(included) >= 15


def test_the_edge_series_hit_their_cases() -> None:
    """The generated edge cases do what their names say (so the comparison above covers them)."""
    symbols, closes = universe(np.random.default_rng(SEED))
    rows = [
        PositionRow(uuid.uuid4(), s, "LONG", 50_000.0 + i, 50_000.0)
        for i, s in enumerate(["S00", "S02", "CONST", "NOPRICE", "NEG", "OBS29", "OBS30", "OBS31", EARLY, *LATE])
    ]
    nodes = build_nodes(rows)
    column = {s: j for j, s in enumerate(symbols)}
    filters = CorrelationFilters(filter_mode="value_only")
    c = candidate_mask(nodes, filters)
    j = np.array([column[s] for s in nodes.symbols])
    ((result, _),) = compute_books([Book(nodes, c, j)], closes, DATES, filters)
    obs = dict(zip(nodes.symbols, result.observations.tolist(), strict=True))
    assert (obs["OBS29"], obs["OBS30"], obs["OBS31"], obs["NOPRICE"]) == (29, 30, 31, 0)
    assert obs["NEG"] < T and obs[EARLY] == 60
    reasons = dict(zip(nodes.symbols, result.exclusion_reason, strict=True))
    assert reasons["OBS29"] == reasons["NOPRICE"] == "insufficient_history" and reasons["OBS30"] is None
    inc = [nodes.symbols[i] for i in result.included_index]
    pair = {
        (inc[u], inc[v]): (result.pairs.n[u, v], result.pairs.rho[u, v])
        for u in range(len(inc))
        for v in range(len(inc))
    }
    assert pair[(EARLY, "LATE29")][0] == 29 and np.isnan(pair[(EARLY, "LATE29")][1])
    assert pair[(EARLY, "LATE30")][0] == 30 and np.isfinite(pair[(EARLY, "LATE30")][1])
    assert pair[(EARLY, "LATE31")][0] == 31
    assert all(np.isnan(r) for (a, b), (_, r) in pair.items() if "CONST" in (a, b) and a != b)
    assert result.clusters.clusters and result.data_quality == "limited"


def test_cut_without_a_merge_below_it_is_the_cut_that_labels_nothing() -> None:
    """`cut_linkage` is None exactly when every merge height is above 1 − threshold, and the cluster
    summary is then the former code's (all singletons), also at ρ exactly 0.70 and one ulp around it."""
    rng = np.random.default_rng(SEED)
    symbols = [f"N{i}" for i in range(8)]
    tags: list[tuple[str, ...]] = [()] * 8
    sectors: list[str | None] = [None] * 8
    at = 0.7
    for trial in range(400):
        k = int(rng.integers(2, 9))
        rho = rng.uniform(-0.6, 0.69, (k, k))
        rho = (rho + rho.T) / 2
        u, v = rng.choice(k, size=2, replace=False)
        if trial % 4:
            rho[u, v] = rho[v, u] = [at, np.nextafter(at, 0.0), np.nextafter(at, 1.0)][trial % 3]
        if trial % 5 == 0:
            rho[u, (v + 1) % k if (v + 1) % k != u else v] = np.nan
        np.fill_diagonal(rho, 1.0)
        e = rng.normal(0, 1e5, k)
        z = average_linkage(cluster_distances(rho), k)
        labels = cut_linkage(z, 0.7, k)
        heights_above = bool((z[:, 2] > (1.0 - 0.7) + 1e-12).all())
        assert (labels is None) == heights_above
        got = find_clusters(rho, e, symbols[:k], tags[:k], sectors[:k], 0.7)
        former = ref.find_clusters(rho, e, symbols[:k], tags[:k], sectors[:k], 0.7)
        assert_same(got, former)
        if labels is None:
            assert got.clusters == () and got.merge_heights == tuple(z[:, 2].tolist())


def test_complete_metrics_of_a_stack_equal_the_former_metrics_book_by_book() -> None:
    rng = np.random.default_rng(SEED)
    for k in (2, 3, 7, 16, 23):
        x = rng.normal(size=(12, 60, k)) + rng.normal(size=(12, 60, 1))
        rho = np.stack([np.corrcoef(b.T) for b in x])
        e = rng.normal(0, 1e5, (12, k))
        rho[3, 0, 1] = rho[3, 1, 0] = np.nan  # a NULL pair: left to portfolio_metrics
        e[5] = 0.0  # no exposure at all
        stacked = stacked_complete_metrics(rho, e)
        symbols = [f"X{i}" for i in range(k)]
        for j in range(12):
            former = pairwise_metrics(rho[j], e[j], symbols)  # the general, pair-by-pair path
            assert_same(portfolio_metrics(rho[j], e[j], symbols), former)
            if j in (3, 5):
                assert stacked[j] is None
            else:
                assert_same(stacked[j], former)


def test_pairwise_statistics_equal_the_former_kernel_on_any_memory_layout() -> None:
    rng = np.random.default_rng(SEED)
    for trial in range(60):
        k = int(rng.integers(1, 25))
        r = rng.normal(size=(T, k)) * 0.01 + rng.normal(size=(T, 1)) * 0.01
        r[rng.random(r.shape) < 0.2] = np.nan
        if k > 2:
            r[:, 2] = 0.001  # constant
            r[:, 1] = r[:, 0]  # |ρ| = 1: p = 0
        # The single-book path passes a column selection (each series contiguous); any layout is kept.
        selected = np.column_stack([r, r[:, :1]])[:, np.arange(k)]
        for returns in (selected, np.ascontiguousarray(r), r[::2], r[:, ::-1]):
            assert_same(pairwise_correlations(returns), ref.pairwise_correlations(returns))


def test_nodes_from_rows_and_from_columns_equal_the_former_nodes() -> None:
    rng = np.random.default_rng(SEED)
    symbols = [f"S{i:02d}" for i in range(30)] + ["BRK.B", "ÄÖÜ", "a", "Z"]
    for _ in range(200):
        rows = book(rng, symbols, int(rng.integers(1, 30)))
        former = ref.build_nodes(rows)
        assert_same(build_nodes(rows), former)
        assert_same(build_nodes(position_columns(rows)), former)
        exposure = np.array([np.nan if r.dollar_exposure is None else r.dollar_exposure for r in rows])
        underlyings = [r.underlying for r in rows]
        assert_same(node_sums(underlyings, exposure), ref.node_sums(underlyings, exposure))


def test_money_cents_equal_round_money() -> None:
    rng = np.random.default_rng(SEED)
    values = np.concatenate(
        [
            rng.normal(0, 1e5, 20_000),
            np.round(rng.normal(0, 1e5, 5_000), 2),
            np.round(rng.normal(0, 1e5, 5_000), 2) + 0.005,  # half cents: ties on the repr
            np.round(rng.normal(0, 1e3, 5_000), 3),
            [0.125, -2.675, 1.005, 1.015, -0.005, 0.005, 2.5e-3, -0.0, 0.0, 1e15 + 0.5, 9e16, -9e16],
            [687194767.355, 687194767.365, 123456789012.345, 5e-324, math.nan, math.inf, -math.inf],
        ]
    )
    cents, nulls = money_cents(values)
    for v, c, null in zip(values.tolist(), cents.tolist(), nulls.tolist(), strict=True):
        expected = round_money(v)
        assert null == (expected is None), v
        if expected is not None:
            assert Decimal(c).scaleb(-2) == expected, (v, c, expected)


def test_copy_stream_by_rows_is_the_copy_stream() -> None:
    rng = np.random.default_rng(SEED)
    counts = [5, 0, 1, 40, 3]
    n = sum(counts)
    values = rng.normal(size=n)
    values[::7] = np.nan
    columns = (
        pgb.uuids([uuid.uuid4() for _ in counts]),
        pgb.array(pgb.text([f"A{i}é" if i % 4 else "" for i in range(n)]), counts, pgb.OID_TEXT),
        pgb.array(pgb.float8(values), counts, pgb.OID_FLOAT8),
        pgb.array(pgb.int2(np.arange(n) % 300), counts, pgb.OID_INT2),
    )
    assert copy_stream_by_rows(*columns) == pgb.copy_stream(*columns)


def test_compute_pass_falls_back_to_each_book_alone_and_isolates_a_failing_book(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should the stacked compute raise, every book is computed alone (same numbers) and only a book
    whose own compute raises is left to be redone by the per-portfolio path."""
    books, symbols, closes = batch(SEED, 12)
    filters = CorrelationFilters()
    inputs = {}
    for rows in books:
        nodes = build_nodes(rows)
        inputs[uuid.uuid4()] = _Inputs(nodes, candidate_mask(nodes, filters), None)
    compute = [pid for pid, i in inputs.items() if int(i.candidates.sum()) >= 2]
    wanted = sorted({s for pid in compute for s in inputs[pid].wanted()})
    grid = closes[:, [symbols.index(s) for s in wanted]]
    column = {s: j for j, s in enumerate(wanted)}
    args = (inputs, compute, DATES, grid, column, filters, AS_OF, 90)
    stacked, failed = correlation_batch._compute_all(*args)
    assert not failed and [c.portfolio_id for c in stacked] == compute

    def broken(*a: Any, **k: Any) -> Any:
        raise RuntimeError("stacked compute failed")

    monkeypatch.setattr(correlation_batch, "compute_books", broken)
    alone, failed = correlation_batch._compute_all(*args)
    assert not failed
    for a, b in zip(stacked, alone, strict=True):
        assert_same(a.result, b.result)
        assert_same(a.rho_dir, b.rho_dir)
        assert a.portfolio_id == b.portfolio_id and a.digest == b.digest

    single = correlation_batch._compute

    def failing_one(nodes: Any, *a: Any, **k: Any) -> Any:
        if nodes is inputs[compute[1]].nodes:
            raise RuntimeError("this book fails")
        return single(nodes, *a, **k)

    monkeypatch.setattr(correlation_batch, "_compute", failing_one)
    partial, failed = correlation_batch._compute_all(*args)
    assert failed == [compute[1]] and [c.portfolio_id for c in partial] == [p for p in compute if p != compute[1]]
