"""Reads behind the factor routes (#31, #32, #34, #45, #46): stored factors.* rows shaped into the
api.md §4.5–4.6 bodies.

I/O functions take the caller's session and read only the factors tables plus ingest.api_position
(position types) and marketdata views for the default dates; the shaping functions below them are
pure. Units: betas, correlations, t/p, R², VIF and volatilities are JSON numbers (stat); dollar
exposures are money strings (USD, 2 dp, signed: negative = short); covariances are daily.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import NotCalculated
from common.formatting import money, stat
from factors import compute
from factors import repository as repo
from factors.compute import FACTOR_CORR_WARN, FACTOR_WINDOW, RAW_RATE_NAME

MATRIX_HINT = "POST /api/v1/risk/correlations/factors/calculate"
EXPOSURE_HINT = "POST /api/v1/factors/calculate"
BATCH_HINT = "POST /api/v1/admin/batch/factors"
NO_SERIES_REASON = "no return series in v1"


def not_calculated(what: str, hint: str) -> NotCalculated:
    """404 NOT_CALCULATED naming the trigger (the admin batch step recomputes every portfolio)."""
    return NotCalculated(f"{what} not calculated yet; run {hint} (or {BATCH_HINT})", hint=hint)


def _finite(value: Any) -> float | None:
    return stat(value) if value is not None else None


# ---------------------------------------------------------------- factor matrix (#34, #35)


@dataclass(frozen=True)
class StoredMatrix:
    """One stored factor_matrix row with its cells as dense (k × k) arrays in `series` order."""

    row: dict[str, Any]
    series: tuple[str, ...]  # stored row/column names (model: codes; raw: SPY, MTUM, …, dy10)
    correlation: np.ndarray
    covariance: np.ndarray


async def load_matrix(
    session: AsyncSession, *, as_of: date | None, basis: str, lookback_days: int
) -> StoredMatrix | None:
    """The newest matrix of (basis, lookback) on or before `as_of` (any date when None)."""
    day = await repo.latest_matrix_date(session, lookback_days=lookback_days, on_or_before=as_of)
    if day is None:
        return None
    row = await repo.matrix(session, as_of=day, lookback_days=lookback_days, basis=basis)
    if row is None:
        return None
    return await _with_cells(session, row)


async def load_matrix_by_id(session: AsyncSession, *, matrix_id: UUID) -> StoredMatrix | None:
    row = await repo.matrix_by_id(session, matrix_id=matrix_id)
    return await _with_cells(session, row) if row else None


async def _with_cells(session: AsyncSession, row: dict[str, Any]) -> StoredMatrix:
    series = tuple(row["factor_codes"])
    cells = await repo.matrix_cells(session, matrix_id=row["id"])
    corr, cov = dense_cells(series, [(c["factor_1"], c["factor_2"], c["correlation"], c["covariance"]) for c in cells])
    return StoredMatrix(row, series, corr, cov)


def dense_cells(series: Sequence[str], cells: Sequence[tuple[str, str, float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(correlation, covariance) k × k in `series` order; NaN where a cell is missing."""
    index = {s: i for i, s in enumerate(series)}
    k = len(series)
    corr = np.full((k, k), np.nan)
    cov = np.full((k, k), np.nan)
    for f1, f2, rho, sigma in cells:
        i, j = index.get(f1), index.get(f2)
        if i is not None and j is not None:
            corr[i, j], cov[i, j] = rho, sigma
    return corr, cov


def correlation_diagnostics(corr: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """§7.1 diagnostics of a correlation matrix: eigenvalues, standardised condition number
    sqrt(λmax/λmin), VIF_k = diag(R⁻¹)_k (each series against the others, with intercept) and the
    off-diagonal mean/max/min. Same definitions as compute.matrix_stats, from the stored cells."""
    k = len(names)
    if k == 0 or not np.isfinite(corr).all():
        return {"condition_number": None, "eigenvalues": [], "vif": {}, "mean_off_diagonal": None,
                "max_off_diagonal": None, "min_off_diagonal": None}  # fmt: skip
    eig = np.linalg.eigvalsh(corr)[::-1]
    cond = float(np.sqrt(eig[0] / eig[-1])) if eig[-1] > 0 else None
    vif = np.diag(compute.safe_inv(corr)) if k > 1 else np.ones(1)
    off = corr[np.triu_indices(k, 1)]
    return {
        "condition_number": _finite(cond),
        "eigenvalues": [_finite(v) for v in eig],
        "vif": {n: _finite(v) for n, v in zip(names, vif, strict=True)},
        "mean_off_diagonal": _finite(off.mean()) if off.size else None,
        "max_off_diagonal": _finite(off.max()) if off.size else None,
        "min_off_diagonal": _finite(off.min()) if off.size else None,
    }


def high_pairs(corr: np.ndarray, names: Sequence[str]) -> list[dict[str, Any]]:
    """Pairs (i < j) with |ρ| > 0.8, strongest first."""
    i, j = np.triu_indices(len(names), 1)
    rho = corr[i, j]
    keep = np.abs(np.nan_to_num(rho)) > FACTOR_CORR_WARN
    order = np.argsort(-np.abs(rho[keep]), kind="stable")
    ii, jj, rr = i[keep][order], j[keep][order], rho[keep][order]
    return [
        {"factor_1": names[a], "factor_2": names[b], "correlation": _finite(r)}
        for a, b, r in zip(ii.tolist(), jj.tolist(), rr.tolist(), strict=True)
    ]


def series_codes(series: Sequence[str], proxies: Mapping[str, str]) -> list[str]:
    """Factor codes of stored series names: model rows store codes; raw rows store proxy symbols
    (and `dy10` for the 10-year yield change), mapped back through the registry."""
    return [proxies.get(s, "interest_rate" if s == RAW_RATE_NAME else s) for s in series]


def _matrix_list(a: np.ndarray) -> list[list[float | None]]:
    return [[_finite(v) if np.isfinite(v) else None for v in row] for row in a]


def matrix_body(stored: StoredMatrix, proxies: Mapping[str, str]) -> dict[str, Any]:
    """#34 body. `proxies` maps proxy symbol → factor code (registry)."""
    row = stored.row
    basis = row["basis"]
    codes = series_codes(stored.series, proxies)
    corr, cov = stored.correlation, stored.covariance
    # Annualised volatility = daily sample std × √252 (the diagonal of the daily covariance).
    vol = np.sqrt(np.diag(cov) * compute.ANNUALIZATION)
    diagnostics = correlation_diagnostics(corr, codes)
    flags = [f for f in (row.get("flags") or []) if basis == "model" or f != "factor_correlation_high"]
    return {
        "matrix_id": str(row["id"]),
        "basis": basis,
        "calculation_date": row["calculation_date"].isoformat(),
        "lookback_days": int(row["lookback_days"]),
        "window": {
            "start_date": row["window_start_date"].isoformat(),
            "end_date": row["window_end_date"].isoformat(),
            "observations": int(row["observations"]),
        },
        "factors": codes,
        "series": list(stored.series),
        "correlations": _matrix_list(corr),
        "covariance_daily": _matrix_list(cov),
        "annualized_volatility": {c: _finite(v) for c, v in zip(codes, vol, strict=True)},
        "market_loadings": (
            {k: _finite(v) for k, v in (row.get("market_loadings") or {}).items()} if basis == "model" else None
        ),
        "diagnostics": diagnostics,
        # On the raw basis |ρ| > 0.8 is expected (every style ETF is mostly market) and only listed.
        "high_correlation_pairs": high_pairs(corr, codes),
        "flags": flags,
    }


async def registry_proxies(session: AsyncSession) -> dict[str, str]:
    """proxy symbol → factor code for every factor with a proxy."""
    return {d.proxy: d.code for d in await repo.factor_definitions(session) if d.proxy}


async def factor_history_problems(session: AsyncSession, *, as_of: date, lookback_days: int) -> list[dict[str, Any]]:
    """Why the factor model of `as_of` cannot be built (fewer than 60 complete rows of SPY, the style
    ETFs and Δy in the window), as error `details`; [] when it can. Runs the model's own sample
    rule (compute.build_factor_model) on the proxy series: 8 series × lookback rows."""
    defs = [d for d in await repo.factor_definitions(session) if d.is_active and d.calculation_method == "regression"]
    market = next((d for d in defs if d.code == compute.MARKET), None)
    if market is None or market.proxy is None:
        return [{"field": "registry", "issue": "no market factor", "value": None}]
    days = await repo.trading_window(session, as_of=as_of, returns=lookback_days)
    if len(days) < 2:
        return [{"field": market.proxy, "issue": "returns in window", "value": 0}]
    etfs = [d for d in defs if d.proxy_type == "etf" and d.code != compute.MARKET]
    closes = await repo.close_matrix(session, symbols=[market.proxy, *[d.proxy or "" for d in etfs]], days=days)
    returns = compute.simple_returns(closes)
    others: dict[str, np.ndarray] = {d.code: returns[:, j + 1] for j, d in enumerate(etfs)}
    names = {d.code: d.proxy or d.code for d in etfs}
    rate = next((d for d in defs if d.proxy_type == "rate_series"), None)
    if rate is not None and rate.proxy is not None:
        others[rate.code] = compute.yield_changes(await repo.rate_levels(session, days=days, series=rate.proxy))
        names[rate.code] = rate.proxy
    try:
        compute.build_factor_model(days[1:], returns[:, 0], others, raw_names=names, market_name=market.proxy)
    except compute.FactorModelError as exc:
        return list(exc.details) or [{"field": "factor_model", "issue": str(exc), "value": None}]
    return []


# ---------------------------------------------------------------- portfolio exposures (#31, #45)


@dataclass(frozen=True)
class StoredExposures:
    portfolio_id: UUID
    calculation_date: date
    rows: list[Mapping[str, Any]]  # portfolio_factor_exposure joined with the registry
    definitions: list[repo.FactorDef]
    window: dict[str, Any] | None
    latest_market_date: date | None


async def load_exposures(session: AsyncSession, *, portfolio_id: UUID, as_of: date | None) -> StoredExposures:
    """The portfolio's stored exposures of the newest date on or before `as_of`; 404 NOT_CALCULATED."""
    day = await repo.latest_exposure_date(session, portfolio_id=portfolio_id, on_or_before=as_of)
    if day is None:
        raise not_calculated("Factor exposures", EXPOSURE_HINT)
    rows = await repo.portfolio_exposure_rows(session, portfolio_id=portfolio_id, as_of=day)
    model = await repo.matrix(session, as_of=day, lookback_days=FACTOR_WINDOW, basis="model")
    window = (
        {
            "start_date": model["window_start_date"].isoformat(),
            "end_date": model["window_end_date"].isoformat(),
            "observations": int(model["observations"]),
        }
        if model
        else None
    )
    return StoredExposures(
        portfolio_id=portfolio_id,
        calculation_date=day,
        rows=[dict(r) for r in rows],
        definitions=await repo.factor_definitions(session),
        window=window,
        latest_market_date=await repo.latest_market_date(session),
    )


def _factor_item(d: repo.FactorDef, r: Mapping[str, Any] | None) -> dict[str, Any]:
    if r is None:
        reason = NO_SERIES_REASON if not d.is_active or d.calculation_method == "not_calculated" else "not stored"
        return {"code": d.code, "name": d.name, "proxy": d.proxy, "beta": None, "beta_gross": None,
                "exposure_dollar": None, "largest_contributor": None, "contributing_positions": None,
                "status": "not_calculated", "reason": reason}  # fmt: skip
    return {
        "code": d.code,
        "name": d.name,
        "proxy": d.proxy,
        "beta": _finite(r["beta"]),
        "beta_gross": _finite(r["beta_gross"]),
        "exposure_dollar": money(r["exposure_dollar"]),
        "largest_contributor": r["largest_contributor"],
        "contributing_positions": r["contributing_positions"],
        "status": r["status"],
        "reason": r["reason"],
    }


def data_status(calculation_date: date, latest: date | None, partial: bool) -> str:
    """api.md §2.11: stale when older than the latest market date, else partial when positions were
    left out or carry default betas, else fresh."""
    if latest is not None and calculation_date < latest:
        return "stale"
    return "partial" if partial else "fresh"


def exposures_body(stored: StoredExposures) -> dict[str, Any]:
    """#45 body (without attribution)."""
    by_code = {r["code"]: r for r in stored.rows}
    # Portfolio-wide fields are repeated on every stored row; the market row is the reference.
    head = by_code.get(compute.MARKET) or (stored.rows[0] if stored.rows else {})
    rate = by_code.get(compute.RATE)
    rate_dollar = rate["exposure_dollar"] if rate is not None and rate["status"] == "ok" else None
    excluded = list(head.get("excluded") or [])
    full, limited, default = (
        int(head.get(k) or 0) for k in ("positions_full", "positions_limited", "positions_default")
    )
    return {
        "portfolio_id": str(stored.portfolio_id),
        "calculation_date": stored.calculation_date.isoformat(),
        "data_status": data_status(stored.calculation_date, stored.latest_market_date, bool(excluded or default)),
        "window": stored.window,
        "equity": money(head.get("equity")),
        "gross_exposure": money(head.get("gross_exposure")),
        "factors": [_factor_item(d, by_code.get(d.code)) for d in stored.definitions],
        # exposure_dollar = P&L per 1.00 change of the 10-year yield; dv01 = P&L per +1 bp (÷ 10,000).
        "rate_sensitivity": {
            "exposure_dollar": money(rate_dollar),
            "dv01": money(rate_dollar / 10_000) if rate_dollar is not None else None,
            "beta": _finite(rate["beta"]) if rate is not None else None,
        },
        "coverage": {
            "positions_total": full + limited + default + len(excluded),
            "full_history": full,
            "limited_history": limited,
            "default_betas": default,
            "excluded": excluded,
            "coverage_pct": _finite(head.get("coverage_pct")),
        },
        "flags": list(head.get("flags") or []),
        "attribution": None,
    }


# ---------------------------------------------------------------- position exposures (#32, #46)

SORT_COLUMNS = {"symbol": "symbol", "dollar_exposure": "dollar_exposure"}
QUALITY_FLAGS = ("full_history", "limited_history", "insufficient_history")


@dataclass(frozen=True)
class PositionQuery:
    portfolio_id: UUID
    as_of: date
    codes: list[str]  # factors to return (all regression factors when empty)
    types: list[str]  # position_type filter (OR)
    quality: str | None
    sort: list[tuple[str, bool]]  # (symbol | dollar_exposure | beta.<code>, descending)
    limit: int
    offset: int


# A double that JSON cannot carry (±inf t-stat of an exact fit, NaN) is read as NULL.
def _num(expr: str) -> str:
    return f"CASE WHEN {expr} IN ('Infinity'::float8, '-Infinity'::float8, 'NaN'::float8) THEN NULL ELSE {expr} END"


POSITIONS_SQL = f"""
WITH pos AS (
    SELECT e.position_id, e.symbol, e.underlying_symbol, e.exposure AS dollar_exposure, e.quality_flag,
           e.beta_source, f.betas, f.exposure_dollar
    FROM factors.position_factor_exposure e
    CROSS JOIN LATERAL (
        SELECT jsonb_object_agg(d.code, {_num("x.beta")}) AS betas,
               jsonb_object_agg(d.code, CAST(CAST(x.dollars AS numeric(20,2)) AS text)) AS exposure_dollar
        FROM unnest(e.factor_ids, e.betas, e.exposure_dollars) AS x(factor_id, beta, dollars)
        JOIN factors.factor_definition d ON d.id = x.factor_id
    ) f
    WHERE e.portfolio_id = :pid AND e.calculation_date = :d
)
SELECT pos.*, p.position_type, r.observations, r.window_start_date, r.window_end_date,
       {_num("r.condition_number")} AS condition_number, {_num("r.r_squared_joint")} AS r_squared_joint,
       {_num("r.alpha_daily")} AS alpha_daily, {_num("r.alpha_p_value")} AS alpha_p_value,
       {_num("r.residual_volatility")} AS residual_volatility, r.flags AS regression_flags,
       diag.std_errors, diag.t_stats, diag.p_values, diag.r_squared, diag.adj_r_squared, diag.vif,
       count(*) OVER () AS total
FROM pos
LEFT JOIN ingest.api_position p ON p.id = pos.position_id
LEFT JOIN factors.underlying_regression r ON r.symbol = pos.underlying_symbol AND r.calculation_date = :d
LEFT JOIN LATERAL (
    SELECT jsonb_object_agg(fd.code, {_num("b.std_error")}) AS std_errors,
           jsonb_object_agg(fd.code, {_num("b.t_stat")}) AS t_stats,
           jsonb_object_agg(fd.code, {_num("b.p_value")}) AS p_values,
           jsonb_object_agg(fd.code, {_num("b.r_squared")}) AS r_squared,
           jsonb_object_agg(fd.code, {_num("b.adj_r_squared")}) AS adj_r_squared,
           jsonb_object_agg(fd.code, {_num("b.vif")}) AS vif
    FROM factors.underlying_factor_beta b
    JOIN factors.factor_definition fd ON fd.id = b.factor_id
    WHERE b.symbol = pos.underlying_symbol AND b.calculation_date = :d
) diag ON true
WHERE (CAST(:types AS text[]) IS NULL OR p.position_type = ANY(CAST(:types AS text[])))
  AND (CAST(:quality AS text) IS NULL OR pos.quality_flag = CAST(:quality AS text))
"""


def order_by(sort: Sequence[tuple[str, bool]]) -> tuple[str, dict[str, Any]]:
    """ORDER BY of #46 from validated sort keys; beta keys are bound parameters; id is the tiebreaker."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    for n, (name, desc) in enumerate(sort):
        direction = "DESC" if desc else "ASC"
        if name.startswith("beta."):
            params[f"sort_code_{n}"] = name.removeprefix("beta.")
            parts.append(f"(pos.betas ->> :sort_code_{n})::float8 {direction} NULLS LAST")
        else:
            parts.append(f"pos.{SORT_COLUMNS[name]} {direction} NULLS LAST")
    parts.append("pos.position_id ASC")
    return "ORDER BY " + ", ".join(parts), params


async def position_page(session: AsyncSession, q: PositionQuery) -> tuple[list[dict[str, Any]], int]:
    """One page of position exposures (filtered, sorted and paged in SQL) and the filtered total."""
    order, params = order_by(q.sort)
    sql = POSITIONS_SQL + order + " LIMIT :limit OFFSET :offset"
    rows = (
        (
            await session.execute(
                sa.text(sql),
                {
                    "pid": q.portfolio_id,
                    "d": q.as_of,
                    "types": q.types or None,
                    "quality": q.quality,
                    "limit": q.limit,
                    "offset": q.offset,
                    **params,
                },
            )
        )
        .mappings()
        .all()
    )
    total = int(rows[0]["total"]) if rows else await _count(session, q)
    return [dict(r) for r in rows], total


async def _count(session: AsyncSession, q: PositionQuery) -> int:
    """Total when the page is empty (offset past the end): the window count is not available then."""
    sql = f"SELECT count(*) FROM ({POSITIONS_SQL}) AS t"
    value = (
        await session.execute(
            sa.text(sql), {"pid": q.portfolio_id, "d": q.as_of, "types": q.types or None, "quality": q.quality}
        )
    ).scalar()
    return int(value or 0)


def _pick(values: Mapping[str, Any] | None, codes: Sequence[str]) -> dict[str, Any]:
    values = values or {}
    return {c: _finite(values.get(c)) for c in codes}


def position_item(r: Mapping[str, Any], codes: Sequence[str]) -> dict[str, Any]:
    """One #46 item: betas with their diagnostics (per factor: t, p, R², VIF, std error; per
    underlying: observations, condition number, joint R², flags), and X_{i,f} = E_i × β_{u(i),f}."""
    exposure = r["exposure_dollar"] or {}
    default = r["beta_source"] == "default"
    return {
        "position_id": str(r["position_id"]),
        "symbol": r["symbol"],
        "underlying_symbol": r["underlying_symbol"],
        "position_type": r["position_type"],
        "dollar_exposure": money(r["dollar_exposure"]),
        "quality_flag": r["quality_flag"],
        "beta_source": r["beta_source"],
        "observations": r["observations"],
        "window": (
            {"start_date": r["window_start_date"].isoformat(), "end_date": r["window_end_date"].isoformat()}
            if r["window_start_date"] is not None
            else None
        ),
        "betas": _pick(r["betas"], codes),
        "t_stats": _pick(r["t_stats"], codes),
        "p_values": _pick(r["p_values"], codes),
        "std_errors": _pick(r["std_errors"], codes),
        "r_squared": _pick(r["r_squared"], codes),
        "adj_r_squared": _pick(r["adj_r_squared"], codes),
        "vif": _pick(r["vif"], codes),
        "condition_number": _finite(r["condition_number"]),
        "r_squared_joint": _finite(r["r_squared_joint"]),
        "alpha_daily": _finite(r["alpha_daily"]),
        "alpha_p_value": _finite(r["alpha_p_value"]),
        "residual_volatility": _finite(r["residual_volatility"]),
        "exposure_dollar": {c: money(exposure.get(c)) for c in codes},
        "covered": not default,
        "flags": list(r["regression_flags"] or []),
    }


async def regression_codes(session: AsyncSession) -> list[str]:
    """Codes of the factors that carry betas (active regression factors), in display order."""
    return [
        d.code for d in await repo.factor_definitions(session) if d.calculation_method == "regression" and d.is_active
    ]
