"""The correlations block of the report document (users.md §4.5–4.6): the portfolio metrics of the latest
position-correlation calculation, its stored clusters and the pairwise matrix of its included nodes, as
factors publishes them (the numbers of GET /api/v1/risk/correlations/positions/metrics and /matrix).
Pure; money as 2-dp strings, correlations to 6 dp, shares as 4-dp fractions (users.md §4.8).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from common.formatting import iso_date, money, stat
from stress.reports.inputs import ReportInputs, Row

CORRELATION_DP, SHARE_DP = 6, 4


def clusters(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Member rows of one calculation (ordered by cluster number, then member) → one entry per cluster.

    Numbers follow descending cluster gross; shares are of Σ|e| over the calculation's included nodes."""
    out: list[dict[str, Any]] = []
    for row in rows:
        if not out or out[-1]["cluster_number"] != row["cluster_number"]:
            out.append(
                {
                    "cluster_number": row["cluster_number"],
                    "nickname": row["nickname"],
                    "nickname_source": row["nickname_source"],
                    "avg_correlation": stat(row["avg_correlation"], CORRELATION_DP),
                    "gross": money(row["gross"]),
                    "net": money(row["net"]),
                    "share_of_gross": stat(row["share_of_gross"], SHARE_DP),
                    "members": [],
                }
            )
        out[-1]["members"].append(
            {
                "symbol": row["member_symbol"],
                "exposure": money(row["member_exposure"]),
                "share_of_gross": stat(row["member_share_of_gross"], SHARE_DP),
                "correlation_to_cluster": stat(row["correlation_to_cluster"], CORRELATION_DP),
            }
        )
    return out


def matrix(pairs: Row | None) -> dict[str, Any]:
    """The symmetric matrix of raw ρ over the included nodes (symbol order, 1.0 diagonal, null where a
    pair has fewer than 30 common returns) from the upper-triangle pair arrays."""
    if pairs is None:
        return {"symbols": [], "values": []}
    first, second = pairs["symbols_1"], pairs["symbols_2"]
    symbols = sorted({*first, *second})  # code-point order, as factors orders nodes (COLLATE "C")
    order = np.array(symbols)
    row, col = np.searchsorted(order, first), np.searchsorted(order, second)
    rho = np.array(pairs["correlations"], dtype=float)  # NULL → NaN
    values = np.full((len(symbols), len(symbols)), np.nan)
    values[row, col] = rho
    values[col, row] = rho
    np.fill_diagonal(values, 1.0)
    return {"symbols": symbols, "values": [[stat(v, CORRELATION_DP) for v in line] for line in values.tolist()]}


def correlations(inputs: ReportInputs) -> dict[str, Any] | None:
    """Metrics, clusters and matrix of the latest calculation on or before the report date (None: none)."""
    c = inputs.correlation
    if c is None:
        return None
    return {
        "calculation_date": iso_date(c["calculation_date"]),
        "overall": stat(c["average_correlation"], CORRELATION_DP),
        "weighted": stat(c["weighted_average_correlation"], CORRELATION_DP),
        "concentration_score": stat(c["concentration_gross"], CORRELATION_DP),
        "concentration_net": stat(c["concentration_net"], CORRELATION_DP),
        "effective_positions": stat(c["effective_positions_corr"], 4),
        "window": {
            "days": c["duration_days"],
            "start_date": iso_date(c["window_start_date"]),
            "end_date": iso_date(c["window_end_date"]),
        },
        "positions_included": c["nodes_included"],
        "positions_excluded": c["nodes_excluded"],
        "correlation_threshold": stat(c["correlation_threshold"], CORRELATION_DP),
        "clusters": clusters(inputs.correlation_clusters),
        "matrix": matrix(inputs.correlation_pairs),
    }
