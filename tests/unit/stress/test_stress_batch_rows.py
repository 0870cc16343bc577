"""Risk-metric rows, bulk-upsert parameters and the byte-matrix documents against the code they replace.

* `risk_metric_row` with its amounts formatted for the whole batch (`risk_service._formatted_amounts`)
  stores what the former row stored (money as `round_money` Decimals, copied below) for generated
  metrics and for ±0, NaN, None and an amount beyond Decimal cents (which fails its row alone);
* `bulk_upsert` sends the very parameters and SQL it sent (the former `_params` / `_json_safe`);
* `ItemRows` frames rows and runs as `RowTexts` frames their per-row texts (rows without items,
  non-ASCII text, runs of every size), and `plain_strings` answers as the former regex check.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any

import numpy as np
import orjson
import pytest
from tests.unit.stress.test_risk_vector_batch import market, portfolio, stored_betas, window_of

from common.formatting import money, round_money
from stress import bulk_upsert
from stress import risk_repository as repo
from stress.bulk_upsert import RawJson
from stress.compute.risk_metrics import ENGINE_VERSION, RiskMetrics, ewma_block
from stress.json_text import _NEEDS_ORJSON, ItemRows, RowTexts, TextTable, dumps, literal, plain_strings
from stress.models import risk_metric
from stress.models_scenarios import market_risk_result, stress_result_set
from stress.money_vector import money_blocks
from stress.risk_service import _formatted_amounts, compute_batch

# ---------------------------------------------------------------------------------------------
# risk_metric rows
# ---------------------------------------------------------------------------------------------


def reference_row(portfolio_id: uuid.UUID, as_of: date, m: RiskMetrics, run_id: uuid.UUID | None) -> dict[str, Any]:
    """The former `risk_metric_row`: money rounded to Decimal cents one value at a time."""

    def cents(value: float | None) -> Decimal | None:
        return None if value is None or not math.isfinite(value) else round_money(value)

    def number(value: float | None) -> float | None:
        return None if value is None or not math.isfinite(value) else float(value)

    h95, h99, p95, p99 = m.historical(0.95), m.historical(0.99), m.parametric(0.95), m.parametric(0.99)
    perf = m.performance
    ewma = ewma_block(m.var)
    if ewma is not None:
        ewma["sigma_daily"] = money(ewma["sigma_daily"])
        ewma["var"] = {k: money(x) for k, x in ewma["var"].items()}
        ewma["es"] = {k: money(x) for k, x in ewma["es"].items()}
    flags = sorted(set(m.flags))
    return {
        "portfolio_id": portfolio_id,
        "calculation_date": as_of,
        "equity": cents(m.equity),
        "var_window_start_date": m.window_start,
        "var_window_end_date": m.window_end,
        "var_observations": m.var.observations,
        "var_95_hist": cents(h95.var) if h95 else None,
        "var_99_hist": cents(h99.var) if h99 else None,
        "es_95_hist": cents(h95.es) if h95 else None,
        "es_99_hist": cents(h99.es) if h99 else None,
        "var_95_param": cents(p95.var) if p95 else None,
        "var_99_param": cents(p99.var) if p99 else None,
        "es_95_param": cents(p95.es) if p95 else None,
        "es_99_param": cents(p99.es) if p99 else None,
        "sigma_daily": cents(m.var.sigma_daily),
        "ewma": ewma,
        "ex_ante_volatility": number(m.ex_ante_volatility),
        "beta_ex_ante": number(m.beta_ex_ante),
        "series_type": perf.series_type,
        "performance_observations": perf.observations,
        "performance_start_date": perf.start_date,
        "performance_end_date": perf.end_date,
        "realized_volatility": number(perf.volatility),
        "beta_realized": number(perf.beta),
        "alpha_daily": number(perf.alpha_daily),
        "beta_r_squared": number(perf.r_squared),
        "beta_observations": perf.beta_observations,
        "sharpe_ratio": number(perf.sharpe),
        "sortino_ratio": number(perf.sortino),
        "max_drawdown": number(perf.max_drawdown),
        "max_drawdown_peak_date": perf.peak_date,
        "max_drawdown_trough_date": perf.trough_date,
        "max_drawdown_recovery_date": perf.recovery_date,
        "rate_exposure_dollar": cents(m.rate_exposure),
        "dv01": cents(m.dv01),
        "positions_total": m.positions_total,
        "positions_included": m.positions_included,
        "proxied": m.proxied,
        "backtest": m.backtest,
        "flags": flags,
        "data_status": "partial" if m.data_status == "partial" or "upstream_step_failed" in flags else "fresh",
        "engine_version": ENGINE_VERSION,
        "run_id": run_id,
    }


def generated_metrics(seed: int) -> dict[uuid.UUID, RiskMetrics]:
    """Metrics of generated portfolios over a full and a short VaR window (no EWMA block), with edge
    amounts: ±0, NaN, None, a tiny loss."""
    rng = np.random.default_rng(seed)
    metrics = []
    for days in (300, 30):
        dates, closes = market(rng, days, 40)
        window = window_of(dates, closes, stored_betas(rng, [s for s in closes if s != "SPY"]), True)
        templates = [window.dates[-n - 1 : -1] for n in (60, 130, 251) if window.dates.size > n]
        books = (portfolio(rng, sorted(closes), window.dates, templates) for _ in range(40))
        got = compute_batch(dates[-1].item(), window, {p.portfolio_id: p for p in books}, frozenset())
        metrics += [m for m in got.values() if isinstance(m, RiskMetrics)]
    assert len(metrics) > 50 and {m.var.ewma_sigma is None for m in metrics} == {True, False}
    edges = [{"equity": -0.0}, {"equity": math.nan}, {"equity": None}, {"dv01": -0.004}, {"rate_exposure": 0.005}]
    for i, change in enumerate(edges):
        metrics[i] = dataclasses.replace(metrics[i], **change)
    return {uuid.uuid4(): m for m in metrics}


def assert_stores_the_same(row: dict[str, Any], reference: dict[str, Any]) -> None:
    """The row stores what the reference stored: money text numeric_in reads as the very Decimal."""
    assert list(row) == list(reference)
    for key, value in reference.items():
        if isinstance(value, Decimal):
            assert isinstance(row[key], str) and Decimal(row[key]) == value and row[key] == money(value), key
        else:
            assert type(row[key]) is type(value) and row[key] == value, key


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # an overflowing wealth index, in every code
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_risk_metric_rows_store_what_the_per_value_rounding_stored(seed: int) -> None:
    metrics = generated_metrics(seed)
    as_of, run_id = date(2025, 6, 2), uuid.uuid4()
    amounts = _formatted_amounts(metrics)
    assert list(amounts) == list(metrics)
    for pid, m in metrics.items():
        reference = reference_row(pid, as_of, m, run_id)
        assert_stores_the_same(repo.risk_metric_row(pid, as_of, m, run_id, amounts=amounts[pid]), reference)
        assert_stores_the_same(repo.risk_metric_row(pid, as_of, m, run_id), reference)  # formatted alone


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_an_amount_beyond_decimal_cents_fails_its_row_alone() -> None:
    metrics = generated_metrics(4)
    bad = next(iter(metrics))
    metrics[bad] = dataclasses.replace(metrics[bad], rate_exposure=1e300)
    assert _formatted_amounts(metrics) == {}  # each row formats its own
    with pytest.raises(InvalidOperation):
        reference_row(bad, date(2025, 6, 2), metrics[bad], None)
    with pytest.raises(InvalidOperation):
        repo.risk_metric_row(bad, date(2025, 6, 2), metrics[bad], None)
    for pid, m in list(metrics.items())[1:]:
        assert_stores_the_same(
            repo.risk_metric_row(pid, date(2025, 6, 2), m, None), reference_row(pid, date(2025, 6, 2), m, None)
        )


# ---------------------------------------------------------------------------------------------
# bulk upsert parameters
# ---------------------------------------------------------------------------------------------


def reference_params(table: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The former `_params`: the scalars of every row rebuilt in the first row's column order."""
    columns = list(rows[0])
    documents = bulk_upsert._documents(table, columns)
    scalars = [c for c in columns if c not in documents]
    params: dict[str, Any] = {
        "rows": orjson.dumps([{c: row[c] for c in scalars} for row in rows], default=bulk_upsert._default).decode()
    }
    for i, c in enumerate(documents):
        params[f"doc_{i}"] = [None if row[c] is None else bulk_upsert.json_text(row[c]) for row in rows]
    return params


def reference_json_safe(rows: list[dict[str, Any]]) -> bool:
    return not any(isinstance(v, float) and not math.isfinite(v) for row in rows for v in row.values())


def test_bulk_parameters_and_statements_are_the_former_ones() -> None:
    rng = np.random.default_rng(3)
    market_rows = [
        {
            "portfolio_id": uuid.uuid4(),
            "calculation_date": date(2026, 1, 5) + timedelta(days=i % 3),
            "scenario_key": f"k{i}",
            "shock": float(rng.normal()),
            "predicted_pnl": money(float(rng.normal(0, 1e4))),
            "predicted_pnl_pct": None if i % 4 == 0 else -0.0 if i % 4 == 1 else float(rng.normal()),
            "exposure_dollar": Decimal("12.50"),
            "flags": ["loss_exceeds_equity"] if i % 5 == 0 else [],
            "run_id": None,
        }
        for i in range(40)
    ]
    assert bulk_upsert._params(market_risk_result, market_rows) == reference_params(market_risk_result, market_rows)
    result_sets = [
        {"stress_run_id": uuid.uuid4(), "top_positions": RawJson("[]"), "flags": [["a"], []], "direct_pnl": ["1.00"]}
        for _ in range(3)
    ]
    result_sets[1]["flags"] = None
    assert bulk_upsert._params(stress_result_set, result_sets) == reference_params(stress_result_set, result_sets)
    for special in (math.nan, math.inf, -math.inf, np.float64("nan"), np.float64(1.5), 2.0, None, "nan"):
        rows = [dict(r) for r in market_rows]
        rows[7]["shock"] = special
        assert bulk_upsert._json_safe(rows) == reference_json_safe(rows), special
    shape = (list(market_rows[0]), ("portfolio_id", "calculation_date", "scenario_key"), None, (), ())
    statement = bulk_upsert._upsert_statement(market_risk_result, tuple(shape[0]), *shape[1:])
    assert statement.text == bulk_upsert._upsert_sql(market_risk_result, *shape)
    assert bulk_upsert._upsert_statement(market_risk_result, tuple(shape[0]), *shape[1:]) is statement
    metric_shape = (["portfolio_id", "calculation_date", "ewma"], ("portfolio_id", "calculation_date"), None, (), ())
    assert "ewma" in bulk_upsert._upsert_sql(risk_metric, *metric_shape)


# ---------------------------------------------------------------------------------------------
# byte-matrix documents
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_item_rows_frame_rows_and_runs_as_row_texts_do(seed: int) -> None:
    rng = np.random.default_rng(seed)
    words = ["a", "bc", '"q"', "é€😀", "100%", "x" * 40, ""]
    n_rows = int(rng.integers(0, 40))
    counts = rng.integers(0, 4, n_rows) * (rng.random(n_rows) < 0.8)  # rows without items too
    texts = [dumps(str(rng.choice(words))) for _ in range(int(counts.sum()))]
    values = rng.normal(0, 1e4, len(texts))
    values[rng.random(len(texts)) < 0.1] = np.nan
    blocks = money_blocks([TextTable(texts).take(np.arange(len(texts))), ',"v":', values, "}"])
    items = ItemRows(blocks, counts, '{"k":[', "]}")
    tokens = ["null" if m is None else f'"{m}"' for m in (money(float(v)) for v in values)]
    item_texts = [f'{t},"v":{v}}}' for t, v in zip(texts, tokens, strict=True)]
    bounds = np.concatenate(([0], np.cumsum(counts))).tolist()
    expected = ['{"k":[' + ",".join(item_texts[a:b]) + "]}" for a, b in pairwise(bounds)]
    assert items.per_row() == expected
    reference = RowTexts([literal(t) for t in expected], [])
    for n_runs in (0, 1, 2, 3, 5, n_rows, n_rows + 1):  # rows beyond whole runs are left out, as there
        assert items.per_run(n_runs) == reference.per_run(n_runs), n_runs
    runs = items.per_run(2, RawJson)
    assert runs == reference.per_run(2) and all(type(t) is RawJson for t in runs)


def test_plain_strings_answer_as_the_regex_check() -> None:
    rng = np.random.default_rng(11)
    alphabet = [chr(c) for c in range(0x7F + 1)] + ["é", "€", "😀", "\u2028"]
    for _ in range(3_000):
        values = ["".join(rng.choice(alphabet, int(rng.integers(0, 4)))) for _ in range(int(rng.integers(0, 5)))]
        if rng.random() < 0.6:  # mostly plain text, as position identities are
            values = [v for v in values if v.isalnum()] or values
        assert plain_strings(values) == (not _NEEDS_ORJSON.search("".join(values))), values
    assert not plain_strings(["a", None]) and plain_strings([]) and not plain_strings(["\x7f", '"'])
