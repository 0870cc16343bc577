"""Risk metrics of a batch of portfolios of one date (calculations.md §8): `portfolio_risk` of each,
with the array work done once per batch.

Every portfolio shares the market window, so the VaR P&L series form one (portfolios × days) matrix
(`var_batch`), and the performance series are grouped by their dates (`performance_batch`): the
simulated histories all run over the window, realised ones over their snapshot dates. What stays per
portfolio is the gathering of its underlyings' returns, a few dot products and the result objects.

Each result equals `portfolio_risk(window, inputs)` bit for bit. A portfolio whose arrays do not fit
the batched path (columns outside the window, mismatched lengths) is computed by `portfolio_risk`
itself, and any error is returned in its place rather than raised.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from stress.compute import performance as perf
from stress.compute.performance_batch import batchable_rows, performance_rows
from stress.compute.risk_metrics import (
    ANNUALIZATION,
    MarketWindow,
    Performance,
    PortfolioRiskInputs,
    RiskMetrics,
    assemble_metrics,
    backtest_block,
    performance_from_series,
    portfolio_risk,
    proxied_underlyings,
    realized_series,
)
from stress.compute.segments import segment_counts
from stress.compute.var import VAR_MIN_OBS, VAR_WINDOW, VarResult
from stress.compute.var_batch import aggregate_many, var_metrics_many


def _fits(inputs: PortfolioRiskInputs, symbols: int) -> bool:
    """True when the portfolio's arrays are well formed for the batched path."""
    cols = inputs.columns
    return (
        cols.ndim == 1
        and inputs.exposure.shape == cols.shape
        and inputs.gamma_dollar.shape == cols.shape
        and np.issubdtype(cols.dtype, np.integer)
        and (not cols.size or (int(cols.min()) >= 0 and int(cols.max()) < symbols))
    )


@dataclass
class _SeriesGroup:
    """Return series over the same dates, for one `performance_rows` call: the batch positions of
    their portfolios, the series and the wealth-index base date of each."""

    dates: np.ndarray
    series_type: str
    members: list[int] = field(default_factory=list)
    series: list[np.ndarray] = field(default_factory=list)
    bases: list[np.datetime64 | None] = field(default_factory=list)

    def add(self, member: int, series: np.ndarray, base: np.datetime64 | None) -> None:
        self.members.append(member)
        self.series.append(series)
        self.bases.append(base)


def _one(
    r: np.ndarray, dates: np.ndarray, base: np.datetime64 | None, series_type: str, window: MarketWindow
) -> Performance | Exception:
    """`performance_from_series` of one series; an error is returned, not raised."""
    try:
        return performance_from_series(r, dates, base, series_type, window)
    except Exception as exc:  # a series the statistics cannot handle fails its portfolio only
        return exc


def _performances(
    window: MarketWindow, batch: Sequence[PortfolioRiskInputs], var: Sequence[VarResult], equity_ok: list[bool]
) -> tuple[list[Performance | Exception], list[bool]]:
    """Each portfolio's performance (§8.5) and whether it is the simulated history: the realised
    snapshot returns when 60 are known, else the VaR P&L series over equity."""
    out: dict[int, Performance | Exception] = {}
    simulated = [False] * len(batch)
    groups: dict[bytes, _SeriesGroup] = {}
    window_group = _SeriesGroup(window.dates, "simulated_history")
    for i, inputs in enumerate(batch):
        if inputs.history.daily_return.size >= perf.MIN_OBSERVATIONS:  # else fewer than 60 are known
            r, r_dates, base = realized_series(inputs.history)
            if r.size >= perf.MIN_OBSERVATIONS:
                groups.setdefault(r_dates.tobytes(), _SeriesGroup(r_dates, "realized")).add(i, r, base)
                continue
        simulated[i] = True
        if equity_ok[i] and var[i].observations:
            window_group.add(i, var[i].pnl / float(inputs.equity), window.base_date)  # type: ignore[arg-type]
        else:  # nothing to simulate: the empty series
            out[i] = _one(
                np.zeros(0), np.zeros(0, dtype="datetime64[D]"), window.base_date, window_group.series_type, window
            )
    for group in (*groups.values(), window_group):
        if not group.members:
            continue
        returns = np.stack(group.series)
        ok = batchable_rows(returns)
        rows = np.flatnonzero(ok).tolist()
        if rows:
            bases = [group.bases[j] for j in rows]
            computed = performance_rows(returns[rows], group.dates, bases, group.series_type, window)
            out.update(zip((group.members[j] for j in rows), computed, strict=True))
        for j in np.flatnonzero(~ok).tolist():
            out[group.members[j]] = _one(returns[j], group.dates, group.bases[j], group.series_type, window)
    return [out[i] for i in range(len(batch))], simulated


def portfolio_risk_many(window: MarketWindow, batch: Sequence[PortfolioRiskInputs]) -> list[RiskMetrics | Exception]:
    """`portfolio_risk(window, inputs)` of every portfolio of the batch, in order."""
    symbols = window.panel.returns.shape[1]
    fits = [_fits(inputs, symbols) for inputs in batch]
    out: dict[int, RiskMetrics | Exception] = {}
    for i in (i for i, ok in enumerate(fits) if not ok):
        try:
            out[i] = portfolio_risk(window, batch[i])
        except Exception as exc:  # reported per portfolio by the caller
            out[i] = exc
    index = [i for i, ok in enumerate(fits) if ok]
    out.update(zip(index, _risk_of_fitting(window, [batch[i] for i in index]), strict=True))
    return [out[i] for i in range(len(batch))]


def _risk_of_fitting(window: MarketWindow, batch: Sequence[PortfolioRiskInputs]) -> list[RiskMetrics | Exception]:
    if not batch:
        return []
    books = aggregate_many([x.columns for x in batch], [x.exposure for x in batch], [x.gamma_dollar for x in batch])
    var = var_metrics_many(window.panel.returns, books)
    # Which portfolios hold an underlying with proxied days (one gather for the whole batch).
    counts = np.fromiter((b.columns.size for b in books), dtype=np.int64, count=len(books))
    held = np.concatenate([b.columns for b in books])
    owner = np.repeat(np.arange(len(books)), counts)
    with_proxies = segment_counts(window.panel.proxied[held] > 0, owner, len(books)).tolist()

    equity_ok = [x.equity is not None and x.equity > 0 for x in batch]
    performances, simulated = _performances(window, batch, var, equity_ok)
    root_annual = math.sqrt(ANNUALIZATION)

    out: list[RiskMetrics | Exception] = []
    for i, inputs in enumerate(batch):
        performance = performances[i]
        if isinstance(performance, Exception):
            out.append(performance)
            continue
        v = var[i]
        flags = list(inputs.input_flags)
        if v.observations < VAR_MIN_OBS:
            flags.append("insufficient_history")
        elif v.observations < VAR_WINDOW:
            flags.append("limited_history")
        if not equity_ok[i]:
            flags.append("equity_undefined")
        proxied = proxied_underlyings(window, books[i].columns) if with_proxies[i] else []
        if proxied:
            flags.append("proxied_returns")
        ex_ante_vol = None
        if v.sigma_daily is not None and equity_ok[i]:
            ex_ante_vol = v.sigma_daily * root_annual / float(inputs.equity)  # type: ignore[arg-type]
        if simulated[i]:
            flags.append("simulated_history")
        if performance.risk_free_default:
            flags.append("risk_free_rate_default")
        try:
            backtest = backtest_block(inputs.history)
        except Exception as exc:  # a malformed history fails its portfolio only
            out.append(exc)
            continue
        out.append(assemble_metrics(window, inputs, v, ex_ante_vol, performance, proxied, backtest, flags))
    return out
