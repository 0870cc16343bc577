"""Store the market-wide factor model of one date (calculations.md §4.1–4.5, §7.1): rows built from
`compute.FactorModel` / `compute.RegressionBatch` for the repository's COPY writes.

Pure row building lives here so `factors.service` stays orchestration only. Every NaN becomes NULL
(JSON `null`); nothing is rounded (float64 columns).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any
from uuid import UUID

import numpy as np

from factors import compute
from factors.compute import FactorModel, MatrixStats, RegressionBatch

LOOKBACK_DAYS = compute.FACTOR_WINDOW


def _num(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def nullable(values: np.ndarray) -> list[Any]:
    """float array → flat list of floats with None where not finite (NULL in the database)."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    out = arr.astype(object)
    out[~np.isfinite(arr)] = None
    result: list[Any] = out.tolist()
    return result


def _diagnostics(stats: MatrixStats) -> dict[str, Any]:
    return {
        "eigenvalues": nullable(stats.eigenvalues),
        "condition_number": _num(stats.condition_number),
        "vif": dict(zip(stats.codes, nullable(stats.vif), strict=True)),
        "off_diagonal": {
            "mean": _num(stats.off_diagonal_mean),
            "max": _num(stats.off_diagonal_max),
            "min": _num(stats.off_diagonal_min),
        },
        "high_correlation_pairs": [
            {"factor_1": a, "factor_2": b, "correlation": rho} for a, b, rho in stats.high_pairs
        ],
    }


def _cells(stats: MatrixStats) -> list[tuple[str, str, float, float]]:
    k = len(stats.codes)
    i, j = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    return [
        (stats.codes[a], stats.codes[b], float(stats.correlation[a, b]), float(stats.covariance[a, b]))
        for a, b in zip(i.ravel().tolist(), j.ravel().tolist(), strict=True)
    ]


def matrix_rows(
    model: FactorModel, *, as_of: date, run_id: UUID | None
) -> list[tuple[dict[str, Any], list[tuple[str, str, float, float]]]]:
    """(row, cells) of the `model` basis (orthogonalised series, used by §6) and the `raw` basis."""
    common = {
        "calculation_date": as_of,
        "lookback_days": LOOKBACK_DAYS,
        "window_start_date": model.window_start,
        "window_end_date": model.window_end,
        "observations": model.observations,
        "engine_version": compute.ENGINE_VERSION,
        "run_id": run_id,
    }
    flags = list(model.flags)
    unavailable = dict(model.unavailable)
    out = []
    for basis, stats in (("model", model.model_stats), ("raw", model.raw_stats)):
        diagnostics = _diagnostics(stats)
        if basis == "model":
            diagnostics["unavailable"] = unavailable
        row = common | {
            "basis": basis,
            "factor_codes": list(stats.codes),
            "market_loadings": {k: _num(v) for k, v in model.loadings.items()} if basis == "model" else None,
            "volatilities": dict(zip(stats.codes, nullable(stats.volatility), strict=True)),
            "diagnostics": diagnostics,
            "flags": flags if basis == "model" else [f for f in flags if f == "factor_data_suspect"],
        }
        out.append((row, _cells(stats)))
    return out


def regression_rows(
    batch: RegressionBatch,
    *,
    model: FactorModel,
    symbols: Sequence[str],
    factor_ids: Mapping[str, UUID],
    matrix_id: UUID,
    as_of: date,
    run_id: UUID | None,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """underlying_regression rows (repository.REGRESSION_COLUMNS) and underlying_factor_beta rows
    (repository.BETA_COLUMNS) of the batch's underlyings `symbols`."""
    dates = model.dates
    start = [dates[i] if i >= 0 else model.window_start for i in batch.first.tolist()]
    end = [dates[i] if i >= 0 else model.window_end for i in batch.last.tolist()]
    flags = [list(compute.flag_names(int(bits))) for bits in batch.flags.tolist()]
    regressions = list(
        zip(
            symbols,
            [as_of] * len(symbols),
            [matrix_id] * len(symbols),
            start,
            end,
            batch.n.tolist(),
            batch.quality.tolist(),
            batch.beta_source.tolist(),
            nullable(batch.alpha),
            nullable(batch.alpha_p_value),
            nullable(batch.residual_volatility),
            nullable(batch.r_squared_joint),
            nullable(batch.condition_number),
            flags,
            [compute.ENGINE_VERSION] * len(symbols),
            [run_id] * len(symbols),
            strict=True,
        )
    )
    columns = [j for j, code in enumerate(batch.codes) if code in factor_ids]
    n, k = len(symbols), len(columns)
    per_factor = [
        nullable(getattr(batch, name)[:, columns].ravel())
        for name in ("beta", "std_error", "t_stat", "p_value", "r_squared", "adj_r_squared", "vif")
    ]
    betas = list(
        zip(
            np.repeat(np.asarray(symbols, dtype=object), k).tolist(),
            [as_of] * (n * k),
            [factor_ids[batch.codes[j]] for j in columns] * n,
            *per_factor,
            strict=True,
        )
    )
    return regressions, betas
