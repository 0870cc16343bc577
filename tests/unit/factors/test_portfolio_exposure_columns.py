"""service._portfolio_columns (portfolio_factor_exposure as columns for one binary COPY) holds, row for
row, the values the former per-row builder gave: registry order with an inactive factor in the middle,
a position without exposure (missing_exposure + excluded JSON), unknown cash, equity ≤ 0 (NULL betas),
an underlying without stored betas (default betas) and a portfolio holding nothing."""

from __future__ import annotations

import json
import math
import uuid
from decimal import Decimal
from typing import Any

import numpy as np

from factors import compute, service
from factors import repository as repo

REGRESSION = ["market", "value", "growth", "interest_rate"]
CODES = ["market", "value", "short_interest", "growth", "interest_rate"]  # display order
IDS = {c: uuid.uuid5(uuid.NAMESPACE_DNS, f"pec-{c}") for c in CODES}
PIDS = [uuid.uuid5(uuid.NAMESPACE_DNS, f"pec-p{n}") for n in range(4)]
RUN = uuid.uuid5(uuid.NAMESPACE_DNS, "pec-run")


def registry() -> service._Registry:
    return service._Registry(
        ids=IDS,
        codes=CODES,
        regression_codes=REGRESSION,
        market="market",
        proxies={"market": "SPY", "value": "IWD", "growth": "IWF", "interest_rate": "DGS10"},
        rate_codes={"interest_rate"},
    )


def book() -> tuple[repo.Valuations, repo.StoredBetas, list[str]]:
    # p0: three positions, one without exposure; p1: cash unknown; p2: equity below zero; p3: nothing.
    rows = [
        (0, "AAA", "AAA", Decimal("120000.37"), Decimal("120000.37")),
        (0, "BBB", "BBB", Decimal("-30000.005"), Decimal("-30000.005")),
        (0, "CCC", "CCC", Decimal("5000"), None),
        (1, "AAA_P", "AAA", Decimal("2500.125"), Decimal("-61234.675")),
        (1, "ZZZ", "ZZZ", Decimal("10000"), Decimal("10000")),  # no stored betas: default
        (2, "BBB", "BBB", Decimal("1000"), Decimal("1000")),
    ]
    valued = repo.Valuations(
        position_id=[uuid.uuid5(uuid.NAMESPACE_DNS, f"pec-pos{i}") for i in range(len(rows))],
        portfolio_id=[PIDS[p] for p, *_ in rows],
        symbol=[s for _, s, *_ in rows],
        underlying=[u for _, _, u, *_ in rows],
        instrument_type=["equity"] * len(rows),
        position_type=["long"] * len(rows),
        expiration=[None] * len(rows),
        market_value=[mv for *_, mv, _ in rows],
        exposure=[e for *_, e in rows],
        cash={PIDS[0]: Decimal("50000"), PIDS[2]: Decimal("-90000"), PIDS[3]: Decimal("0")},
    )
    stored = repo.StoredBetas(
        symbols=["AAA", "BBB", "CCC"],
        codes=REGRESSION,
        beta=np.array([[1.2, 0.3, -0.1, -2.0], [0.8, np.nan, 0.45, 1.0 / 3.0], [1.0, 0.0, 0.0, 0.0]]),
        beta_source=["regression", "regression", "default"],
        quality=["full_history", "limited_history", compute.QUALITY_INSUFFICIENT],
        observations=[250, 80, 20],
        flags=[[], [], []],
    )
    return valued, stored, sorted(set(valued.underlying))


def former_rows(
    registry: service._Registry, ids: list[uuid.UUID], valued: repo.Valuations, underlyings: list[str], r: Any
) -> list[tuple[Any, ...]]:
    """The former per-row builder (before the binary COPY), without the date column."""

    def money(v: float) -> float | None:
        return round(float(v), 2) if np.isfinite(v) else None

    def ratio(v: float) -> float | None:
        return float(v) if np.isfinite(v) else None

    pe = r.portfolio
    excluded_by: dict[int, list[dict[str, str]]] = {}
    for i in np.flatnonzero(~np.isfinite(r.book.exposure)).tolist():
        excluded_by.setdefault(int(r.book.portfolio[i]), []).append(
            {"position_id": str(valued.position_id[i]), "symbol": valued.symbol[i], "reason": "missing_exposure"}
        )
    out = []
    column = {c: j for j, c in enumerate(registry.regression_codes)}
    for p, pid in enumerate(ids):
        flags = [
            name
            for name, on in (
                ("equity_undefined", bool(pe.equity_undefined[p])),
                ("cash_unknown", bool(r.cash_unknown[p])),
                ("missing_exposure", p in excluded_by),
            )
            if on
        ]
        common = (money(float(pe.equity[p])), money(float(pe.gross_exposure[p])))
        counts = (int(pe.positions_full[p]), int(pe.positions_limited[p]), int(pe.positions_default[p]))
        excluded_json = json.dumps(excluded_by[p]) if p in excluded_by else "[]"
        for code in registry.codes:
            j = column.get(code)
            if j is None:
                values: tuple[Any, ...] = (None, None, None, *common, 0, None, ratio(float(pe.coverage_pct[p])))
                status, reason = "not_calculated", service.NO_RETURN_SERIES
            else:
                largest = int(pe.largest_contributor[p, j])
                values = (
                    money(float(pe.exposure_dollar[p, j])),
                    ratio(float(pe.beta[p, j])),
                    ratio(float(pe.beta_gross[p, j])),
                    *common,
                    int(pe.contributing[p, j]),
                    underlyings[largest] if largest >= 0 else None,
                    ratio(float(pe.coverage_pct[p])),
                )
                status, reason = str(pe.status[p, j]), pe.reason[p, j]
            out.append(
                (pid, registry.ids[code], *values, *counts, status, reason, flags, excluded_json,
                 compute.ENGINE_VERSION, RUN)
            )  # fmt: skip
    return out


def rows_of(c: repo.PortfolioExposureColumns) -> list[tuple[Any, ...]]:
    """The columns read back row by row, each value as the former builder would have sent it."""

    def money(v: float) -> float | None:
        return round(float(v), 2) if math.isfinite(v) else None

    def ratio(v: float) -> float | None:
        return float(v) if math.isfinite(v) else None

    f = len(c.factor_id)
    return [
        (pid, fid, money(c.exposure_dollar[p, j]), ratio(c.beta[p, j]), ratio(c.beta_gross[p, j]),
         money(c.equity[p]), money(c.gross_exposure[p]), int(c.contributing_positions[p, j]),
         c.largest_contributor[p * f + j], ratio(c.coverage_pct[p]), int(c.positions_full[p]),
         int(c.positions_limited[p]), int(c.positions_default[p]), c.status[p * f + j], c.reason[p * f + j],
         c.flags[p], c.excluded[p], c.engine_version, c.run_id)
        for p, pid in enumerate(c.portfolio_id)
        for j, fid in enumerate(c.factor_id)
    ]  # fmt: skip


def test_portfolio_columns_hold_the_former_rows() -> None:
    reg = registry()
    valued, stored, underlyings = book()
    r = service._compute(reg, PIDS, valued, stored, underlyings)
    columns = service._portfolio_columns(reg, PIDS, valued, underlyings, r, run_id=RUN)
    former = former_rows(reg, PIDS, valued, underlyings, r)
    assert len(former) == len(PIDS) * len(CODES)
    assert rows_of(columns) == former
    # The cases are really there: an inactive row, NULL betas, each flag, the excluded position.
    assert {row[13] for row in former} == {"ok", "not_calculated"}
    assert any(row[3] is None and row[13] == "ok" for row in former)
    assert {flag for row in former for flag in row[15]} == {"equity_undefined", "cash_unknown", "missing_exposure"}
    assert "CCC" in former[0][16]
