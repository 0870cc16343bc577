"""The fast paths of the correlations compute return exactly what the reference computations return.

`cluster_labels` calls scipy's compiled linkage/cut routines without the public wrappers' validation,
the p-values use `special.stdtr` instead of `stats.t.sf`, `build_nodes` skips the set/generator work
for one-position nodes, `inputs_hash` hashes the joined node parts and the batch's reuse check hashes
`node_sums` of the light read: each is compared with the reference on generated books.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import date

import numpy as np
from scipy import stats
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from factors.correlation_compute import (
    ENGINE_VERSION,
    CorrelationFilters,
    PositionRow,
    build_nodes,
    candidate_mask,
    cluster_labels,
    inputs_hash,
    node_sums,
    pairwise_correlations,
    upper_pairs,
)

RNG_SEED = 20261124
SYMBOLS = [f"S{i:02d}" for i in range(30)]


def _book(rng: np.random.Generator, n: int) -> list[PositionRow]:
    rows = [
        PositionRow(
            position_id=uuid.UUID(int=int(rng.integers(1, 1 << 62))),
            underlying=SYMBOLS[int(rng.integers(0, 20))],
            position_type=str(rng.choice(["LONG", "SHORT", "LC", "SP"])),
            dollar_exposure=None if rng.random() < 0.05 else float(np.round(rng.normal() * 50_000, 2)),
            market_value=None if rng.random() < 0.1 else float(np.round(rng.normal() * 40_000, 2)),
            tags=tuple(str(t) for t in rng.choice(["tech", "growth", "b", "a"], size=int(rng.integers(0, 3)))),
            sector=[None, "", "Tech", "Energy", "Unknown"][int(rng.integers(0, 5))],
        )
        for _ in range(n)
    ]
    return sorted(rows, key=lambda r: r.position_id)


def _reference_lists(rows: list[PositionRow], symbols: list[str]) -> tuple[list, list, list, list]:
    """The per-node lists as build_nodes built them for every node (members in position order)."""
    ids, types, tags, sectors = [], [], [], []
    for sym in symbols:
        members = [r for r in rows if r.underlying == sym]
        ids.append([m.position_id for m in members])
        types.append(sorted({m.position_type for m in members}))
        tags.append(tuple(sorted({t for m in members for t in m.tags})))
        sectors.append(next((m.sector for m in members if m.sector), None))
    return ids, types, tags, sectors


def _reference_hash(nodes, filters: CorrelationFilters, as_of: date, days: int, candidates: np.ndarray) -> bytes:
    h = hashlib.sha256()
    h.update(
        f"{ENGINE_VERSION}|{as_of.isoformat()}|{days}|{filters.min_position_value}|"
        f"{filters.min_portfolio_weight!r}|{filters.filter_mode}|{filters.correlation_threshold!r}|"
        f"{round(nodes.gross * 100)}".encode()
    )
    cents = np.rint(nodes.exposure * 100).astype(np.int64)
    for sym, c, cand in zip(nodes.symbols, cents.tolist(), candidates.tolist(), strict=True):
        h.update(f"|{sym}:{c}:{int(cand)}".encode())
    return h.digest()


def test_nodes_and_hash_match_the_reference_and_the_light_sums() -> None:
    rng = np.random.default_rng(RNG_SEED)
    filters, as_of = CorrelationFilters(filter_mode="either"), date(2026, 11, 24)
    for _ in range(300):
        rows = _book(rng, int(rng.integers(1, 30)))
        nodes = build_nodes(rows)
        assert (nodes.position_ids, nodes.position_types, nodes.tags, nodes.sectors) == _reference_lists(
            rows, nodes.symbols
        )
        candidates = candidate_mask(nodes, filters)
        digest = inputs_hash(nodes, filters, as_of=as_of, duration_days=90, candidates=candidates)
        assert digest == _reference_hash(nodes, filters, as_of, 90, candidates)
        exposure = np.array([np.nan if r.dollar_exposure is None else r.dollar_exposure for r in rows])
        sums = node_sums([r.underlying for r in rows], exposure)
        assert sums.symbols == nodes.symbols and sums.gross == nodes.gross
        assert np.array_equal(sums.exposure, nodes.exposure)
        light = candidate_mask(sums, filters)
        assert np.array_equal(light, candidates)
        assert inputs_hash(sums, filters, as_of=as_of, duration_days=90, candidates=light) == digest


def test_cluster_labels_equal_scipy_linkage_and_fcluster() -> None:
    rng = np.random.default_rng(RNG_SEED)
    for trial in range(500):
        k = int(rng.integers(2, 25))
        x = rng.normal(size=(60, k))
        x[:, : k // 2] += rng.normal(size=(60, 1)) * rng.uniform(0, 3)
        rho = np.corrcoef(x.T)
        if trial % 3 == 0:
            rho[rng.random((k, k)) < 0.1] = np.nan
        threshold = float(rng.choice([0.3, 0.5, 0.7, 0.9]))
        d = 1.0 - np.where(np.isnan(rho), 0.0, rho)
        d = np.clip((d + d.T) / 2.0, 0.0, 2.0)
        np.fill_diagonal(d, 0.0)
        z = linkage(squareform(d, checks=False), method="average")
        expected = fcluster(z, t=(1.0 - threshold) + 1e-12, criterion="distance")
        labels, heights = cluster_labels(rho, threshold)
        assert np.array_equal(labels, expected) and np.array_equal(heights, z[:, 2])


def test_p_values_equal_student_t_sf() -> None:
    rng = np.random.default_rng(RNG_SEED)
    returns = rng.normal(size=(90, 12)) + rng.normal(size=(90, 1))
    returns[rng.random(returns.shape) < 0.4] = np.nan
    returns[:, 3] = returns[:, 2]  # |ρ| = 1: t = ±inf, p = 0
    pairs = pairwise_correlations(returns)
    dof = np.where(pairs.n > 2, pairs.n - 2.0, 1.0)
    expected = np.where(np.isnan(pairs.rho), np.nan, 2.0 * stats.t.sf(np.abs(pairs.t_stat), dof))
    np.fill_diagonal(expected, np.nan)
    assert np.array_equal(pairs.p_value, expected, equal_nan=True)
    assert pairs.p_value[2, 3] == 0.0 and np.isnan(pairs.p_value).sum() > 12


def test_upper_pairs_are_triu_indices_and_read_only() -> None:
    rows, cols = upper_pairs(7)
    expected = np.triu_indices(7, 1)
    assert np.array_equal(rows, expected[0]) and np.array_equal(cols, expected[1])
    assert not rows.flags.writeable and upper_pairs(7)[0] is rows
