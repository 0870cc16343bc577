"""The rows one stored calculation writes (data-model.md §7.7–7.10), built once for both write paths.

`store_calculation` (one portfolio, SQLAlchemy) and `store_calculations` (a batch, one statement per
table) take their values from here, so the two paths cannot drift apart: money is rounded to cents
half-even (`round_money`), non-finite floats become NULL, observation counts are capped at int2.
"""

from __future__ import annotations

import uuid
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


@dataclass(frozen=True)
class PairColumns:
    """The upper triangle of the included nodes' pair matrices as columns (NaN = NULL, stored so)."""

    symbol_1: list[str]
    symbol_2: list[str]
    rho: list[float]
    rho_dir: list[float]
    observations: list[int]
    p_value: list[float]

    def __len__(self) -> int:
        return len(self.symbol_1)

    def stored_columns(self) -> tuple[list[Any], ...]:
        """The six array columns of factors.pairwise_correlation (NaN → NULL elements)."""
        return (
            self.symbol_1,
            self.symbol_2,
            nan_as_null(self.rho),
            nan_as_null(self.rho_dir),
            self.observations,
            nan_as_null(self.p_value),
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
        pairs.rho[iu, ju].tolist(),
        rho_dir[iu, ju].tolist(),
        np.minimum(pairs.n[iu, ju], INT2_MAX).tolist(),
        pairs.p_value[iu, ju].tolist(),
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
