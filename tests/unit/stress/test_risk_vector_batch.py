"""The batched risk-metrics pass equals the per-portfolio code bit for bit.

`compute_batch` builds every portfolio's inputs and metrics of a batch in one array pass
(`build_inputs_many`, `compute.risk_batch`), and the VaR window of a run is built from per-symbol
cached returns (`compute.window_returns`). Here they run beside the one-portfolio functions they
replace (`build_inputs`, `portfolio_risk`, `suspect_columns`, `build_window`) on generated books:
ragged and missing snapshot histories, NaN prices and exposures, options with and without gamma,
zero and negative equity, short VaR windows, proxied underlyings. Every field, and every stored
risk_metric row, must be identical (floats to the bit, including the sign of zero).
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from datetime import date, timedelta
from decimal import Decimal
from uuid import UUID

import numpy as np
import pytest
from tests.unit.stress.bitwise import identical

from stress import risk_repository as repo
from stress.compute.backtest import var_backtest
from stress.compute.risk_metrics import (
    MarketWindow,
    RiskMetrics,
    SnapshotHistory,
    _backtest_dict,
    backtest_block,
    build_window,
    portfolio_risk,
)
from stress.compute.window_returns import WindowReturns
from stress.risk_service import build_inputs, compute_batch

START = np.datetime64("2025-01-02", "D")


# The former per-portfolio check `compute_batch` now makes once per panel column, as the reference.
def suspect_columns(window: MarketWindow, columns: np.ndarray) -> bool:
    """True when an observed return of these columns exceeds 50 % in absolute value (§0.4 warning)."""
    if not columns.size or not window.dates.size:
        return False
    observed = window.panel.returns[:, columns]
    return bool((np.abs(observed) > 0.5).any())


NAN = math.nan


def reference_batch(
    as_of: date, window: MarketWindow, rows: dict[UUID, repo.PortfolioRows], upstream_failed: frozenset[UUID]
) -> dict[UUID, RiskMetrics | Exception]:
    """compute_batch as it was: one portfolio at a time."""
    out: dict[UUID, RiskMetrics | Exception] = {}
    for pid, r in rows.items():
        try:
            inputs = build_inputs(r, window.column, pid in upstream_failed)
            metrics = portfolio_risk(window, inputs)
            extra: list[str] = []
            if window.dates.size and window.dates[-1] != np.datetime64(as_of, "D"):
                extra.append("market_data_missing")
            if suspect_columns(window, inputs.columns):
                extra.append("suspect_returns")
            if extra:
                metrics = RiskMetrics(**{**metrics.__dict__, "flags": sorted(set(metrics.flags) | set(extra))})
            out[pid] = metrics
        except Exception as exc:
            out[pid] = exc
    return out


# -- generated market -------------------------------------------------------------------------


def market(rng: np.random.Generator, days: int, symbols: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Closes (4 dp, as stored) of SPY and `symbols` others on `days` days, with gaps of every kind."""
    dates = START + np.arange(days)
    spy = np.round(400 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, days))), 4)
    spy[rng.random(days) < 0.03] = NAN  # market holidays of the data: those returns leave the window
    closes = {"SPY": spy}
    for j in range(symbols):
        beta = rng.normal(1.0, 0.4)
        moves = beta * np.nan_to_num(np.diff(np.log(spy), prepend=0.0)) + rng.normal(0, 0.015, days)
        c = np.round(rng.uniform(5, 500) * np.exp(np.cumsum(moves)), 4)
        kind = j % 6
        if kind == 1:
            c[rng.random(days) < 0.15] = NAN  # some missing days: proxied with a beta
        elif kind == 2:
            c[: days - rng.integers(5, 50)] = NAN  # a recent listing: fewer than 60 returns, β = 1
        elif kind == 3 and days > 1:
            c[rng.integers(1, days)] *= 1.8  # a bad print: a suspect return above 50 %
        elif kind == 4 and j % 12 == 4:
            c[:] = NAN  # never priced
        closes[f"S{j:03d}"] = c
    return dates, closes


def stored_betas(rng: np.random.Generator, symbols: list[str]) -> dict[str, float]:
    return {s: float(rng.normal(1.0, 0.3)) for s in symbols if rng.random() < 0.6}


def window_of(dates: np.ndarray, closes: dict[str, np.ndarray], betas: dict[str, float], rf: bool) -> MarketWindow:
    ordered = tuple(sorted(closes))
    rf_dates = dates[::7] if rf else np.zeros(0, dtype="datetime64[D]")
    rf_values = np.linspace(0.041, 0.047, rf_dates.size)
    return build_window(
        dates,
        np.column_stack([closes[s] for s in ordered]) if dates.size else np.zeros((0, len(ordered))),
        ordered,
        ordered.index("SPY"),
        np.asarray([betas.get(s, NAN) for s in ordered]),
        rf_dates,
        rf_values,
    )


# -- generated portfolios ---------------------------------------------------------------------


def holdings(rng: np.random.Generator, symbols: list[str]) -> repo.HoldingRows:
    n = int(rng.integers(1, 30))
    option = rng.random(n) < 0.4
    mv = rng.normal(0, 2e4, n)
    mv[rng.random(n) < 0.08] = NAN  # unpriced
    de = mv * rng.uniform(-1.5, 1.5, n)
    de[option & (rng.random(n) < 0.2)] = NAN  # options without delta
    gamma = np.where(option, rng.uniform(0, 5, n), NAN)
    gamma[option & (rng.random(n) < 0.25)] = NAN  # options without gamma: delta-only
    spot = rng.uniform(5, 500, n)
    spot[rng.random(n) < 0.05] = NAN
    return repo.HoldingRows(
        underlying=[str(s) for s in rng.choice(symbols, n)],  # repeats: several positions per underlying
        is_option=[bool(x) for x in option],
        market_value=mv.tolist(),
        dollar_exposure=de.tolist(),
        gamma=gamma.tolist(),
        underlying_price=spot.tolist(),
        greek_status=["ok" if x else None for x in option],
    )


def history(rng: np.random.Generator, window_dates: np.ndarray, templates: list[np.ndarray]) -> SnapshotHistory:
    kind = int(rng.integers(0, 5))
    if kind == 2 and not templates:
        kind = 3
    if kind == 0 or not window_dates.size:
        return SnapshotHistory.empty()
    if kind == 1:  # short: below the 60 returns of a realised history
        dates = window_dates[-int(rng.integers(1, 60)) - 1 : -1]
    elif kind == 2:  # shared dates: realised series of one group
        dates = templates[int(rng.integers(0, len(templates)))]
    else:  # ragged: its own length and gaps
        dates = window_dates[:-1][rng.random(window_dates.size - 1) < rng.uniform(0.5, 1.0)][
            -int(rng.integers(2, 300)) :
        ]
    n = dates.size
    daily_return = rng.normal(0.0004, 0.012, n)
    daily_return[0] = NAN
    if kind != 2:
        daily_return[rng.random(n) < 0.05] = NAN
    if rng.random() < 0.03:
        daily_return[1:] = 1e200  # an overflowing wealth index
    previous = np.concatenate(([np.datetime64("NaT")], dates[:-1])).astype("datetime64[D]")
    previous[rng.random(n) < 0.05] = np.datetime64("NaT")
    var95 = np.abs(rng.normal(2000, 300, n))
    var95[rng.random(n) < 0.1] = NAN
    return SnapshotHistory.build(
        [d.item() for d in dates],
        [None if np.isnat(p) else p.item() for p in previous],
        (daily_return * 1e5).tolist(),
        daily_return.tolist(),
        var95.tolist(),
        (var95 * 1.4).tolist(),
    )


def portfolio(
    rng: np.random.Generator, symbols: list[str], window_dates: np.ndarray, templates: list[np.ndarray]
) -> repo.PortfolioRows:
    h = holdings(rng, symbols) if rng.random() > 0.05 else None
    cash = [None, 0.0, float(rng.uniform(1e4, 1e6)), -1e9][int(rng.choice(4, p=[0.1, 0.05, 0.8, 0.05]))]
    factors: dict[str, tuple[float | None, float | None]] = {}
    if rng.random() > 0.1:
        beta = [None, NAN, float(rng.normal(1, 0.2))][int(rng.integers(0, 3))]
        factors["market"] = (None if rng.random() < 0.2 else float(rng.normal(5e5, 1e5)), beta)
    if rng.random() > 0.3:
        factors["interest_rate"] = (float(rng.normal(-2e4, 1e4)), None)
    n = 0 if h is None else len(h.market_value)
    return repo.PortfolioRows(
        portfolio_id=uuid.uuid4(),
        live=bool(rng.random() > 0.04),
        cash=cash,
        positions_total=n + int(rng.integers(0, 3)),
        holdings=h,
        factors=factors,
        history=history(rng, window_dates, templates),
    )


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflowing wealth index, in both codes
@pytest.mark.parametrize(
    ("seed", "days", "rf"),
    [(1, 300, True), (2, 300, False), (3, 180, True), (4, 45, True), (5, 1, True), (6, 120, False)],
)
def test_compute_batch_equals_the_per_portfolio_code(seed: int, days: int, rf: bool) -> None:
    rng = np.random.default_rng(seed)
    dates, closes = market(rng, days, 60)
    symbols = [s for s in closes if s != "SPY"]
    window = window_of(dates, closes, stored_betas(rng, symbols), rf)
    templates = [window.dates[-n - 1 : -1] for n in (60, 130, 251) if window.dates.size > n]
    rows = {p.portfolio_id: p for p in (portfolio(rng, symbols, window.dates, templates) for _ in range(160))}
    failed = frozenset(pid for pid in rows if rng.random() < 0.1)
    as_of = (dates[-1].item() if dates.size else date(2025, 1, 2)) + timedelta(days=int(rng.integers(0, 2)))

    expected = reference_batch(as_of, window, rows, failed)
    got = compute_batch(as_of, window, rows, failed)

    assert list(got) == list(expected)
    for pid in rows:
        assert identical(expected[pid], got[pid]) == [], pid
        if isinstance(expected[pid], RiskMetrics):
            run = uuid.uuid4()
            stored = repo.risk_metric_row(pid, as_of, expected[pid], run)  # type: ignore[arg-type]
            assert identical(stored, repo.risk_metric_row(pid, as_of, got[pid], run)) == []  # type: ignore[arg-type]
    outcomes = [type(x).__name__ for x in got.values()]
    if days >= 120:  # the generated books reach every path of the batched code
        assert outcomes.count("RiskMetrics") > 100
        series = {m.performance.series_type for m in got.values() if isinstance(m, RiskMetrics)}
        assert series == {"realized", "simulated_history"}
        assert any(m.proxied for m in got.values() if isinstance(m, RiskMetrics))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_portfolios_the_batch_cannot_line_up_take_the_one_portfolio_code() -> None:
    rng = np.random.default_rng(7)
    dates, closes = market(rng, 200, 12)
    symbols = [s for s in closes if s != "SPY"]
    window = window_of(dates, closes, {}, True)
    rows = {p.portfolio_id: p for p in (portfolio(rng, symbols, window.dates, []) for _ in range(20))}
    ragged = repo.HoldingRows(["S001", "S002"], [False], [1.0, 2.0], [1.0, 2.0], [NAN, NAN], [10.0, 10.0], [None])
    unknown = holdings(rng, ["NOT-IN-WINDOW", "S001"])
    for h in (ragged, unknown):
        p = portfolio(rng, symbols, window.dates, [])
        rows[p.portfolio_id] = dataclasses.replace(p, holdings=h)
    as_of = dates[-1].item()
    expected = reference_batch(as_of, window, rows, frozenset())
    got = compute_batch(as_of, window, rows, frozenset())
    assert all(identical(expected[pid], got[pid]) == [] for pid in rows)
    assert sum(isinstance(x, Exception) for x in got.values()) >= 1


def test_window_returns_equal_build_window_batch_after_batch() -> None:
    rng = np.random.default_rng(11)
    dates, closes = market(rng, 300, 240)
    symbols = [s for s in closes if s != "SPY"]
    betas: dict[str, float] = {}
    cached = WindowReturns(dates, closes["SPY"])
    rf_dates, rf_values = dates[::5], np.full(dates[::5].size, 0.043)
    batches = [set(rng.choice(symbols, 120)), set(rng.choice(symbols, 150)), {symbols[-1]}, set(symbols)]
    for batch in batches:
        betas.update(stored_betas(rng, sorted(batch)))  # a later factors batch may store more betas
        ordered = tuple(sorted(batch | {"SPY"}))
        stored = np.asarray([betas.get(s, NAN) for s in ordered])
        expected = build_window(
            dates,
            np.column_stack([closes[s] for s in ordered]),
            ordered,
            ordered.index("SPY"),
            stored,
            rf_dates,
            rf_values,
        )
        assert identical(expected, cached.window(ordered, closes, stored, rf_dates, rf_values)) == []


def test_a_history_without_two_snapshots_gets_a_fresh_empty_backtest() -> None:
    empty = _backtest_dict(var_backtest(np.zeros(0), np.zeros(0), np.zeros(0)), np.zeros(0, dtype="datetime64[D]"))
    one_day = SnapshotHistory.build([date(2025, 1, 2)], [None], [10.0], [NAN], [100.0], [140.0])
    first = backtest_block(SnapshotHistory.empty())
    assert first == empty and backtest_block(one_day) == empty
    first["levels"][0]["observations"] = 99  # a caller's change never reaches the next portfolio
    assert backtest_block(SnapshotHistory.empty()) == empty


def test_identical_tells_values_apart_to_the_bit() -> None:
    assert identical(0.1 + 0.2, 0.3) != [] and identical(0.0, -0.0) != [] and identical(NAN, NAN) == []
    assert identical(Decimal("1.00"), Decimal("1.00")) == [] and identical(np.zeros(2), np.zeros(2, order="F")) == []
    assert identical(np.zeros((2, 2)), np.zeros((2, 2), order="F")) != []
