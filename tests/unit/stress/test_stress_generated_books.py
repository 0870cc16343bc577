"""The stress step's batch builders against the per-item code they replace, on generated books.

Books of several portfolios — one without positions, one of options only, short and long stocks,
options revalued in full, expired, without greeks or without a delta, unpriced positions, exposures
of ±0, an underlying without betas, symbols that need JSON escapes or are not ASCII, equity ≤ 0 —
go through `assemble`, a scenario set with an unavailable factor and an invalid scenario, and the
direct and correlated computations. Then every stored value must be what the per-item code gives:
the former `assemble` (copied below), the stored result sets against per-row documents serialised
by orjson (money by `money`, NaN as null), the market-risk rows, the summaries and the outcome
Decimals against `round_money` (the sign of a zero included).
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from datetime import date, timedelta
from typing import Any

import numpy as np
import orjson
import pytest
from asyncpg.pgproto import pgproto

from common.formatting import money, round_money, stat, utcnow
from stress.catalogue import CATALOGUE, scenario_row
from stress.compute.market_risk import market_risk
from stress.compute.revaluation import OptionLegs, usable
from stress.compute.scenarios import MARKET, MODEL_FACTORS, Book
from stress.money_vector import money_decimals
from stress.result_documents import COLUMNS
from stress.scenarios_inputs import AssembledBook, BetaTable, assemble, factor_availability
from stress.scenarios_present import ScenarioPresenter, loss_exceeds_equity, market_risk_rows, pct
from stress.stress_repository import ModelMatrix
from stress.stress_service import LoadedBooks, _market_outcomes, compute_stress, scenario_set

AS_OF = date(2026, 11, 24)
K = len(MODEL_FACTORS)
UNDERLYINGS = [f"U{i:02d}" for i in range(10)] + ['Q"1', "ÉTÉ€"]


def _position(rng: np.random.Generator, option: bool) -> dict[str, Any]:
    underlying = str(rng.choice(UNDERLYINGS))
    none = dict.fromkeys(("spot", "strike", "time_to_expiry", "rate", "dividend_yield", "sigma", "is_call"))
    if not option:
        quantity = float(rng.integers(-400, 400))
        value: float | None = quantity * float(rng.uniform(5, 500))
        row = {"symbol": underlying, "is_option": False, "quantity": quantity, "multiplier": 1.0, **none}
        row |= {"market_value": value, "dollar_exposure": value, "greek_status": None}
        if rng.random() < 0.06:  # unpriced: no value, no exposure
            row |= {"market_value": None, "dollar_exposure": None}
        return row
    spot = float(rng.uniform(20, 400))
    quantity = float(rng.integers(1, 30) * rng.choice([-1, 1]))
    legs = {
        "spot": spot,
        "strike": spot * float(rng.uniform(0.7, 1.3)),
        "time_to_expiry": float(rng.uniform(0.0, 1.5)),
        "rate": float(rng.uniform(0.0, 0.06)),
        "dividend_yield": float(rng.uniform(0.0, 0.03)),
        "sigma": float(rng.uniform(0.1, 0.9)),
        "is_call": bool(rng.random() < 0.5),
    }
    status = rng.choice(["ok", "ok", "ok", "expired", "failed", None])
    return {
        "symbol": f"{underlying}270820C{int(spot * 1000):08d}",
        "is_option": True,
        "quantity": quantity,
        "multiplier": 100.0,
        "market_value": quantity * 100.0 * float(rng.uniform(0.5, 40.0)),
        "dollar_exposure": None if rng.random() < 0.08 else quantity * 100.0 * spot * float(rng.uniform(-1, 1)),
        "greek_status": None if status is None else str(status),
        **(legs if status is not None else none),
    }


def generated_columns(rng: np.random.Generator, portfolio_ids: list[uuid.UUID]) -> dict[str, list[Any]]:
    """Position columns as `stress_repository.position_rows` gives them (asyncpg's UUIDs, by portfolio)."""
    rows: list[dict[str, Any]] = []
    for p, pid in enumerate(portfolio_ids):
        n = 0 if p == 0 else int(rng.integers(1, 26))  # portfolio 0 holds nothing
        for _ in range(n):
            row = _position(rng, option=p == 1 or rng.random() < 0.3)  # portfolio 1: options only
            rows.append({"portfolio_id": pgproto.UUID(str(pid)), "position_id": pgproto.UUID(str(uuid.uuid4())), **row})
    rows[3]["dollar_exposure"], rows[4]["dollar_exposure"] = -0.0, 0.0
    rows.append({**rows[-1], "portfolio_id": pgproto.UUID(str(uuid.uuid4()))})  # of a portfolio not asked for
    names = ("portfolio_id", "position_id", "symbol", "underlying_symbol", "is_option", "quantity", "multiplier")
    names += ("market_value", "dollar_exposure", "greek_status", "spot", "strike", "time_to_expiry", "rate")
    names += ("dividend_yield", "sigma", "is_call")
    for row in rows:
        row["underlying_symbol"] = row["symbol"][:3] if row["is_option"] else row["symbol"]
    return {name: [row[name] for row in rows] for name in names}


def beta_table(rng: np.random.Generator, symbols: list[str]) -> BetaTable:
    """Betas of the underlyings read (one without any row, one regression without `quality`)."""
    betas = rng.normal(0.0, 0.6, (len(symbols), K))
    betas[:, 0] = rng.uniform(0.3, 2.2, len(symbols))
    regression = rng.random(len(symbols)) < 0.8
    betas[1] = np.nan  # no stored row: default betas
    regression[1], regression[2] = False, True
    betas[2, MODEL_FACTORS.index("quality")] = np.nan  # quality unavailable: its scenarios are not computed
    return BetaTable(symbols, betas, regression)


def covariance(rng: np.random.Generator) -> np.ndarray:
    loadings = rng.normal(size=(K, K + 3))
    corr = loadings @ loadings.T
    d = np.sqrt(np.diag(corr))
    vols = rng.uniform(0.002, 0.015, K)
    return corr / np.outer(d, d) * np.outer(vols, vols)


@dataclasses.dataclass(frozen=True)
class Generated:
    loaded: LoadedBooks
    catalogue: list[dict[str, Any]]  # stress_scenario rows
    cash: list[float]
    columns: dict[str, list[Any]]
    table: BetaTable


def generated_book(seed: int) -> Generated:
    """A loaded batch of 7 portfolios with its catalogue rows and inputs."""
    rng = np.random.default_rng(seed)
    ids = sorted(uuid.uuid4() for _ in range(7))
    columns = generated_columns(rng, ids)
    table = beta_table(rng, sorted(set(columns["underlying_symbol"])))
    matrix = ModelMatrix(
        uuid.uuid4(), AS_OF, "model", AS_OF - timedelta(days=365), AS_OF, 252, MODEL_FACTORS, (), covariance(rng)
    )
    codes = frozenset(MODEL_FACTORS)
    cash = [float(c) for c in rng.uniform(-2e5, 2e5, len(ids))]
    cash[3] = -1e9  # equity below zero: percentages are null
    assembled = assemble(ids, cash, columns, table, factor_availability(matrix, codes, table))
    rows = [scenario_row(s) for s in CATALOGUE]
    rows.append({**rows[0], "id": uuid.uuid4(), "scenario_key": "too_far", "shocks": {"market": 2.0}})
    rows.append({**rows[1], "id": uuid.uuid4(), "scenario_key": "unknown", "shocks": {"crypto": 0.1}})
    dates = {pid: AS_OF for pid in ids[:5]}  # the last two without exposures of the day
    return Generated(LoadedBooks(AS_OF, matrix, assembled, dates, codes), rows, cash, columns, table)


# ---------------------------------------------------------------------------------------------
# assemble
# ---------------------------------------------------------------------------------------------


def reference_assemble(
    portfolio_ids: list[uuid.UUID], cash: list[float], columns: dict[str, list[Any]], table: BetaTable
) -> AssembledBook:
    """`assemble` as it was (np.unique over the underlyings, None → NaN per value, per-portfolio counts)."""

    def floats(values: list[Any]) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    def bools(values: list[Any]) -> np.ndarray:
        return np.array([bool(v) for v in values], dtype=bool)

    order = {pid: i for i, pid in enumerate(portfolio_ids)}
    n_all = len(columns["position_id"])
    pidx_all = np.array([order.get(p, -1) for p in columns["portfolio_id"]], dtype=np.int64)
    exposure_all, market_value = floats(columns["dollar_exposure"]), floats(columns["market_value"])
    is_option = bools(columns["is_option"])
    status = np.asarray([s or "" for s in columns["greek_status"]], dtype=object)
    expired = is_option & (status == "expired")
    known = pidx_all >= 0
    included = known & np.isfinite(exposure_all) & ~expired
    n_port = len(portfolio_ids)
    mv = np.where(np.isfinite(market_value) & known, market_value, 0.0)
    equity = np.asarray(cash, dtype=np.float64) + np.bincount(pidx_all[known], weights=mv[known], minlength=n_port)
    legs_all = OptionLegs.build(
        **{name: floats(columns[name]) for name in ("spot", "strike", "time_to_expiry", "rate", "dividend_yield")},
        sigma=floats(columns["sigma"]),
        is_call=bools(columns["is_call"]),
        quantity=floats(columns["quantity"]),
        multiplier=floats(columns["multiplier"]),
    )
    revalue_all = is_option & (status == "ok") & usable(legs_all)
    keep = np.flatnonzero(included)
    und_names, und_index = np.unique(
        np.asarray([columns["underlying_symbol"][i] for i in keep], dtype=object), return_inverse=True
    )
    und_list = [str(u) for u in und_names]
    index = {s: i for i, s in enumerate(table.symbols)}
    rows = np.array([index.get(s, -1) for s in und_list], dtype=np.int64)
    sub_betas = np.where((rows >= 0)[:, None], table.betas[np.maximum(rows, 0)], np.nan)
    sub_regression = np.where(rows >= 0, table.regression[np.maximum(rows, 0)], False)
    market_col = MODEL_FACTORS.index(MARKET)
    default = ~sub_regression | ~np.isfinite(sub_betas[:, market_col])
    betas = np.where(np.isfinite(sub_betas), sub_betas, 0.0)
    betas[default] = 0.0
    betas[default, market_col] = 1.0
    option_rows = np.flatnonzero(revalue_all[keep])
    book = Book(
        MODEL_FACTORS,
        pidx_all[keep],
        n_port,
        und_index.astype(np.int64).reshape(-1),
        exposure_all[keep],
        betas,
        option_rows,
        legs_all.take(keep[option_rows]),
        equity,
    )
    default_position = np.zeros(n_all, dtype=bool)
    default_position[keep] = default[book.underlying_index]
    p_known = pidx_all[known]

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(p_known, weights=mask[known].astype(np.float64), minlength=n_port).astype(np.int64)

    counts = {
        "positions_included": count(included),
        "options_revalued": count(included & revalue_all),
        "options_linear_only": count(is_option & included & ~revalue_all),
        "positions_default_betas": count(default_position),
    }
    totals = count(np.ones(n_all, dtype=bool))
    excluded: list[list[dict[str, Any]]] = [[] for _ in range(n_port)]
    for i in np.flatnonzero(known & ~included):
        reason = "expired" if expired[i] else "no_exposure"
        excluded[pidx_all[i]].append(
            {"position_id": str(columns["position_id"][i]), "symbol": columns["symbol"][i], "reason": reason}
        )
    coverage, flags = [], []
    for p in range(n_port):
        cov: dict[str, Any] = {"positions_total": int(totals[p])}
        cov.update({name: int(values[p]) for name, values in counts.items()})
        cov["excluded"] = excluded[p]
        coverage.append(cov)
        f = [name for name, on in (("default_betas", cov["positions_default_betas"]),) if on]
        f += ["options_linear_only"] if cov["options_linear_only"] else []
        f += ["positions_excluded"] if excluded[p] else []
        f += [] if np.isfinite(equity[p]) and equity[p] > 0 else ["equity_undefined"]
        flags.append(f)
    return AssembledBook(
        book=book,
        portfolio_ids=list(portfolio_ids),
        position_ids=[columns["position_id"][i] for i in keep],
        symbols=[columns["symbol"][i] for i in keep],
        position_underlyings=[columns["underlying_symbol"][i] for i in keep],
        underlyings=und_list,
        default_underlying=default,
        available=np.zeros(0, dtype=bool),
        coverage=coverage,
        flags=flags,
    )


def _same(a: Any, b: Any) -> bool:
    """Equal values of equal types, arrays bit for bit (NaN, the sign of zero and the dtype included)."""
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(_same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return type(b) is dict and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("seed", range(6))
def test_assemble_matches_the_former_assemble(seed: int) -> None:
    book = generated_book(seed)
    new = book.loaded.assembled
    old = reference_assemble(new.portfolio_ids, book.cash, book.columns, book.table)
    assert new.coverage[0]["positions_total"] == 0 and new.coverage[1]["options_revalued"] > 0
    assert any(c["excluded"] for c in new.coverage) and "equity_undefined" in new.flags[3]
    for field in dataclasses.fields(AssembledBook):
        if field.name != "available":
            assert _same(getattr(new, field.name), getattr(old, field.name)), field.name


# ---------------------------------------------------------------------------------------------
# stored result sets
# ---------------------------------------------------------------------------------------------


def reference_top(pr: ScenarioPresenter, s: int, p: int) -> dict[str, Any]:
    """The top_positions document of (s, p), ranked and formatted one position at a time."""
    direct, corr = pr.c.direct, pr.c.correlated
    impacts = corr.impacts if corr is not None else direct
    mine = np.flatnonzero(pr.a.book.portfolio_index == p).tolist()
    pnl = impacts.position_pnl[s]

    def rank(i: int) -> tuple[float, int]:
        return (-abs(float(pnl[i])) if math.isfinite(pnl[i]) else 1.0, i)

    items = []
    for i in sorted(mine, key=rank)[:10]:
        if not math.isfinite(pnl[i]):
            continue
        item = {"position_id": str(pr.a.position_ids[i]), "symbol": pr.a.symbols[i]}
        item |= {"underlying": pr.a.position_underlyings[i], "pnl": money(float(pnl[i]))}
        item["linear_pnl"] = money(float(impacts.position_linear[s, i]))
        if corr is not None:
            item["direct_pnl"] = money(float(direct.position_pnl[s, i]))
        items.append(item)
    return {"correlated" if corr is not None else "direct": items}


def reference_factors(pr: ScenarioPresenter, s: int, p: int, *, correlated: bool) -> list[dict[str, Any]] | None:
    impacts = pr.c.correlated.impacts if correlated and pr.c.correlated is not None else pr.c.direct
    if correlated and pr.c.correlated is None:
        return None
    exposures = pr.a.book.factor_exposures()
    out = []
    for k in np.flatnonzero(pr.c.scenarios.shocked[s]).tolist():
        item = {"factor": MODEL_FACTORS[k], "shock": stat(float(pr.c.scenarios.shocks[s, k]))}
        item |= {"exposure_dollar": money(float(exposures[p, k])), "pnl": money(float(impacts.factor_pnl[s, p, k]))}
        if correlated:
            item["conditional_move"] = stat(float(impacts.moves[s, k]), 8)
        out.append(item)
    return out


def reference_sets(pr: ScenarioPresenter, run_ids: list[uuid.UUID | None]) -> list[dict[str, Any]]:
    """The stored sets built from per-row values: documents dumped by orjson, money by `money`."""
    direct, corr = pr.c.direct, pr.c.correlated
    n_s = len(pr.c.scenarios)
    out = []
    for p, run_id in enumerate(run_ids):
        if run_id is None:
            continue
        equity = float(pr.a.book.equity[p])
        rows: dict[str, list[Any]] = {name: [] for name in COLUMNS}
        for s in range(n_s):
            d_total, d_lin = float(direct.total[s, p]), float(direct.linear[s, p])
            c_total = float(corr.impacts.total[s, p]) if corr is not None else math.nan
            c_lin = float(corr.impacts.linear[s, p]) if corr is not None else math.nan
            values = {
                "direct_pnl": money(d_total),
                "direct_linear_pnl": money(d_lin),
                "correlated_pnl": money(c_total),
                "correlated_linear_pnl": money(c_lin),
                "correlation_effect": money(c_total - d_total),
                "direct_pnl_pct": pct(d_total, equity),
                "correlated_pnl_pct": pct(c_total, equity),
                "worst_factor": pr.worst_factor(s, p) if direct.computed[s] else None,
                "implied_factor_moves": pr.implied_moves(s),
                "direct_factor_impacts": reference_factors(pr, s, p, correlated=False),
                "correlated_factor_impacts": reference_factors(pr, s, p, correlated=True),
                "top_positions": reference_top(pr, s, p),
                "floored_positions": int(direct.floored[s, p]),
                "correlated_floored_positions": int(corr.impacts.floored[s, p]) if corr is not None else None,
                "flags": pr.flags(s, p),
            }
            for name in COLUMNS:
                rows[name].append(values[name])
        json = ("implied_factor_moves", "direct_factor_impacts", "correlated_factor_impacts", "top_positions", "flags")
        documents = {name: orjson.dumps(rows[name]).decode() for name in json}
        head = {"stress_run_id": run_id, "portfolio_id": pr.a.portfolio_ids[p], "calculation_date": AS_OF}
        out.append(head | {"scenario_ids": [str(i) for i in pr.meta.ids]} | rows | documents)
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("correlated", [True, False])
def test_result_sets_are_the_per_row_documents(seed: int, correlated: bool) -> None:
    loaded = generated_book(seed).loaded
    scenarios, meta = scenario_set(generated_book(seed).catalogue, loaded.active_codes)
    computation = compute_stress(loaded, scenarios)
    if not correlated:
        computation = dataclasses.replace(computation, correlated=None)
    pr = ScenarioPresenter(loaded.assembled, meta, computation)
    run_ids: list[uuid.UUID | None] = [uuid.uuid4() for _ in pr.a.portfolio_ids]
    run_ids[5] = None  # a portfolio without a run stores nothing
    got = pr.result_sets(run_ids, AS_OF)
    expected = reference_sets(pr, run_ids)
    assert not computation.direct.computed.all() and computation.direct.computed.any()
    assert any('"correlated":[]' in r["top_positions"] or '"direct":[]' in r["top_positions"] for r in got)
    assert [list(r) for r in got] == [list(r) for r in expected]
    for new, old in zip(got, expected, strict=True):
        for key, value in old.items():  # documents as RawJson, the str subclass the bulk upsert sends as is
            assert _same(str(new[key]) if isinstance(new[key], str) else new[key], value), key
    assert pr.summaries() == [pr.summary(p) for p in range(len(pr.a.portfolio_ids))]


# ---------------------------------------------------------------------------------------------
# market risk rows and outcomes
# ---------------------------------------------------------------------------------------------


def reference_market_rows(assembled: AssembledBook, result: Any, run_id: uuid.UUID) -> list[dict[str, Any]]:
    """market_risk_result rows one at a time (money by `money`, as the vectorised path writes it)."""
    rows = []
    for p, pid in enumerate(assembled.portfolio_ids):
        equity = float(assembled.book.equity[p])
        base = [f for f in assembled.flags[p] if f in ("default_betas", "options_linear_only", "positions_excluded")]
        for s, key in enumerate(result.scenarios.keys):
            total, linear = float(result.impacts.total[s, p]), float(result.impacts.linear[s, p])
            flags = list(base)
            if not result.impacts.computed[s]:
                flags.append("rate_data_missing" if result.kinds[s] == "interest_rate" else "factor_unavailable")
            if loss_exceeds_equity(total, equity):
                flags.append("loss_exceeds_equity")
            rows.append(
                {
                    "portfolio_id": pid,
                    "calculation_date": AS_OF,
                    "scenario_key": key,
                    "kind": result.kinds[s],
                    "shock": float(result.scenarios.shocks[s][result.scenarios.shocked[s]][0]),
                    "predicted_pnl": money(total),
                    "linear_pnl": money(linear),
                    "nonlinear_adjustment": money(total - linear),
                    "predicted_pnl_pct": pct(total, equity),
                    "exposure_dollar": money(float(result.exposure[s, p])),
                    "flags": flags,
                    "run_id": run_id,
                }
            )
    return rows


def _decimal_bits(value: Any) -> Any:
    return None if value is None else value.as_tuple()  # sign, digits and exponent


@pytest.mark.parametrize("seed", range(6))
def test_market_rows_and_outcomes_are_the_per_value_ones(seed: int) -> None:
    loaded = generated_book(seed).loaded
    book = loaded.assembled.book
    result = market_risk(book, loaded.assembled.available)
    result.rate_exposure[2] = np.nan  # a portfolio without rate data
    result.market_exposure[4], result.dv01[4] = -0.0, -0.004  # zeros keeping their sign
    run_id = uuid.uuid4()
    rows = market_risk_rows(loaded.assembled, result, AS_OF, run_id)
    expected = reference_market_rows(loaded.assembled, result, run_id)
    assert [list(r) for r in rows] == [list(r) for r in expected]
    assert all(_same(new, old) for new, old in zip(rows, expected, strict=True))
    outcomes = _market_outcomes(loaded, result, rows, utcnow())
    for p, pid in enumerate(loaded.assembled.portfolio_ids):
        got = outcomes[pid]
        for name, values in (("market_exposure", result.market_exposure), ("dv01", result.dv01)):
            assert _decimal_bits(getattr(got, name)) == _decimal_bits(round_money(float(values[p]))), name
        assert _decimal_bits(got.rate_exposure_dollar) == _decimal_bits(round_money(float(result.rate_exposure[p])))
        assert ("rate_data_missing" in got.flags) == (p == 2)


def test_money_decimals_are_round_money() -> None:
    rng = np.random.default_rng(9)
    values = np.concatenate(
        [
            rng.normal(0.0, 1e5, 3_000),
            np.round(rng.normal(0.0, 1e3, 1_000), 2) + rng.choice([-0.005, 0.005], 1_000),  # ties
            [0.0, -0.0, -0.004, 0.004, -0.005, 0.005, 2.675, -2.675, 1e16, -1e-300, np.nan, np.inf, -np.inf],
        ]
    )
    got = money_decimals(values)
    assert [_decimal_bits(d) for d in got] == [_decimal_bits(round_money(float(v))) for v in values]
    assert money_decimals(values.reshape(-1, 1)) == got and money_decimals(np.zeros(0)) == []
