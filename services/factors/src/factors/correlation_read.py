"""Read side of position correlations (#41 metrics, #42 matrix): stored calculation → response bodies.

The stored set of nodes can only be narrowed on read (view by exposure sign, value/weight filters,
position types, minimum exposure); metrics and clusters of a narrowed set or of another clustering
threshold are recomputed from the stored pairs with the same pure functions as the daily step.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import NotCalculated
from common.formatting import iso_date, iso_datetime, money, stat
from factors import correlation_repository as repo
from factors.correlation_compute import (
    INSUFFICIENT_HISTORY,
    ClusterSummary,
    PortfolioMetrics,
    data_quality,
    find_clusters,
    passes_filter,
    portfolio_metrics,
)

CALCULATE_HINT = "POST /api/v1/risk/correlations/positions/calculate"


@dataclass
class StoredCalculation:
    """One stored calculation with its pairs as matrices over the included nodes (symbol order)."""

    calc: dict[str, Any]
    nodes: list[dict[str, Any]]  # every node, symbol order
    included: list[int]  # indices into `nodes` of included nodes (= matrix order)
    rho: np.ndarray
    rho_dir: np.ndarray
    n: np.ndarray
    p: np.ndarray
    clusters: list[dict[str, Any]]

    @property
    def id(self) -> UUID:
        return UUID(str(self.calc["id"]))

    @property
    def calculation_date(self) -> date:
        value: date = self.calc["calculation_date"]
        return value

    def exposure(self, idx: list[int]) -> np.ndarray:
        return np.array([float(self.nodes[i]["exposure"]) for i in idx], dtype=float)


@dataclass(frozen=True)
class Narrowing:
    """Read-time narrowing of the stored node set (api.md #41/#42)."""

    view: str = "portfolio"
    min_position_value: Decimal | None = None
    min_portfolio_weight: float | None = None
    filter_mode: str | None = None
    position_types: tuple[str, ...] = ()
    min_exposure: Decimal | None = None

    @property
    def narrows_filter(self) -> bool:
        return any(v is not None for v in (self.min_position_value, self.min_portfolio_weight, self.filter_mode))

    @property
    def is_identity(self) -> bool:
        return (
            self.view == "portfolio"
            and not self.narrows_filter
            and not self.position_types
            and self.min_exposure is None
        )


async def load(
    session: AsyncSession,
    *,
    portfolio_id: UUID,
    duration_days: int | None = None,
    as_of: date | None = None,
    calculation_id: UUID | None = None,
) -> StoredCalculation:
    """The requested (default: latest) calculation of a portfolio, or 404 NOT_CALCULATED."""
    calc = await repo.latest_calculation(
        session, portfolio_id=portfolio_id, duration_days=duration_days, as_of=as_of, calculation_id=calculation_id
    )
    if calc is None:
        what = "Position correlations have not been calculated for this portfolio"
        if duration_days is not None or as_of is not None:
            what += " for the requested window/date"
        raise NotCalculated(what, hint=CALCULATE_HINT)
    nodes = await repo.calculation_nodes(session, calculation_id=calc["id"])
    included = [i for i, node in enumerate(nodes) if node["included"]]
    k = len(included)
    index = {nodes[i]["symbol"]: pos for pos, i in enumerate(included)}
    rho = np.full((k, k), np.nan)
    rho_dir = np.full((k, k), np.nan)
    p = np.full((k, k), np.nan)
    n = np.zeros((k, k), dtype=np.int64)
    s1, s2, r, rd, nn, pp = await repo.calculation_pairs(session, calculation_id=calc["id"])
    if s1:
        a = np.fromiter((index[s] for s in s1), dtype=np.int64, count=len(s1))
        b = np.fromiter((index[s] for s in s2), dtype=np.int64, count=len(s2))
        for target, values in ((rho, r), (rho_dir, rd), (p, pp), (n, nn)):
            target[a, b] = values
            target[b, a] = values
    obs = np.array([int(nodes[i]["observations"] or 0) for i in included], dtype=np.int64)
    if k:
        np.fill_diagonal(rho, 1.0)
        np.fill_diagonal(rho_dir, 1.0)
        np.fill_diagonal(n, obs)
    clusters = await repo.calculation_clusters(session, calculation_id=calc["id"])
    return StoredCalculation(calc, nodes, included, rho, rho_dir, n, p, clusters)


def select(stored: StoredCalculation, narrowing: Narrowing) -> tuple[list[int], list[int]]:
    """(positions in the matrix of the selected nodes, node indices narrowed out by the value/weight filter)."""
    e = stored.exposure(stored.included)
    keep = np.ones(len(e), dtype=bool)
    if narrowing.view == "longs":
        keep &= e > 0
    elif narrowing.view == "shorts":
        keep &= e < 0
    narrowed = np.zeros(len(e), dtype=bool)
    if narrowing.narrows_filter:
        passing = _passes(stored, narrowing, e)
        narrowed = keep & ~passing
        keep &= passing
    if narrowing.position_types:
        wanted = set(narrowing.position_types)
        keep &= np.array([bool(wanted & set(stored.nodes[i]["position_types"])) for i in stored.included], dtype=bool)
    if narrowing.min_exposure is not None:
        keep &= np.abs(e) >= float(narrowing.min_exposure)
    return np.flatnonzero(keep).tolist(), [stored.included[j] for j in np.flatnonzero(narrowed)]


def _passes(stored: StoredCalculation, narrowing: Narrowing, e: np.ndarray) -> np.ndarray:
    calc = stored.calc
    min_value = narrowing.min_position_value
    return passes_filter(
        e,
        float(calc["gross_exposure"]),
        min_value=float(min_value if min_value is not None else calc["min_position_value"]),
        min_weight=float(
            narrowing.min_portfolio_weight
            if narrowing.min_portfolio_weight is not None
            else calc["min_portfolio_weight"]
        ),
        mode=narrowing.filter_mode or calc["filter_mode"],
    )


def _node_filters(
    stored: StoredCalculation, narrowing: Narrowing, threshold: float, selected: int, narrowed: int
) -> dict[str, Any]:
    calc = stored.calc
    out: dict[str, Any] = {
        "min_position_value": money(
            narrowing.min_position_value if narrowing.min_position_value is not None else calc["min_position_value"]
        ),
        "min_portfolio_weight": stat(
            narrowing.min_portfolio_weight
            if narrowing.min_portfolio_weight is not None
            else calc["min_portfolio_weight"]
        ),
        "filter_mode": narrowing.filter_mode or calc["filter_mode"],
        "correlation_threshold": stat(threshold),
        "nodes_included": selected,
        "nodes_excluded": int(calc["nodes_excluded"]) + narrowed,
        "narrowed_on_read": not narrowing.is_identity,
        "calculation_filters": {
            "min_position_value": money(calc["min_position_value"]),
            "min_portfolio_weight": stat(calc["min_portfolio_weight"]),
            "filter_mode": calc["filter_mode"],
            "correlation_threshold": stat(calc["correlation_threshold"]),
        },
    }
    return out


def _excluded(stored: StoredCalculation, narrowed: list[int]) -> list[dict[str, Any]]:
    rows = [(node["symbol"], node["exclusion_reason"], node) for node in stored.nodes if not node["included"]] + [
        (stored.nodes[i]["symbol"], "below_filter", stored.nodes[i]) for i in narrowed
    ]
    return [
        {
            "symbol": symbol,
            "reason": reason,
            "exposure": money(node["exposure"]),
            "observations": node["observations"],
        }
        for symbol, reason, node in sorted(rows, key=lambda r: r[0])
    ]


def data_status(stored: StoredCalculation, quality: str, latest_market: date | None) -> str:
    """api.md §2.11: insufficient_history, stale (older than the latest SPY close), partial, fresh."""
    if quality == "insufficient":
        return "insufficient_history"
    if latest_market is not None and stored.calculation_date < latest_market:
        return "stale"
    if any(node["exclusion_reason"] in (INSUFFICIENT_HISTORY, "missing_exposure") for node in stored.nodes):
        return "partial"
    return "fresh"


def _cluster_body_stored(stored: StoredCalculation) -> list[dict[str, Any]]:
    by_symbol = {node["symbol"]: node for node in stored.nodes}
    return [
        {
            "cluster_id": str(c["id"]),
            "cluster_number": c["cluster_number"],
            "nickname": c["nickname"],
            "nickname_source": c["nickname_source"],
            "avg_correlation": stat(c["avg_correlation"]),
            "gross": money(c["gross"]),
            "net": money(c["net"]),
            "share_of_gross": stat(c["share_of_gross"]),
            "members": [
                {
                    "symbol": m["symbol"],
                    "position_ids": [str(p) for p in by_symbol[m["symbol"]]["position_ids"]],
                    "exposure": money(m["exposure"]),
                    "share_of_gross": stat(m["share_of_gross"]),
                    "correlation_to_cluster": stat(m["correlation_to_cluster"]),
                }
                for m in c["members"]
            ],
        }
        for c in stored.clusters
    ]


def _cluster_body_computed(
    stored: StoredCalculation, summary: ClusterSummary, threshold: float
) -> list[dict[str, Any]]:
    by_symbol = {node["symbol"]: node for node in stored.nodes}
    out = []
    for c in summary.clusters:
        key = f"{threshold!r}:{'|'.join(sorted(c.symbols))}"
        out.append(
            {
                "cluster_id": str(uuid.uuid5(stored.id, key)),
                "cluster_number": c.number,
                "nickname": c.nickname,
                "nickname_source": c.nickname_source,
                "avg_correlation": stat(c.avg_correlation),
                "gross": money(c.gross),
                "net": money(c.net),
                "share_of_gross": stat(c.share_of_gross),
                "members": [
                    {
                        "symbol": sym,
                        "position_ids": [str(p) for p in by_symbol[sym]["position_ids"]],
                        "exposure": money(exp),
                        "share_of_gross": stat(share),
                        "correlation_to_cluster": stat(corr),
                    }
                    for sym, exp, share, corr in zip(
                        c.symbols, c.exposures, c.member_share_of_gross, c.correlation_to_cluster, strict=True
                    )
                ],
            }
        )
    return out


def _window(stored: StoredCalculation) -> dict[str, Any]:
    calc = stored.calc
    return {
        "start_date": iso_date(calc["window_start_date"]),
        "end_date": iso_date(calc["window_end_date"]),
        "returns": calc["duration_days"],
    }


def metrics_body(
    stored: StoredCalculation,
    narrowing: Narrowing,
    threshold: float | None,
    latest_market: date | None,
) -> dict[str, Any]:
    """The #41 body: stored metrics and clusters, or recomputed ones for a narrowed set / other threshold."""
    calc = stored.calc
    cut = float(calc["correlation_threshold"]) if threshold is None else threshold
    selection, narrowed = select(stored, narrowing)
    stored_as_is = narrowing.is_identity and cut == float(calc["correlation_threshold"])
    if stored_as_is:
        quality = str(calc["data_quality"])
        values = {
            "overall_correlation": calc["weighted_average_correlation"],
            "average_correlation": calc["average_correlation"],
            "direction_adjusted_correlation": calc["direction_adjusted_correlation"],
            "correlation_concentration_score": calc["concentration_gross"],
            "concentration_net": calc["concentration_net"],
            "effective_positions": calc["effective_positions_corr"],
            "effective_positions_hhi": calc["effective_positions_hhi"],
        }
        clusters = _cluster_body_stored(stored)
        flags = list(calc["flags"] or [])
    else:
        idx = [stored.included[j] for j in selection]
        symbols = [stored.nodes[i]["symbol"] for i in idx]
        e = stored.exposure(idx)
        rho = stored.rho[np.ix_(selection, selection)]
        m: PortfolioMetrics = portfolio_metrics(rho, e, symbols)
        summary = find_clusters(
            rho,
            e,
            symbols,
            [tuple(stored.nodes[i]["tags"] or ()) for i in idx],
            [stored.nodes[i]["sector"] for i in idx],
            cut,
        )
        history = [i for i, node in enumerate(stored.nodes) if node["exclusion_reason"] == INSUFFICIENT_HISTORY]
        history_in_scope = _history_in_scope(stored, narrowing, history)
        quality = data_quality(len(idx), m.valid_pairs, m.null_pairs, history_in_scope)
        values = {
            "overall_correlation": m.weighted_average_correlation,
            "average_correlation": m.average_correlation,
            "direction_adjusted_correlation": m.direction_adjusted_correlation,
            "correlation_concentration_score": summary.concentration_gross,
            "concentration_net": summary.concentration_net,
            "effective_positions": m.effective_positions_corr,
            "effective_positions_hhi": m.effective_positions_hhi,
        }
        clusters = _cluster_body_computed(stored, summary, cut)
        flags = list(m.flags)
        if history_in_scope:
            flags.append("nodes_excluded_insufficient_history")
        if m.null_pairs:
            flags.append("pairs_below_min_overlap")
    body: dict[str, Any] = {
        "portfolio_id": str(calc["portfolio_id"]),
        "calculation_id": str(calc["id"]),
        "calculation_date": iso_date(calc["calculation_date"]),
        "duration_days": calc["duration_days"],
        "view": narrowing.view,
    }
    body.update({k: stat(v) for k, v in values.items()})
    body.update(
        {
            "data_quality": quality,
            "data_status": data_status(stored, quality, latest_market),
            "window": _window(stored),
            "gross_exposure": money(calc["gross_exposure"]),
            "clusters": clusters,
            "node_filters": _node_filters(stored, narrowing, cut, len(selection), len(narrowed)),
            "excluded": _excluded(stored, narrowed),
            "flags": flags,
            "computed_at": iso_datetime(calc["created_at"]),
        }
    )
    return body


def _history_in_scope(stored: StoredCalculation, narrowing: Narrowing, history: list[int]) -> int:
    """Nodes excluded for history that the requested view and narrowing would otherwise have shown."""
    if not history:
        return 0
    e = np.array([float(stored.nodes[i]["exposure"]) for i in history], dtype=float)
    keep = np.ones(len(history), dtype=bool)
    if narrowing.view == "longs":
        keep &= e > 0
    elif narrowing.view == "shorts":
        keep &= e < 0
    if narrowing.narrows_filter:
        keep &= _passes(stored, narrowing, e)
    return int(keep.sum())


def significant(value: float | None, digits: int = 6) -> float | None:
    """A small statistic (p-value) to `digits` significant digits; NaN → None."""
    if value is None or not np.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def _matrix(values: np.ndarray, digits: int = 6) -> list[list[float | None]]:
    return [[stat(v, digits) for v in row] for row in values.tolist()]


def matrix_body(
    stored: StoredCalculation,
    narrowing: Narrowing,
    *,
    direction: bool,
    min_correlation: float | None,
    max_correlation: float | None,
    include_p_values: bool,
) -> dict[str, Any]:
    """The #42 body: the symmetric matrix (1.0 diagonal) over the selected nodes, in symbol order."""
    calc = stored.calc
    selection, narrowed = select(stored, narrowing)
    idx = [stored.included[j] for j in selection]
    values = (stored.rho_dir if direction else stored.rho)[np.ix_(selection, selection)].copy()
    off = ~np.eye(len(selection), dtype=bool)
    with np.errstate(invalid="ignore"):
        if min_correlation is not None:
            values[off & (values < min_correlation)] = np.nan
        if max_correlation is not None:
            values[off & (values > max_correlation)] = np.nan
    p_values = stored.p[np.ix_(selection, selection)] if include_p_values else None
    threshold = float(calc["correlation_threshold"])
    return {
        "portfolio_id": str(calc["portfolio_id"]),
        "calculation_id": str(calc["id"]),
        "calculation_date": iso_date(calc["calculation_date"]),
        "duration_days": calc["duration_days"],
        "values": "direction_adjusted" if direction else "raw",
        "view": narrowing.view,
        "data_quality": calc["data_quality"],
        "window": _window(stored),
        "nodes": [
            {
                "symbol": stored.nodes[i]["symbol"],
                "position_ids": [str(p) for p in stored.nodes[i]["position_ids"]],
                "position_types": list(stored.nodes[i]["position_types"]),
                "exposure": money(stored.nodes[i]["exposure"]),
                "market_value": money(stored.nodes[i]["market_value"]),
                "observations": stored.nodes[i]["observations"],
                "sector": stored.nodes[i]["sector"],
            }
            for i in idx
        ],
        "correlations": _matrix(values),
        "observations_matrix": stored.n[np.ix_(selection, selection)].tolist(),
        "p_values": None if p_values is None else [[significant(v) for v in row] for row in p_values.tolist()],
        "filters_applied": {
            "view": narrowing.view,
            "values": "direction_adjusted" if direction else "raw",
            "position_types": list(narrowing.position_types),
            "min_correlation": min_correlation,
            "max_correlation": max_correlation,
            "min_exposure": money(narrowing.min_exposure),
            "min_position_value": money(narrowing.min_position_value),
            "min_portfolio_weight": narrowing.min_portfolio_weight,
            "filter_mode": narrowing.filter_mode,
        },
        "node_filters": _node_filters(stored, narrowing, threshold, len(selection), len(narrowed)),
    }
