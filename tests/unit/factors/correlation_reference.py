"""The kernels of the per-portfolio position-correlation compute that the stacked batch path replaced,
as they were before it (frozen copies; the functions it left unchanged are imported from
factors.correlation_compute): the reference the new kernels are compared with in
test_correlation_stacked. Books are compared end to end batched against single-book instead."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import numpy as np
from scipy import special
from scipy.cluster import _hierarchy
from scipy.cluster.hierarchy import _LINKAGE_METHODS
from scipy.spatial.distance import squareform

from factors.correlation_compute import (
    _CUT_TOLERANCE,
    POS_CORR_MIN_OVERLAP,
    Cluster,
    ClusterSummary,
    Nodes,
    NodeSums,
    PairStats,
    PositionRow,
    _nickname,
)

_AVERAGE = _LINKAGE_METHODS["average"]


def node_sums(underlyings: Sequence[str], exposure: np.ndarray) -> NodeSums:
    """Positions (in position order) → node symbols (sorted), e_u (bincount sums in position order) and G.

    `build_nodes` and the batch's reuse check both go through here, so the inputs hash of a stored
    calculation and of its re-check are computed from bit-identical numbers."""
    symbols, inverse = np.unique(np.asarray(underlyings, dtype=str), return_inverse=True)
    k = len(symbols)
    has_e = np.isfinite(exposure)
    node_e = np.bincount(inverse, weights=np.where(has_e, exposure, 0.0), minlength=k)
    node_has_e = np.bincount(inverse, weights=has_e.astype(float), minlength=k) > 0
    gross = float(np.abs(exposure[has_e]).sum())
    return NodeSums(symbols.tolist(), node_e, node_has_e, gross, inverse)


def build_nodes(positions: Sequence[PositionRow]) -> Nodes:
    """Group positions by underlying: e_u = Σ E_i, MV_u = Σ MV_i (vectorised sums)."""
    if not positions:
        empty = np.zeros(0)
        return Nodes([], empty, empty, np.zeros(0, dtype=bool), [], [], [], [], 0.0)
    exposure = np.array([np.nan if p.dollar_exposure is None else p.dollar_exposure for p in positions], dtype=float)
    mv = np.array([np.nan if p.market_value is None else p.market_value for p in positions], dtype=float)
    sums = node_sums([p.underlying for p in positions], exposure)
    inverse, k = sums.inverse, len(sums)
    has_mv = np.isfinite(mv)
    node_mv = np.bincount(inverse, weights=np.where(has_mv, mv, 0.0), minlength=k)
    node_mv[np.bincount(inverse, weights=has_mv.astype(float), minlength=k) == 0] = np.nan
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(k + 1))
    ids: list[list[UUID]] = []
    types: list[list[str]] = []
    tags: list[tuple[str, ...]] = []
    sectors: list[str | None] = []
    starts, ends, members_order = bounds[:-1].tolist(), bounds[1:].tolist(), order.tolist()
    for lo, hi in zip(starts, ends, strict=True):
        if hi - lo == 1:  # most nodes hold one position: the same values without the set/generator work
            m = positions[members_order[lo]]
            ids.append([m.position_id])
            types.append([m.position_type])
            tags.append(tuple(sorted(set(m.tags))))
            sectors.append(m.sector or None)
            continue
        members = [positions[i] for i in members_order[lo:hi]]
        ids.append([m.position_id for m in members])
        types.append(sorted({m.position_type for m in members}))
        tags.append(tuple(sorted({t for m in members for t in m.tags})))
        sectors.append(next((m.sector for m in members if m.sector), None))
    return Nodes(
        symbols=sums.symbols,
        exposure=sums.exposure,
        market_value=node_mv,
        has_exposure=sums.has_exposure,
        position_ids=ids,
        position_types=types,
        tags=tags,
        sectors=sectors,
        gross=sums.gross,
    )


def pairwise_correlations(returns: np.ndarray, *, min_overlap: int = POS_CORR_MIN_OVERLAP) -> PairStats:
    """Pearson ρ of every pair on the dates both have returns (pairwise deletion), as matrix products.

    Equals pandas `DataFrame.corr(min_periods=min_overlap)`. Pairs with fewer common observations, or a
    constant series on the common dates, are NaN. t = ρ√(n−2)/√(1−ρ²) and the two-sided Student-t
    p-value on n − 2 degrees of freedom use the same aligned sample."""
    r = np.asarray(returns, dtype=float)
    k = r.shape[1]
    mask = np.isfinite(r)
    m = mask.astype(float)
    # Correlation is shift-invariant per series: centring each column on its own mean first keeps the
    # sums of the pairwise formula small and free of cancellation.
    counts = m.sum(axis=0)
    col_mean = np.divide(np.where(mask, r, 0.0).sum(axis=0), counts, out=np.zeros(k), where=counts > 0)
    x = np.where(mask, r - col_mean, 0.0)
    n = m.T @ m
    sx = x.T @ m  # sx[u, v] = Σ over common dates of x_u
    sxx = (x * x).T @ m
    sxy = x.T @ x
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sxy - sx * sx.T / n
        var_u = sxx - sx * sx / n
        var_v = var_u.T
        rho = cov / np.sqrt(var_u * var_v)
    valid = (n >= min_overlap) & (var_u > 0) & (var_v > 0) & np.isfinite(rho)
    rho = np.where(valid, np.clip(rho, -1.0, 1.0), np.nan)
    np.fill_diagonal(rho, np.where(np.diag(n) >= min_overlap, 1.0, np.nan))
    n_int = np.rint(n).astype(np.int64)
    dof = np.where(n > 2, n - 2.0, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        # |ρ| = 1 gives t = ±inf and p = 0; NULL pairs stay NaN.
        t_stat = rho * np.sqrt(dof) / np.sqrt(1.0 - rho * rho)
    # stats.t.sf(x, df) is special.stdtr(df, -x) behind per-call argument handling (0 at x = inf,
    # NaN for NaN, as stdtr gives): the ufunc directly returns the same numbers.
    p = np.where(np.isnan(rho), np.nan, 2.0 * special.stdtr(dof, -np.abs(t_stat)))
    np.fill_diagonal(p, np.nan)
    np.fill_diagonal(t_stat, np.nan)
    return PairStats(rho=rho, n=n_int, p_value=p, t_stat=t_stat)


def direction_adjusted(rho: np.ndarray, exposure: np.ndarray) -> np.ndarray:
    """ρ^dir_uv = sign(e_u)·sign(e_v)·ρ_uv: a long and a short in co-moving names hedge each other."""
    s = np.sign(np.asarray(exposure, dtype=float))
    out = rho * np.outer(s, s)
    np.fill_diagonal(out, np.where(np.isnan(np.diag(rho)), np.nan, 1.0))
    return np.asarray(out)


def cluster_labels(rho: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Average-linkage labels on d = 1 − ρ cut at 1 − threshold, and the linkage merge heights.

    A NULL pair counts as ρ = 0 (no evidence of co-movement); negative ρ gives d > 1, so hedges are
    never "similar"."""
    k = rho.shape[0]
    if k < 2:
        return np.arange(1, k + 1), np.zeros(0)
    d = 1.0 - np.where(np.isnan(rho), 0.0, rho)
    d = np.clip((d + d.T) / 2.0, 0.0, 2.0)
    np.fill_diagonal(d, 0.0)
    z = _average_linkage(squareform(d, checks=False), k)
    labels = np.zeros(k, dtype=np.int32)
    _hierarchy.cluster_dist(z, labels, float((1.0 - threshold) + _CUT_TOLERANCE), k)
    return labels, np.asarray(z[:, 2])


def _average_linkage(y: np.ndarray, k: int) -> np.ndarray:
    """`linkage(y, "average")` without its input validation (d is finite, symmetric and non-negative by
    construction; the checks cost more than the clustering of a 20-node book). The same compiled
    routines as `linkage` + `fcluster(criterion="distance")` (tests/unit/factors compares them)."""
    return np.asarray(_hierarchy.nn_chain(np.ascontiguousarray(y, dtype=np.float64), k, _AVERAGE))


def find_clusters(
    rho: np.ndarray,
    exposure: np.ndarray,
    symbols: Sequence[str],
    tags: Sequence[Sequence[str]],
    sectors: Sequence[str | None],
    threshold: float,
) -> ClusterSummary:
    """Clusters of ≥ 2 nodes with avg ρ, gross, net, shares, each member's mean ρ with the *other*
    members, a nickname, and concentration_gross/net = Σ clusters gross or |net| / Σ|e| of the nodes."""
    e = np.asarray(exposure, dtype=float)
    k = len(e)
    abs_e = np.abs(e)
    g_nodes = float(abs_e.sum())
    if k < 2:
        return ClusterSummary((), 0.0 if g_nodes > 0 else None, 0.0 if g_nodes > 0 else None)
    labels, heights = cluster_labels(rho, threshold)
    uniq, inverse = np.unique(labels, return_inverse=True)
    indicator = np.zeros((k, len(uniq)))
    indicator[np.arange(k), inverse] = 1.0
    sizes = indicator.sum(axis=0)
    valid = np.isfinite(rho).astype(float)
    np.fill_diagonal(valid, 0.0)
    r0 = np.where(np.isfinite(rho), rho, 0.0)
    np.fill_diagonal(r0, 0.0)
    # Within-cluster sums of ρ and counts of valid pairs (each unordered pair counted twice).
    within_sum = np.einsum("ic,ij,jc->c", indicator, r0, indicator)
    within_n = np.einsum("ic,ij,jc->c", indicator, valid, indicator)
    member_sum = (r0 @ indicator)[np.arange(k), inverse]
    member_n = (valid @ indicator)[np.arange(k), inverse]
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = np.where(within_n > 0, within_sum / within_n, np.nan)
        to_cluster = np.where(member_n > 0, member_sum / member_n, np.nan)
    gross = abs_e @ indicator
    net = e @ indicator
    chosen = [c for c in np.argsort(-gross, kind="stable") if sizes[c] >= 2]
    clusters: list[Cluster] = []
    for number, c in enumerate(chosen, start=1):
        members = sorted(np.flatnonzero(inverse == c).tolist(), key=lambda m: (-abs_e[m], symbols[m]))
        nickname, source = _nickname(members, abs_e, symbols, tags, sectors)
        clusters.append(
            Cluster(
                number=number,
                symbols=tuple(symbols[m] for m in members),
                exposures=tuple(float(e[m]) for m in members),
                member_share_of_gross=tuple(float(abs_e[m] / g_nodes) if g_nodes > 0 else None for m in members),
                correlation_to_cluster=tuple(
                    None if np.isnan(to_cluster[m]) else float(to_cluster[m]) for m in members
                ),
                avg_correlation=None if np.isnan(avg[c]) else float(avg[c]),
                gross=float(gross[c]),
                net=float(net[c]),
                share_of_gross=float(gross[c] / g_nodes) if g_nodes > 0 else None,
                nickname=nickname,
                nickname_source=source,
            )
        )
    conc_gross = float(sum(cl.gross for cl in clusters) / g_nodes) if g_nodes > 0 else None
    conc_net = float(sum(abs(cl.net) for cl in clusters) / g_nodes) if g_nodes > 0 else None
    return ClusterSummary(tuple(clusters), conc_gross, conc_net, tuple(float(h) for h in heights))
