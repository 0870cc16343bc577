"""Position correlations (calculations.md §7.2–7.3): pure, vectorised numpy/scipy, no I/O, no clock.

Nodes are underlyings: an option joins its underlying and a node's exposure is the signed sum of its
positions' delta-adjusted `dollar_exposure`. Nodes enter by |e| ≥ $10,000 and/or |e|/G ≥ 1 %
(`filter_mode`), returns are simple daily returns on adjusted closes over the last `duration_days`
trading days (a return exists only when both closes exist; nothing is forward-filled), pairs are
Pearson on their common dates with at least 30 of them (NULL otherwise, never 0), and clusters are
average linkage on 1 − ρ cut at 1 − threshold.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal
from uuid import UUID

import numpy as np
from scipy import special, stats
from scipy.cluster import _hierarchy
from scipy.cluster.hierarchy import _LINKAGE_METHODS

ENGINE_VERSION = "correlations-1.0"
FilterMode = Literal["value_only", "weight_only", "both", "either"]
FILTER_MODES: tuple[str, ...] = ("value_only", "weight_only", "both", "either")
DataQuality = Literal["sufficient", "limited", "insufficient"]

POS_CORR_WINDOW = 90
POS_CORR_MIN_OVERLAP = 30
CORR_MIN_POSITION_VALUE = Decimal("10000")
CORR_MIN_WEIGHT = 0.01
CLUSTER_THRESHOLD = 0.70
NICKNAME_SHARE = 0.70
MIN_DURATION_DAYS, MAX_DURATION_DAYS = 30, 252
# Slack on the cut so that a merge exactly at 1 − threshold (e.g. ρ = 0.7) is inside the cluster.
_CUT_TOLERANCE = 1e-12
_AVERAGE = _LINKAGE_METHODS["average"]

BELOW_FILTER = "below_filter"
INSUFFICIENT_HISTORY = "insufficient_history"
MISSING_EXPOSURE = "missing_exposure"


@dataclass(frozen=True)
class CorrelationFilters:
    """Node inclusion filter and clustering threshold (api.md #43 `position_filters`)."""

    min_position_value: Decimal = CORR_MIN_POSITION_VALUE
    min_portfolio_weight: float = CORR_MIN_WEIGHT
    filter_mode: FilterMode = "both"
    correlation_threshold: float = CLUSTER_THRESHOLD


@dataclass(frozen=True)
class PositionRow:
    """One valued position at the as-of date (ingest.api_position_valuation + tags + sector)."""

    position_id: UUID
    underlying: str
    position_type: str
    dollar_exposure: float | None  # signed delta-adjusted exposure E, USD; None when not computable
    market_value: float | None  # signed, USD
    tags: tuple[str, ...] = ()
    sector: str | None = None


@dataclass
class Nodes:
    """Positions grouped by underlying, in symbol order."""

    symbols: list[str]
    exposure: np.ndarray  # e_u = Σ E_i (USD, signed); 0 when no position has an exposure
    market_value: np.ndarray  # Σ MV_i (USD, signed); NaN when no position has one
    has_exposure: np.ndarray  # bool: at least one position of the node has a dollar_exposure
    position_ids: list[list[UUID]]
    position_types: list[list[str]]
    tags: list[tuple[str, ...]]
    sectors: list[str | None]
    gross: float  # G = Σ|E_i| over every priced position of the portfolio

    def __len__(self) -> int:
        return len(self.symbols)


@dataclass(frozen=True)
class PairStats:
    """Pairwise Pearson statistics on aligned samples (K × K, or B × K × K for a stack; NaN where NULL)."""

    rho: np.ndarray
    n: np.ndarray  # common observations of each pair (int); diagonal = the series' own count
    p_value: np.ndarray
    t_stat: np.ndarray


@dataclass(frozen=True)
class PortfolioMetrics:
    """§7.3 portfolio-level metrics (None when undefined)."""

    average_correlation: float | None
    weighted_average_correlation: float | None
    direction_adjusted_correlation: float | None
    effective_positions_hhi: float | None
    effective_positions_corr: float | None
    valid_pairs: int
    null_pairs: int
    dropped_for_effective: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cluster:
    """One cluster of ≥ 2 nodes (members in descending |e|)."""

    number: int
    symbols: tuple[str, ...]
    exposures: tuple[float, ...]
    member_share_of_gross: tuple[float | None, ...]
    correlation_to_cluster: tuple[float | None, ...]
    avg_correlation: float | None
    gross: float
    net: float
    share_of_gross: float | None
    nickname: str
    nickname_source: Literal["tag", "sector", "largest_position"]


@dataclass(frozen=True)
class ClusterSummary:
    """Clusters and the concentration they imply."""

    clusters: tuple[Cluster, ...]
    concentration_gross: float | None
    concentration_net: float | None
    merge_heights: tuple[float, ...] = ()


@dataclass
class CorrelationResult:
    """Everything one calculation stores."""

    nodes: Nodes
    included: np.ndarray  # bool per node
    exclusion_reason: list[str | None]
    observations: np.ndarray  # returns in the window per node (int)
    included_index: np.ndarray  # indices of included nodes in node order (= matrix order)
    pairs: PairStats  # over included nodes
    metrics: PortfolioMetrics
    clusters: ClusterSummary
    data_quality: DataQuality
    window_start: date | None
    window_end: date | None
    gross_nodes: float  # Σ|e_u| over included nodes
    flags: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- nodes and the inclusion filter


@dataclass(frozen=True)
class NodeSums:
    """The numbers of a portfolio's nodes (no per-node lists): enough to filter and hash its inputs."""

    symbols: list[str]
    exposure: np.ndarray  # e_u = Σ E_i (USD, signed); 0 when no position has an exposure
    has_exposure: np.ndarray  # bool: at least one position of the node has a dollar_exposure
    gross: float  # G = Σ|E_i| over every priced position of the portfolio
    inverse: np.ndarray  # node index of each position

    def __len__(self) -> int:
        return len(self.symbols)


def node_sums(underlyings: Sequence[str], exposure: np.ndarray) -> NodeSums:
    """Positions (in position order) → node symbols (sorted), e_u (bincount sums in position order) and G.

    `build_nodes` and the batch's reuse check both go through here, so the inputs hash of a stored
    calculation and of its re-check are computed from bit-identical numbers."""
    # np.unique's symbols and inverse (str order is code-point order, as numpy's), without its sort of
    # a fixed-width string array.
    symbols = sorted(set(underlyings))
    index = {sym: i for i, sym in enumerate(symbols)}
    inverse = np.array([index[u] for u in underlyings], dtype=np.intp)
    k = len(symbols)
    has_e = np.isfinite(exposure)
    node_e = np.bincount(inverse, weights=np.where(has_e, exposure, 0.0), minlength=k)
    node_has_e = np.bincount(inverse, weights=has_e.astype(float), minlength=k) > 0
    gross = float(np.abs(exposure[has_e]).sum())
    return NodeSums(symbols, node_e, node_has_e, gross, inverse)


@dataclass(frozen=True)
class PositionColumns:
    """A portfolio's valued positions as columns (the batch's read: one row of arrays per portfolio)."""

    position_ids: Sequence[UUID]
    underlyings: Sequence[str]
    position_types: Sequence[str]
    dollar_exposure: np.ndarray  # signed delta-adjusted exposure E, USD; NaN when not computable
    market_value: np.ndarray  # signed, USD; NaN when missing
    tags: Sequence[Sequence[str]]
    sectors: Sequence[str | None]

    def __len__(self) -> int:
        return len(self.position_ids)


def position_columns(positions: Sequence[PositionRow]) -> PositionColumns:
    """Rows (the single-portfolio read) as the columns the batch reads."""
    return PositionColumns(
        position_ids=[p.position_id for p in positions],
        underlyings=[p.underlying for p in positions],
        position_types=[p.position_type for p in positions],
        dollar_exposure=np.array([np.nan if p.dollar_exposure is None else p.dollar_exposure for p in positions]),
        market_value=np.array([np.nan if p.market_value is None else p.market_value for p in positions]),
        tags=[p.tags for p in positions],
        sectors=[p.sector for p in positions],
    )


def build_nodes(positions: Sequence[PositionRow] | PositionColumns) -> Nodes:
    """Group positions (rows, or the columns of the batch's read) by underlying: e_u = Σ E_i,
    MV_u = Σ MV_i (vectorised sums)."""
    if not len(positions):
        empty = np.zeros(0)
        return Nodes([], empty, empty, np.zeros(0, dtype=bool), [], [], [], [], 0.0)
    cols = positions if isinstance(positions, PositionColumns) else position_columns(positions)
    exposure = np.asarray(cols.dollar_exposure, dtype=float)
    mv = np.asarray(cols.market_value, dtype=float)
    sums = node_sums(cols.underlyings, exposure)
    inverse, k = sums.inverse, len(sums)
    has_mv = np.isfinite(mv)
    node_mv = np.bincount(inverse, weights=np.where(has_mv, mv, 0.0), minlength=k)
    node_mv[np.bincount(inverse, weights=has_mv.astype(float), minlength=k) == 0] = np.nan
    order = np.argsort(inverse, kind="stable").tolist()
    pids, ptypes, ptags, psectors = cols.position_ids, cols.position_types, cols.tags, cols.sectors
    ids: list[list[UUID]]
    types: list[list[str]]
    tags: list[tuple[str, ...]]
    sectors: list[str | None]
    if k == len(order):  # one position per node (the common book): no grouping work
        ids = [[pids[i]] for i in order]
        types = [[ptypes[i]] for i in order]
        tags = [tuple(sorted(set(ptags[i]))) if ptags[i] else () for i in order]
        sectors = [psectors[i] or None for i in order]
    else:
        ids, types, tags, sectors = [], [], [], []
        bounds = np.searchsorted(inverse[order], np.arange(k + 1)).tolist()
        for lo, hi in itertools.pairwise(bounds):
            members = order[lo:hi]
            ids.append([pids[i] for i in members])
            types.append(sorted({ptypes[i] for i in members}))
            tags.append(tuple(sorted({t for i in members for t in ptags[i]})))
            sectors.append(next((psectors[i] for i in members if psectors[i]), None))
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


def passes_filter(
    exposure: np.ndarray,
    gross: float,
    *,
    min_value: float,
    min_weight: float,
    mode: str,
) -> np.ndarray:
    """Boolean mask of nodes passing |e| ≥ min_value and/or |e|/G ≥ min_weight (per `mode`)."""
    abs_e = np.abs(np.asarray(exposure, dtype=float))
    value_ok = abs_e >= min_value
    weight_ok = (abs_e / gross >= min_weight) if gross > 0 else np.zeros(abs_e.shape, dtype=bool)
    if mode == "value_only":
        mask = value_ok
    elif mode == "weight_only":
        mask = weight_ok
    elif mode == "either":
        mask = value_ok | weight_ok
    elif mode == "both":
        mask = value_ok & weight_ok
    else:
        raise ValueError(f"unknown filter_mode {mode!r}")
    return np.asarray(mask & (abs_e > 0), dtype=bool)


def candidate_mask(nodes: Nodes | NodeSums, filters: CorrelationFilters) -> np.ndarray:
    """Nodes that pass the inclusion filter (before the history check)."""
    return passes_filter(
        nodes.exposure,
        nodes.gross,
        min_value=float(filters.min_position_value),
        min_weight=filters.min_portfolio_weight,
        mode=filters.filter_mode,
    )


def inputs_hash(
    nodes: Nodes | NodeSums, filters: CorrelationFilters, *, as_of: date, duration_days: int, candidates: np.ndarray
) -> bytes:
    """SHA-256 of the date, window, filters, G and every node's (symbol, exposure in cents, candidate)."""
    h = hashlib.sha256()
    h.update(
        f"{ENGINE_VERSION}|{as_of.isoformat()}|{duration_days}|{filters.min_position_value}|"
        f"{filters.min_portfolio_weight!r}|{filters.filter_mode}|{filters.correlation_threshold!r}|"
        f"{round(nodes.gross * 100)}".encode()
    )
    cents = np.rint(nodes.exposure * 100).astype(np.int64)
    # One update of the joined node parts: the same bytes as one update per node (SHA-256 is streaming).
    h.update(
        "".join(
            f"|{sym}:{c}:{int(cand)}"
            for sym, c, cand in zip(nodes.symbols, cents.tolist(), candidates.tolist(), strict=True)
        ).encode()
    )
    return h.digest()


# ---------------------------------------------------------------- returns and pairwise statistics


def simple_returns(closes: np.ndarray) -> np.ndarray:
    """(T+1) × K adjusted closes on consecutive trading days (NaN = missing) → T × K simple returns.

    r_t = A_t / A_prev(t) − 1 only where both closes exist and are positive; NaN otherwise (no
    forward fill, no zero substitution, a gap is never booked to one day)."""
    closes = np.asarray(closes, dtype=float)
    if closes.shape[0] < 2:
        return np.zeros((0, closes.shape[1] if closes.ndim == 2 else 0))
    prev, cur = closes[:-1], closes[1:]
    ok = np.isfinite(prev) & np.isfinite(cur) & (prev > 0) & (cur > 0)
    out = np.full(cur.shape, np.nan)
    np.divide(cur, prev, out=out, where=ok)
    out[ok] -= 1.0
    return out


def pairwise_correlations(returns: np.ndarray, *, min_overlap: int = POS_CORR_MIN_OVERLAP) -> PairStats:
    """Pearson ρ of every pair on the dates both have returns (pairwise deletion), as matrix products.

    Equals pandas `DataFrame.corr(min_periods=min_overlap)`. Pairs with fewer common observations, or a
    constant series on the common dates, are NaN. t = ρ√(n−2)/√(1−ρ²) and the two-sided Student-t
    p-value on n − 2 degrees of freedom use the same aligned sample."""
    series = np.asarray(returns, dtype=float).T  # K × T, a view: the caller's memory layout is kept
    stacked = stacked_pair_statistics(series[None], min_overlap=min_overlap)
    return PairStats(rho=stacked.rho[0], n=stacked.n[0], p_value=stacked.p_value[0], t_stat=stacked.t_stat[0])


def stacked_pair_statistics(series: np.ndarray, *, min_overlap: int = POS_CORR_MIN_OVERLAP) -> PairStats:
    """`pairwise_correlations` of B books at once: series B × K × T (each book's K return series, one
    row per series), statistics B × K × K.

    One code path for one book (B = 1) and a batch: every step is elementwise, a sum over a series'
    dates, or a per-book matrix product, so each book's numbers are bit for bit those it gets alone
    when the books have the same memory layout. The layout matters (BLAS sums a product in an order
    that depends on which operand is transposed) and is kept as given: the single-book path passes a
    column selection of its returns, i.e. each series contiguous, as the batch's rows are."""
    xs = np.asarray(series, dtype=float)
    b, k = xs.shape[0], xs.shape[1]
    mask = np.isfinite(xs)
    m = mask.astype(float)
    # Correlation is shift-invariant per series: centring each series on its own mean first keeps the
    # sums of the pairwise formula small and free of cancellation.
    counts = m.sum(axis=2)
    mean = np.divide(np.where(mask, xs, 0.0).sum(axis=2), counts, out=np.zeros((b, k)), where=counts > 0)
    x = np.where(mask, xs - mean[:, :, None], 0.0)
    x_t, m_t = x.transpose(0, 2, 1), m.transpose(0, 2, 1)
    n = m @ m_t
    sx = x @ m_t  # sx[u, v] = Σ over common dates of x_u
    sxx = (x * x) @ m_t
    sxy = x @ x_t
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sxy - sx * sx.transpose(0, 2, 1) / n
        var_u = sxx - sx * sx / n
        var_v = var_u.transpose(0, 2, 1)
        rho = cov / np.sqrt(var_u * var_v)
    valid = (n >= min_overlap) & (var_u > 0) & (var_v > 0) & np.isfinite(rho)
    rho = np.where(valid, np.clip(rho, -1.0, 1.0), np.nan)
    diag = np.arange(k)
    rho[:, diag, diag] = np.where(n[:, diag, diag] >= min_overlap, 1.0, np.nan)
    n_int = np.rint(n).astype(np.int64)
    dof = np.where(n > 2, n - 2.0, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        # |ρ| = 1 gives t = ±inf and p = 0; NULL pairs stay NaN.
        t_stat = rho * np.sqrt(dof) / np.sqrt(1.0 - rho * rho)
    t_stat[:, diag, diag] = np.nan
    return PairStats(rho=rho, n=n_int, p_value=_two_sided_p(t_stat, dof), t_stat=t_stat)


def _two_sided_p(t_stat: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """2·P(T_dof > |t|) of each pair (NaN where t is NaN: NULL pairs and the diagonal).

    stats.t.sf(x, df) is special.stdtr(df, -x) behind per-call argument handling (0 at x = inf, NaN
    for NaN, as stdtr gives): the ufunc directly returns the same numbers. It is the costliest call of
    the pair statistics, so it runs once per valid pair u < v when t is symmetric (it is whenever the
    product sums are, i.e. normally; the check keeps the numbers exact otherwise)."""
    iu, ju = upper_pairs(t_stat.shape[-1])
    t_up = t_stat[..., iu, ju]
    if not np.array_equal(t_up, t_stat[..., ju, iu], equal_nan=True):
        return np.where(np.isnan(t_stat), np.nan, 2.0 * special.stdtr(dof, -np.abs(t_stat)))
    ok = ~np.isnan(t_up)
    p_up = np.full(t_up.shape, np.nan)
    p_up[ok] = 2.0 * special.stdtr(dof[..., iu, ju][ok], -np.abs(t_up[ok]))
    p = np.full(t_stat.shape, np.nan)
    p[..., iu, ju] = p_up
    p[..., ju, iu] = p_up
    return p


def direction_adjusted(rho: np.ndarray, exposure: np.ndarray) -> np.ndarray:
    """ρ^dir_uv = sign(e_u)·sign(e_v)·ρ_uv: a long and a short in co-moving names hedge each other.

    Also for stacks (rho … × K × K, exposure … × K); the sign products are np.outer's."""
    s = np.sign(np.asarray(exposure, dtype=float))
    out = rho * (s[..., :, None] * s[..., None, :])
    diag = np.arange(rho.shape[-1])
    out[..., diag, diag] = np.where(np.isnan(rho[..., diag, diag]), np.nan, 1.0)
    return np.asarray(out)


def significance(rho: float, n: int) -> tuple[float, float]:
    """(t, two-sided p) of one correlation on n observations."""
    t = rho * np.sqrt(n - 2) / np.sqrt(1.0 - rho * rho)
    return float(t), float(2.0 * stats.t.sf(abs(t), n - 2))


# ---------------------------------------------------------------- portfolio metrics


def _complete_subset(valid: np.ndarray, abs_e: np.ndarray) -> np.ndarray:
    """Drop the node with most NULL pairs (ties: smallest |e|, then first in order) until R is complete."""
    k = len(abs_e)
    keep = np.ones(k, dtype=bool)
    nulls = (~valid).astype(int)
    np.fill_diagonal(nulls, 0)
    rank = np.empty(k, dtype=np.int64)
    rank[np.lexsort((np.arange(k), abs_e))] = np.arange(k)  # position in ascending (|e|, index) order
    while keep.sum() > 1:
        counts = (nulls[:, keep].sum(axis=1)) * keep
        worst = counts.max()
        if worst == 0:
            break
        candidates = np.flatnonzero(counts == worst)
        keep[candidates[np.argmin(rank[candidates])]] = False
    return keep


@functools.lru_cache(maxsize=64)
def upper_pairs(k: int) -> tuple[np.ndarray, np.ndarray]:
    """np.triu_indices(k, 1), built once per book size (read-only: shared between calls)."""
    rows, cols = np.triu_indices(k, 1)
    rows.setflags(write=False)
    cols.setflags(write=False)
    return rows, cols


def portfolio_metrics(rho: np.ndarray, exposure: np.ndarray, symbols: Sequence[str]) -> PortfolioMetrics:
    """§7.3 over valid pairs u < v: plain, exposure-weighted and direction-adjusted correlation, HHI and
    correlation-adjusted effective number of positions (a in the row order of R)."""
    e = np.asarray(exposure, dtype=float)
    k = len(e)
    if k < 2:
        hhi = 1.0 if k == 1 else None
        return PortfolioMetrics(None, None, None, hhi, hhi, 0, 0)
    complete = stacked_complete_metrics(np.asarray(rho, dtype=float)[None], e[None])[0]
    if complete is not None:
        return complete
    return pairwise_metrics(rho, e, symbols)


def pairwise_metrics(rho: np.ndarray, exposure: np.ndarray, symbols: Sequence[str]) -> PortfolioMetrics:
    """`portfolio_metrics` of one book of K ≥ 2 nodes pair by pair: the general path (NULL pairs are
    skipped and, for the effective number of positions, nodes dropped until R is complete), which
    `stacked_complete_metrics` reproduces bit for bit on books without NULL pairs."""
    e = np.asarray(exposure, dtype=float)
    k = len(e)
    abs_e = np.abs(e)
    iu = upper_pairs(k)
    r = rho[iu]
    valid = np.isfinite(r)
    w = np.outer(abs_e, abs_e)[iu]
    s = np.sign(e)
    r_dir = (np.outer(s, s)[iu]) * r
    n_valid = int(valid.sum())
    average = float(r[valid].mean()) if n_valid else None
    w_sum = float(w[valid].sum())
    weighted = float((w[valid] * r[valid]).sum() / w_sum) if n_valid and w_sum > 0 else None
    direction = float((w[valid] * r_dir[valid]).sum() / w_sum) if n_valid and w_sum > 0 else None
    total = abs_e.sum()
    a = abs_e / total if total > 0 else None
    hhi = float(1.0 / (a @ a)) if a is not None else None
    flags: list[str] = []
    valid_matrix = np.isfinite(rho)
    keep = _complete_subset(valid_matrix, abs_e)
    dropped = tuple(sym for sym, kept in zip(symbols, keep.tolist(), strict=True) if not kept)
    eff_corr: float | None = None
    sub_total = abs_e[keep].sum()
    if keep.sum() >= 1 and sub_total > 0:
        a_k = abs_e[keep] / sub_total
        r_k = rho[np.ix_(keep, keep)].copy()
        np.fill_diagonal(r_k, 1.0)
        quad = float(a_k @ r_k @ a_k)
        if quad > 0:
            eff_corr = min(max(1.0 / quad, 1.0), float(keep.sum()))  # np.clip of a finite scalar
        else:
            flags.append("effective_positions_undefined")
    if dropped:
        flags.append("effective_positions_dropped_nodes")
    return PortfolioMetrics(
        average_correlation=average,
        weighted_average_correlation=weighted,
        direction_adjusted_correlation=direction,
        effective_positions_hhi=hhi,
        effective_positions_corr=eff_corr,
        valid_pairs=n_valid,
        null_pairs=len(r) - n_valid,
        dropped_for_effective=dropped,
        flags=tuple(flags),
    )


def stacked_complete_metrics(rho: np.ndarray, exposure: np.ndarray) -> list[PortfolioMetrics | None]:
    """`portfolio_metrics` of B books of K ≥ 2 nodes at once (rho B × K × K, exposure B × K), for the
    books whose pairs are all valid and whose exposures are not all zero; None for the others (their
    NULL pairs need the drop-until-complete loop of `portfolio_metrics`).

    Nothing is dropped from a complete R, so a = |e|/Σ|e| and R is rho with its diagonal set to 1.
    The sums run along contiguous rows (each row summed as the 1-D array of one book is) and the
    products are per-book matrix products: every book gets the numbers it gets alone."""
    b, k = exposure.shape
    iu, ju = upper_pairs(k)
    r = np.ascontiguousarray(rho[:, iu, ju])
    abs_e = np.abs(exposure)
    w = np.ascontiguousarray(abs_e[:, iu] * abs_e[:, ju])  # |e_u||e_v| of each pair u < v
    s = np.sign(exposure)
    r_dir = np.ascontiguousarray((s[:, iu] * s[:, ju]) * r)
    total = abs_e.sum(axis=1)
    w_sum = w.sum(axis=1)
    complete = np.isfinite(r).all(axis=1) & (total > 0) & (w_sum > 0)
    if not complete.any():
        return [None] * b
    with np.errstate(invalid="ignore", divide="ignore"):  # the incomplete books' numbers are dropped
        average = r.mean(axis=1)
        weighted = (w * r).sum(axis=1) / w_sum
        direction = (w * r_dir).sum(axis=1) / w_sum
        a = abs_e / total[:, None]
        hhi = 1.0 / (a[:, None, :] @ a[:, :, None])[:, 0, 0]
        r_full = rho.copy()
        diag = np.arange(k)
        r_full[:, diag, diag] = 1.0
        quad = ((a[:, None, :] @ r_full) @ a[:, :, None])[:, 0, 0]
    out: list[PortfolioMetrics | None] = []
    for j, ok in enumerate(complete.tolist()):
        if not ok:
            out.append(None)
            continue
        q = float(quad[j])
        out.append(
            PortfolioMetrics(
                average_correlation=float(average[j]),
                weighted_average_correlation=float(weighted[j]),
                direction_adjusted_correlation=float(direction[j]),
                effective_positions_hhi=float(hhi[j]),
                effective_positions_corr=min(max(1.0 / q, 1.0), float(k)) if q > 0 else None,
                valid_pairs=len(iu),
                null_pairs=0,
                flags=() if q > 0 else ("effective_positions_undefined",),
            )
        )
    return out


# ---------------------------------------------------------------- clusters


def cluster_distances(rho: np.ndarray) -> np.ndarray:
    """Condensed distances d = 1 − ρ of a K × K matrix or a B × K × K stack (… × K(K−1)/2, the upper
    triangle row by row, as `squareform`). A NULL pair counts as ρ = 0 (no evidence of co-movement);
    negative ρ gives d > 1, so hedges are never "similar"."""
    d = 1.0 - np.where(np.isnan(rho), 0.0, rho)
    d = np.clip((d + np.swapaxes(d, -1, -2)) / 2.0, 0.0, 2.0)
    iu, ju = upper_pairs(rho.shape[-1])
    return np.ascontiguousarray(d[..., iu, ju])


def cluster_labels(rho: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Average-linkage labels on d = 1 − ρ cut at 1 − threshold, and the linkage merge heights."""
    k = rho.shape[0]
    if k < 2:
        return np.arange(1, k + 1), np.zeros(0)
    z = average_linkage(cluster_distances(rho), k)
    labels = np.zeros(k, dtype=np.int32)
    _hierarchy.cluster_dist(z, labels, _cut_height(threshold), k)
    return labels, np.asarray(z[:, 2])


def _cut_height(threshold: float) -> float:
    return float((1.0 - threshold) + _CUT_TOLERANCE)


def cut_linkage(z: np.ndarray, threshold: float, k: int) -> np.ndarray | None:
    """Flat cluster labels 1…n of a linkage cut at 1 − threshold, or None when every merge is above the
    cut: each node is then its own cluster (a flat cluster joins nodes only through a merge at or
    below the cut), so no cluster of ≥ 2 exists and nothing is left to label."""
    cut = _cut_height(threshold)
    if float(z[:, 2].min()) > cut:
        return None
    labels = np.zeros(k, dtype=np.int32)
    _hierarchy.cluster_dist(z, labels, cut, k)
    return labels


def average_linkage(y: np.ndarray, k: int) -> np.ndarray:
    """`linkage(y, "average")` without its input validation (d is finite, symmetric and non-negative by
    construction; the checks cost more than the clustering of a 20-node book). The same compiled
    routines as `linkage` + `fcluster(criterion="distance")` (tests/unit/factors compares them)."""
    return np.asarray(_hierarchy.nn_chain(np.ascontiguousarray(y, dtype=np.float64), k, _AVERAGE))


def _nickname(
    members: Sequence[int],
    abs_e: Sequence[float],
    symbols: Sequence[str],
    tags: Sequence[Sequence[str]],
    sectors: Sequence[str | None],
) -> tuple[str, Literal["tag", "sector", "largest_position"]]:
    """A tag on ≥ 70 % of members → a sector shared by ≥ 70 % → "<largest |e| member> lookalikes"."""
    size = len(members)
    tag_counts = Counter(t for m in members for t in set(tags[m]))
    if tag_counts:
        tag, count = min(tag_counts.items(), key=lambda kv: (-kv[1], kv[0]))
        if count / size >= NICKNAME_SHARE:
            return tag, "tag"
    sector_counts = Counter(sectors[m] for m in members if sectors[m] and sectors[m] != "Unknown")
    if sector_counts:
        sector, count = min(sector_counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
        if count / size >= NICKNAME_SHARE:
            return str(sector), "sector"
    largest = max(members, key=lambda m: (abs_e[m], symbols[m]))
    return f"{symbols[largest]} lookalikes", "largest_position"


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
    if k < 2:
        g_nodes = float(np.abs(e).sum())
        return ClusterSummary((), 0.0 if g_nodes > 0 else None, 0.0 if g_nodes > 0 else None)
    z = average_linkage(cluster_distances(rho), k)
    return summarise_clusters(rho, e, cut_linkage(z, threshold, k), z[:, 2], symbols, tags, sectors)


def summarise_clusters(
    rho: np.ndarray,
    exposure: np.ndarray,
    labels: np.ndarray | None,
    heights: np.ndarray,
    symbols: Sequence[str],
    tags: Sequence[Sequence[str]],
    sectors: Sequence[str | None],
) -> ClusterSummary:
    """`find_clusters` from the cut of its linkage (`cut_linkage`: None = no merge below the cut)."""
    e = np.asarray(exposure, dtype=float)
    k = len(e)
    abs_e = np.abs(e)
    g_nodes = float(abs_e.sum())
    merge_heights = tuple(heights.tolist())
    if labels is None or int(labels.max()) == k:  # all singletons: no cluster of ≥ 2
        none = 0.0 if g_nodes > 0 else None
        return ClusterSummary((), none, none, merge_heights)
    # cluster_dist numbers the flat clusters 1…n consecutively: label − 1 is np.unique's inverse.
    inverse = labels.astype(np.intp) - 1
    indicator = np.zeros((k, int(labels.max())))
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
    # Python floats from here on (the same doubles; per-element numpy scalars cost more than the maths).
    order = np.argsort(-gross, kind="stable")
    chosen = order[sizes[order] >= 2].tolist()
    abs_list, e_list, to_list = abs_e.tolist(), e.tolist(), to_cluster.tolist()
    gross_list, net_list, avg_list = gross.tolist(), net.tolist(), avg.tolist()
    clusters: list[Cluster] = []
    for number, c in enumerate(chosen, start=1):
        members = sorted(np.flatnonzero(inverse == c).tolist(), key=lambda m: (-abs_list[m], symbols[m]))
        nickname, source = _nickname(members, abs_list, symbols, tags, sectors)
        clusters.append(
            Cluster(
                number=number,
                symbols=tuple(symbols[m] for m in members),
                exposures=tuple(e_list[m] for m in members),
                member_share_of_gross=tuple(abs_list[m] / g_nodes if g_nodes > 0 else None for m in members),
                correlation_to_cluster=tuple(None if np.isnan(to_list[m]) else to_list[m] for m in members),
                avg_correlation=None if np.isnan(avg_list[c]) else avg_list[c],
                gross=gross_list[c],
                net=net_list[c],
                share_of_gross=gross_list[c] / g_nodes if g_nodes > 0 else None,
                nickname=nickname,
                nickname_source=source,
            )
        )
    conc_gross = float(sum(cl.gross for cl in clusters) / g_nodes) if g_nodes > 0 else None
    conc_net = float(sum(abs(cl.net) for cl in clusters) / g_nodes) if g_nodes > 0 else None
    return ClusterSummary(tuple(clusters), conc_gross, conc_net, merge_heights)


def data_quality(included: int, valid_pairs: int, null_pairs: int, history_exclusions: int) -> DataQuality:
    """`insufficient` below 2 nodes or without a valid pair; `limited` when a node that passed the filter
    lacked history or some pair has fewer than 30 common returns; `sufficient` otherwise."""
    if included < 2 or valid_pairs == 0:
        return "insufficient"
    if history_exclusions > 0 or null_pairs > 0:
        return "limited"
    return "sufficient"


# ---------------------------------------------------------------- one calculation


def compute_correlations(
    nodes: Nodes,
    candidates: np.ndarray,
    closes: np.ndarray,
    dates: Sequence[date],
    filters: CorrelationFilters,
    *,
    min_overlap: int = POS_CORR_MIN_OVERLAP,
) -> CorrelationResult:
    """Returns, pairwise statistics, metrics and clusters for the candidate nodes.

    `closes` is (len(dates)) × len(nodes): adjusted closes on consecutive trading days ending at the
    as-of date (NaN = missing), one column per node in node order; non-candidate columns are ignored."""
    k = len(nodes)
    returns = simple_returns(closes) if k else np.zeros((0, 0))
    obs = np.isfinite(returns).sum(axis=0).astype(np.int64) if returns.size else np.zeros(k, dtype=np.int64)
    enough = obs >= min_overlap
    included = candidates & enough
    reasons: list[str | None] = []
    for j in range(k):
        if included[j]:
            reasons.append(None)
        elif not nodes.has_exposure[j]:
            reasons.append(MISSING_EXPOSURE)
        elif not candidates[j]:
            reasons.append(BELOW_FILTER)
        else:
            reasons.append(INSUFFICIENT_HISTORY)
    idx = np.flatnonzero(included)
    pairs = pairwise_correlations(returns[:, idx], min_overlap=min_overlap)
    symbols = [nodes.symbols[i] for i in idx]
    e = nodes.exposure[idx]
    metrics = portfolio_metrics(pairs.rho, e, symbols)
    summary = find_clusters(
        pairs.rho,
        e,
        symbols,
        [nodes.tags[i] for i in idx],
        [nodes.sectors[i] for i in idx],
        filters.correlation_threshold,
    )
    history_exclusions = int((candidates & ~enough).sum())
    quality = data_quality(len(idx), metrics.valid_pairs, metrics.null_pairs, history_exclusions)
    flags = list(metrics.flags)
    if history_exclusions:
        flags.append("nodes_excluded_insufficient_history")
    if metrics.null_pairs:
        flags.append("pairs_below_min_overlap")
    return CorrelationResult(
        nodes=nodes,
        included=included,
        exclusion_reason=reasons,
        observations=obs,
        included_index=idx,
        pairs=pairs,
        metrics=metrics,
        clusters=summary,
        data_quality=quality,
        window_start=dates[1] if len(dates) > 1 else None,
        window_end=dates[-1] if dates else None,
        gross_nodes=float(np.abs(e).sum()),
        flags=flags,
    )
