"""The rows one stored calculation writes (data-model.md §7.7–7.10), built once for both write paths.

`store_calculation` (one portfolio, SQLAlchemy) and `store_calculations` (a batch, one statement per
table) take their values from here, so the two paths cannot drift apart: money is rounded to cents
half-even (`round_money`; `money_cents` for the batch's columns, the same cents), non-finite floats
become NULL, observation counts are capped at int2. The batch takes its node rows as columns
(`node_columns`), the single portfolio as tuples (`node_rows`): the same values.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import numpy as np

from common.formatting import nan_as_null, round_money
from factors.correlation_compute import ENGINE_VERSION, CorrelationFilters, CorrelationResult, upper_pairs

INT2_MAX = 32767


def finite_or_none(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def calculation_values(
    *, filters: CorrelationFilters, result: CorrelationResult, digest: bytes, run_id: UUID | None
) -> dict[str, Any]:
    """The calculation row's columns other than id, portfolio_id, calculation_date and duration_days."""
    m = result.metrics
    nodes = result.nodes
    return {
        "average_correlation": finite_or_none(m.average_correlation),
        "weighted_average_correlation": finite_or_none(m.weighted_average_correlation),
        "direction_adjusted_correlation": finite_or_none(m.direction_adjusted_correlation),
        "effective_positions_hhi": finite_or_none(m.effective_positions_hhi),
        "effective_positions_corr": finite_or_none(m.effective_positions_corr),
        "concentration_gross": finite_or_none(result.clusters.concentration_gross),
        "concentration_net": finite_or_none(result.clusters.concentration_net),
        "data_quality": result.data_quality,
        "min_position_value": round_money(filters.min_position_value),
        "min_portfolio_weight": filters.min_portfolio_weight,
        "filter_mode": filters.filter_mode,
        "correlation_threshold": filters.correlation_threshold,
        "nodes_included": int(result.included.sum()),
        "nodes_excluded": int(len(nodes) - result.included.sum()),
        "inputs_hash": digest,
        "run_id": run_id,
        "gross_exposure": round_money(nodes.gross),
        "valid_pairs": m.valid_pairs,
        "null_pairs": m.null_pairs,
        "window_start_date": result.window_start,
        "window_end_date": result.window_end,
        "flags": list(result.flags),
        "engine_version": ENGINE_VERSION,
    }


NODE_COLUMNS = (
    "symbol",
    "position_ids",
    "position_types",
    "exposure",
    "market_value",
    "observations",
    "included",
    "exclusion_reason",
    "tags",
    "sector",
)


def node_rows(result: CorrelationResult) -> list[tuple[Any, ...]]:
    """One tuple per node in NODE_COLUMNS order (without calculation_id)."""
    nodes = result.nodes
    return [
        (
            nodes.symbols[j],
            nodes.position_ids[j],
            nodes.position_types[j],
            round_money(float(nodes.exposure[j])),
            round_money(float(nodes.market_value[j])) if np.isfinite(nodes.market_value[j]) else None,
            int(min(result.observations[j], INT2_MAX)),
            bool(result.included[j]),
            result.exclusion_reason[j],
            list(nodes.tags[j]),
            nodes.sectors[j],
        )
        for j in range(len(nodes))
    ]


def money_cents(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`round_money` of every value as integer cents (int64) and the mask of the values it makes NULL
    (non-finite ones); the cents of a NULL are 0.

    round_money rounds the value's repr half-even to cents. Away from a half cent that is rounding the
    float v·100 to the nearest integer: v·100 is within a few units in the last place of the exact
    product, and so is the repr, far less than the 1e-3 kept from the tie (below 2^36 cents, where a
    unit in the last place is under 2e-5). The rest (near-ties, huge values) go through round_money."""
    v = np.asarray(values, dtype=float)
    finite = np.isfinite(v)
    scaled = np.where(finite, v, 0.0) * 100.0
    sure = (np.abs(scaled) < 2.0**36) & (np.abs(scaled - np.floor(scaled) - 0.5) > 1e-3)
    cents = np.rint(np.where(sure, scaled, 0.0)).astype(np.int64)
    for i in np.flatnonzero(finite & ~sure).tolist():
        money = round_money(float(v[i]))  # a Decimal: v[i] is finite
        cents[i] = int(money.scaleb(2)) if money is not None else 0
    return cents, ~finite


@dataclass(frozen=True)
class NodeColumns:
    """The factors.correlation_node rows of several calculations as columns, calculation after
    calculation (the rows `node_rows` gives each, without calculation_id). Array columns are flat,
    with the element count of each row."""

    counts: list[int]  # rows per calculation
    symbol: list[str]
    position_ids: list[UUID]
    position_id_counts: list[int]
    position_types: list[str]
    position_type_counts: list[int]
    exposure_cents: np.ndarray  # round_money(e_u) in cents
    exposure_null: np.ndarray  # bool: not finite (NULL, which the NOT NULL column rejects, as before)
    market_value_cents: np.ndarray
    market_value_null: np.ndarray  # bool: no position of the node has a market value
    observations: np.ndarray  # capped at int2
    included: np.ndarray  # bool
    exclusion_reason: list[str | None]
    tags: list[str]
    tag_counts: list[int]
    sector: list[str | None]


def node_columns(results: Sequence[CorrelationResult]) -> NodeColumns:
    """`node_rows` of every result as columns (the numbers in one numpy pass per column)."""
    nodes = [r.nodes for r in results]
    ids = [p for n in nodes for p in n.position_ids]
    types = [t for n in nodes for t in n.position_types]
    tags = [t for n in nodes for t in n.tags]
    exposure_cents, exposure_null = money_cents(np.concatenate([np.zeros(0), *(n.exposure for n in nodes)]))
    mv_cents, mv_null = money_cents(np.concatenate([np.zeros(0), *(n.market_value for n in nodes)]))
    observations = np.concatenate([np.zeros(0, dtype=np.int64), *(r.observations for r in results)])
    return NodeColumns(
        counts=[len(n) for n in nodes],
        symbol=[s for n in nodes for s in n.symbols],
        position_ids=[p for group in ids for p in group],
        position_id_counts=[len(group) for group in ids],
        position_types=[t for group in types for t in group],
        position_type_counts=[len(group) for group in types],
        exposure_cents=exposure_cents,
        exposure_null=exposure_null,
        market_value_cents=mv_cents,
        market_value_null=mv_null,
        observations=np.minimum(observations.astype(np.int64), INT2_MAX),
        included=np.concatenate([np.zeros(0, dtype=bool), *(r.included for r in results)]).astype(bool),
        exclusion_reason=[x for r in results for x in r.exclusion_reason],
        tags=[t for group in tags for t in group],
        tag_counts=[len(group) for group in tags],
        sector=[x for n in nodes for x in n.sectors],
    )


@dataclass(frozen=True)
class PairColumns:
    """The upper triangle of the included nodes' pair matrices as columns (NaN = NULL, stored so);
    the numbers as numpy arrays (the batch's COPY encodes them whole) or lists."""

    symbol_1: list[str]
    symbol_2: list[str]
    rho: np.ndarray | list[float]
    rho_dir: np.ndarray | list[float]
    observations: np.ndarray | list[int]
    p_value: np.ndarray | list[float]

    def __len__(self) -> int:
        return len(self.symbol_1)

    def stored_columns(self) -> tuple[list[Any], ...]:
        """The six array columns of factors.pairwise_correlation (NaN → NULL elements)."""
        return (
            self.symbol_1,
            self.symbol_2,
            nan_as_null(np.asarray(self.rho, dtype=float).tolist()),
            nan_as_null(np.asarray(self.rho_dir, dtype=float).tolist()),
            np.asarray(self.observations, dtype=np.int64).tolist(),
            nan_as_null(np.asarray(self.p_value, dtype=float).tolist()),
        )

    def record(self, calculation_id: Any) -> tuple[Any, ...]:
        """The factors.pairwise_correlation row of these pairs."""
        return (calculation_id, *self.stored_columns())


PAIR_COLUMNS = (
    "calculation_id",
    "symbols_1",
    "symbols_2",
    "correlations",
    "correlations_dir",
    "observations",
    "p_values",
)


def pair_columns(result: CorrelationResult, rho_dir: np.ndarray) -> PairColumns:
    idx = result.included_index
    k = len(idx)
    if k < 2:
        return PairColumns([], [], [], [], [], [])
    iu, ju = upper_pairs(k)
    symbols = np.array([result.nodes.symbols[i] for i in idx], dtype=object)
    pairs = result.pairs
    return PairColumns(
        symbols[iu].tolist(),
        symbols[ju].tolist(),
        pairs.rho[iu, ju],
        rho_dir[iu, ju],
        np.minimum(pairs.n[iu, ju], INT2_MAX),
        pairs.p_value[iu, ju],
    )


CLUSTER_COLUMNS = (
    "id",
    "cluster_number",
    "threshold",
    "nickname",
    "nickname_source",
    "avg_correlation",
    "gross",
    "net",
    "share_of_gross",
)
MEMBER_COLUMNS = ("cluster_id", "symbol", "exposure", "share_of_gross", "correlation_to_cluster")


def cluster_rows(
    result: CorrelationResult, filters: CorrelationFilters
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(clusters in CLUSTER_COLUMNS order without calculation_id, members in MEMBER_COLUMNS order);
    cluster ids are new uuids (they carry no meaning beyond linking the members)."""
    clusters: list[tuple[Any, ...]] = []
    members: list[tuple[Any, ...]] = []
    for cl in result.clusters.clusters:
        cluster_id = uuid.uuid4()
        clusters.append(
            (
                cluster_id,
                cl.number,
                filters.correlation_threshold,
                cl.nickname,
                cl.nickname_source,
                finite_or_none(cl.avg_correlation),
                round_money(cl.gross),
                round_money(cl.net),
                finite_or_none(cl.share_of_gross),
            )
        )
        members.extend(
            (cluster_id, sym, round_money(exp), finite_or_none(share), finite_or_none(corr))
            for sym, exp, share, corr in zip(
                cl.symbols, cl.exposures, cl.member_share_of_gross, cl.correlation_to_cluster, strict=True
            )
        )
    return clusters, members
