"""The compute pass of a batch of books on stacked arrays: `compute_correlations` of each, bit for bit.

Per book the compute is ~20 nodes × 90 returns: a few dozen small numpy calls whose fixed cost, not
the arithmetic, is the work. Here the returns and observation counts are taken once per symbol of the
batch grid, the inclusion step once over every node of the batch, and the books with the same number
k of included nodes are stacked (B × T × k, no padding), so that the pairwise statistics, ρ^dir, the
metrics of the books whose pairs are all valid and the clustering distances are one call per stack.
The stacked kernels are the ones `compute_correlations` itself runs with B = 1, so a book's numbers do
not depend on its batch. What stays per book is the linkage (one compiled call) and, for the books
where some pair reaches the threshold, the cluster summary; a book with fewer than two included nodes
takes the single-book path, and the metrics of a book with a NULL pair `portfolio_metrics`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from factors.correlation_compute import (
    BELOW_FILTER,
    INSUFFICIENT_HISTORY,
    MISSING_EXPOSURE,
    POS_CORR_MIN_OVERLAP,
    ClusterSummary,
    CorrelationFilters,
    CorrelationResult,
    Nodes,
    PairStats,
    average_linkage,
    cluster_distances,
    compute_correlations,
    cut_linkage,
    data_quality,
    direction_adjusted,
    portfolio_metrics,
    simple_returns,
    stacked_complete_metrics,
    stacked_pair_statistics,
    summarise_clusters,
)

Computed = tuple[CorrelationResult, np.ndarray]  # a book's result and its ρ^dir (included nodes)

# Exclusion reason of each code of `_Flat.codes` (0 = included).
_REASONS = np.array([None, MISSING_EXPOSURE, BELOW_FILTER, INSUFFICIENT_HISTORY], dtype=object)


@dataclass(frozen=True)
class Book:
    """One portfolio of the batch: its nodes, the inclusion filter's mask and each node's column in the
    batch's close grid (any value for a node that is not a candidate: it is never read)."""

    nodes: Nodes
    candidates: np.ndarray
    columns: np.ndarray


@dataclass(frozen=True)
class _Flat:
    """Every node of the batch end to end (book after book, node order within a book)."""

    start: np.ndarray  # flat index of each book's first node, then the total (len = books + 1)
    column: np.ndarray  # grid column of each node; the no-close sentinel for non-candidates
    observations: np.ndarray  # returns in the window (int64)
    included: np.ndarray  # bool
    reasons: list[str | None]
    exposure: np.ndarray
    included_flat: np.ndarray  # flat indices of the included nodes (book order, then node order)
    included_start: np.ndarray  # position in included_flat of each book's first one (len = books + 1)
    history_exclusions: list[int]  # per book: candidates with fewer than `min_overlap` returns

    def included_count(self, book: int) -> int:
        return int(self.included_start[book + 1] - self.included_start[book])


def _flatten(books: Sequence[Book], counts: np.ndarray, min_overlap: int) -> _Flat:
    """The inclusion step of `compute_correlations` for every node of the batch at once."""
    sizes = np.array([len(b.nodes) for b in books], dtype=np.int64)
    start = np.concatenate(([0], np.cumsum(sizes)))
    candidates = np.concatenate([np.zeros(0, dtype=bool), *(b.candidates for b in books)]).astype(bool)
    has_exposure = np.concatenate([np.zeros(0, dtype=bool), *(b.nodes.has_exposure for b in books)]).astype(bool)
    exposure = np.concatenate([np.zeros(0), *(b.nodes.exposure for b in books)]).astype(float)
    # Non-candidate nodes read the sentinel column after the grid's (no close, so no return), as the
    # all-NaN columns of the single-book grid.
    columns = np.concatenate([np.zeros(0, dtype=np.int64), *(np.asarray(b.columns) for b in books)])
    column = np.where(candidates, columns, len(counts) - 1)
    observations = counts[column]
    enough = observations >= min_overlap
    included = candidates & enough
    codes = np.where(included, 0, np.where(~has_exposure, 1, np.where(~candidates, 2, 3)))
    book = np.repeat(np.arange(len(books)), sizes)
    per_book = np.bincount(book[included], minlength=len(books))
    short = np.bincount(book[candidates & ~enough], minlength=len(books))
    return _Flat(
        start=start,
        column=column,
        observations=observations,
        included=included,
        reasons=_REASONS[codes].tolist(),
        exposure=exposure,
        included_flat=np.flatnonzero(included),
        included_start=np.concatenate(([0], np.cumsum(per_book))),
        history_exclusions=short.tolist(),
    )


def compute_books(
    books: Sequence[Book],
    closes: np.ndarray,
    dates: Sequence[date],
    filters: CorrelationFilters,
    *,
    min_overlap: int = POS_CORR_MIN_OVERLAP,
) -> list[Computed]:
    """(result, ρ^dir) of every book: `compute_correlations` and `direction_adjusted` of each, bit for bit.

    `closes` is len(dates) × symbols, the batch's grid (NaN = missing) whose columns `Book.columns`
    name."""
    closes = np.asarray(closes, dtype=float)
    # Returns are elementwise per symbol: a book's return series are these. One row per symbol (the
    # layout of the single-book kernel's input), then the all-NaN row of non-candidates.
    returns = simple_returns(closes)
    series = np.vstack([returns.T, np.full((1, returns.shape[0]), np.nan)])
    counts = np.isfinite(series).sum(axis=1).astype(np.int64)
    flat = _flatten(books, counts, min_overlap)
    window = (dates[1] if len(dates) > 1 else None, dates[-1] if dates else None)
    by_size: dict[int, list[int]] = defaultdict(list)
    for i in range(len(books)):
        by_size[flat.included_count(i)].append(i)
    out: dict[int, Computed] = {}
    for k, members in by_size.items():
        if k < 2:  # no pair: the single-book path (rare)
            for i in members:
                out[i] = _alone(books[i], closes, dates, filters, min_overlap)
        else:
            out.update(zip(members, _stack(books, members, k, series, flat, filters, window), strict=True))
    return [out[i] for i in range(len(books))]


def _alone(
    book: Book, closes: np.ndarray, dates: Sequence[date], filters: CorrelationFilters, min_overlap: int
) -> Computed:
    grid = np.full((len(dates), len(book.nodes)), np.nan)
    grid[:, np.flatnonzero(book.candidates)] = closes[:, np.asarray(book.columns)[book.candidates]]
    result = compute_correlations(book.nodes, book.candidates, grid, dates, filters, min_overlap=min_overlap)
    return result, direction_adjusted(result.pairs.rho, book.nodes.exposure[result.included_index])


def _stack(
    books: Sequence[Book],
    members: list[int],
    k: int,
    series: np.ndarray,
    flat: _Flat,
    filters: CorrelationFilters,
    window: tuple[date | None, date | None],
) -> list[Computed]:
    """The books of `members`, each with k ≥ 2 included nodes, as one B × T × k stack."""
    first = flat.included_start[members]
    flat_index = flat.included_flat[first[:, None] + np.arange(k)]  # B × k, node order
    node_index = flat_index - flat.start[members][:, None]  # each book's `included_index`
    pairs = stacked_pair_statistics(series[flat.column[flat_index]])  # B × k × T
    exposure = flat.exposure[flat_index]
    rho_dir = direction_adjusted(pairs.rho, exposure)
    metrics = stacked_complete_metrics(pairs.rho, exposure)
    distances = cluster_distances(pairs.rho)
    gross_nodes = np.abs(exposure).sum(axis=1).tolist()
    out: list[Computed] = []
    for j, i in enumerate(members):
        nodes, lo, hi = books[i].nodes, int(flat.start[i]), int(flat.start[i + 1])
        idx = node_index[j]
        rho, e = pairs.rho[j], exposure[j]
        m = metrics[j]
        if m is None:  # a NULL pair (or no exposure): the drop-until-complete path
            m = portfolio_metrics(rho, e, [nodes.symbols[u] for u in idx.tolist()])
        z = average_linkage(distances[j], k)
        labels = cut_linkage(z, filters.correlation_threshold, k)
        clusters: ClusterSummary
        if labels is None:
            clusters = summarise_clusters(rho, e, None, z[:, 2], (), (), ())
        else:
            members_of = idx.tolist()
            clusters = summarise_clusters(
                rho,
                e,
                labels,
                z[:, 2],
                [nodes.symbols[u] for u in members_of],
                [nodes.tags[u] for u in members_of],
                [nodes.sectors[u] for u in members_of],
            )
        short = flat.history_exclusions[i]
        flags = list(m.flags)
        if short:
            flags.append("nodes_excluded_insufficient_history")
        if m.null_pairs:
            flags.append("pairs_below_min_overlap")
        result = CorrelationResult(
            nodes=nodes,
            included=flat.included[lo:hi],
            exclusion_reason=flat.reasons[lo:hi],
            observations=flat.observations[lo:hi],
            included_index=idx,
            pairs=PairStats(rho=rho, n=pairs.n[j], p_value=pairs.p_value[j], t_stat=pairs.t_stat[j]),
            metrics=m,
            clusters=clusters,
            data_quality=data_quality(k, m.valid_pairs, m.null_pairs, short),
            window_start=window[0],
            window_end=window[1],
            gross_nodes=float(gross_nodes[j]),
            flags=flags,
        )
        out.append((result, rho_dir[j]))
    return out
