"""Risk-metrics step (calculations.md §8): inputs of a batch of portfolios in, risk_metric rows out.

One call serves every portfolio of one date in the caller's transaction: the reads are grouped
(`stress.risk_repository`), the maths for all portfolios runs in one worker thread, and each
portfolio's row is written in its own SAVEPOINT so one failure never touches the others (§5.3).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from itertools import chain
from typing import Any, Literal
from uuid import UUID

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import is_transient_db_error
from common.events import StepError
from common.formatting import utcnow
from common.run_cache import RunCache
from stress import risk_repository as repo
from stress.compute.risk_batch import portfolio_risk_many
from stress.compute.risk_metrics import (
    MarketWindow,
    PortfolioRiskInputs,
    RiskMetrics,
    build_window,
)
from stress.compute.segments import masked_nansums, owners, segment_counts
from stress.compute.window_returns import WindowReturns
from stress.money_vector import money_strings

log = logging.getLogger(__name__)

StepStatus = Literal["completed", "partial", "failed"]
WINDOWS_KEPT = 2  # as many as the close panels a RunCache keeps


@dataclass(frozen=True)
class RiskOutcome:
    """What happened to one portfolio's risk metrics."""

    portfolio_id: UUID
    status: StepStatus
    started_at: datetime
    finished_at: datetime
    error: StepError | None = None
    flags: tuple[str, ...] = ()


def _factor_context(
    rows: repo.PortfolioRows, equity: float | None, flags: list[str]
) -> tuple[float | None, float | None]:
    """(ex-ante market beta, rate exposure) from the factor rows; flags a missing market factor."""
    market = rows.factors.get("market")
    rate = rows.factors.get("interest_rate")
    if market is None:
        flags.append("factor_exposures_missing")
    beta_ex_ante = None
    if market is not None:
        x_m, beta = market
        if beta is not None and math.isfinite(beta):
            beta_ex_ante = beta
        elif x_m is not None and equity is not None and equity > 0:
            beta_ex_ante = x_m / equity
    return beta_ex_ante, None if rate is None else rate[0]


def build_inputs(rows: repo.PortfolioRows, column: dict[str, int], upstream_failed: bool) -> PortfolioRiskInputs:
    """One portfolio's included positions (priced, with a dollar exposure) and data-quality flags."""
    flags: list[str] = []
    if upstream_failed:
        flags.append("upstream_step_failed")
    h = rows.holdings
    if h is None:
        mv = de = gamma = spot = np.zeros(0)
        is_option = np.zeros(0, dtype=bool)
        underlying: list[str] = []
    else:
        mv = np.asarray(h.market_value, dtype=np.float64)
        de = np.asarray(h.dollar_exposure, dtype=np.float64)
        gamma = np.asarray(h.gamma, dtype=np.float64)
        spot = np.asarray(h.underlying_price, dtype=np.float64)
        is_option = np.asarray(h.is_option, dtype=bool)
        underlying = h.underlying
    priced = np.isfinite(mv)
    included = np.isfinite(de)
    if rows.positions_total > int(priced.sum()):
        flags.append("positions_unpriced")
    if (priced & is_option & ~included).any():
        flags.append("options_without_delta")
    # Γ$_u = Σ Γ_i q_i m_i S_u² (greeks stores the position gamma Γ_i q_i m_i); stocks have none.
    option_gamma = gamma * spot * spot
    no_gamma = included & is_option & ~np.isfinite(option_gamma)
    if no_gamma.any():
        flags.append("options_without_gamma")  # those options enter delta-only
    gamma_dollar = np.where(is_option & np.isfinite(option_gamma), option_gamma, 0.0)

    cash = rows.cash
    if cash is None:
        flags.append("cash_unknown")
    equity = (cash or 0.0) + float(np.nansum(mv[priced])) if rows.live else None
    beta_ex_ante, rate_exposure = _factor_context(rows, equity, flags)

    idx = np.flatnonzero(included)
    return PortfolioRiskInputs(
        equity=equity,
        columns=np.asarray([column[underlying[i]] for i in idx], dtype=np.int64),
        exposure=de[idx],
        gamma_dollar=gamma_dollar[idx],
        positions_total=max(rows.positions_total, int(included.sum())),
        positions_included=int(included.sum()),
        beta_ex_ante=beta_ex_ante,
        rate_exposure=rate_exposure,
        history=rows.history,
        input_flags=tuple(flags),
    )


_HOLDING_FIELDS = ("underlying", "is_option", "market_value", "dollar_exposure", "gamma", "underlying_price")


def _parallel(h: repo.HoldingRows | None) -> bool:
    return h is None or len({len(getattr(h, name)) for name in _HOLDING_FIELDS}) == 1


def build_inputs_many(
    batch: Sequence[repo.PortfolioRows], column: dict[str, int], upstream_failed: Sequence[bool]
) -> list[PortfolioRiskInputs | Exception]:
    """`build_inputs` of every portfolio, its arrays built once for the whole batch (the positions of
    all portfolios back to back). A failure is returned in the portfolio's place, not raised."""
    out: dict[int, PortfolioRiskInputs | Exception] = {}
    for i in (i for i, rows in enumerate(batch) if not _parallel(rows.holdings)):
        try:  # ragged parallel lists: the one-portfolio code decides what they give
            out[i] = build_inputs(batch[i], column, upstream_failed[i])
        except Exception as exc:
            out[i] = exc
    index = [i for i, rows in enumerate(batch) if _parallel(rows.holdings)]
    present = [batch[i].holdings for i in index]
    holdings = [h for h in present if h is not None]
    counts = np.array([0 if h is None else len(h.market_value) for h in present], dtype=np.int64)

    def flat(name: str, dtype: type) -> np.ndarray:
        return np.asarray(list(chain.from_iterable(getattr(h, name) for h in holdings)), dtype=dtype)

    mv = flat("market_value", np.float64)
    de = flat("dollar_exposure", np.float64)
    gamma = flat("gamma", np.float64)
    spot = flat("underlying_price", np.float64)
    is_option = flat("is_option", bool)
    owner = owners(counts)
    p = len(index)
    priced = np.isfinite(mv)
    included = np.isfinite(de)
    n_priced = segment_counts(priced, owner, p).tolist()
    n_included = segment_counts(included, owner, p)
    without_delta = segment_counts(priced & is_option & ~included, owner, p).tolist()
    # Γ$_u = Σ Γ_i q_i m_i S_u² (greeks stores the position gamma Γ_i q_i m_i); stocks have none.
    option_gamma = gamma * spot * spot
    without_gamma = segment_counts(included & is_option & ~np.isfinite(option_gamma), owner, p).tolist()
    gamma_dollar = np.where(is_option & np.isfinite(option_gamma), option_gamma, 0.0)[included]
    market_value = masked_nansums(mv, priced, owner, p).tolist()

    # Panel column of each included position (-1: an underlying the window does not have).
    underlying = list(chain.from_iterable(h.underlying for h in holdings))
    columns = np.array([column.get(underlying[k], -1) for k in np.flatnonzero(included).tolist()], dtype=np.int64)
    unknown = segment_counts(columns < 0, owner[included], p).tolist()
    exposure = de[included]
    bounds = np.concatenate(([0], np.cumsum(n_included))).tolist()
    for j, i in enumerate(index):
        rows = batch[i]
        a, b = bounds[j], bounds[j + 1]
        if unknown[j]:  # the first such underlying fails the portfolio, as in build_inputs
            names = [underlying[k] for k in np.flatnonzero(included & (owner == j)).tolist()]
            out[i] = KeyError(next(n for n in names if n not in column))
            continue
        flags: list[str] = []
        if upstream_failed[i]:
            flags.append("upstream_step_failed")
        if rows.positions_total > n_priced[j]:
            flags.append("positions_unpriced")
        if without_delta[j]:
            flags.append("options_without_delta")
        if without_gamma[j]:
            flags.append("options_without_gamma")  # those options enter delta-only
        if rows.cash is None:
            flags.append("cash_unknown")
        equity = (rows.cash or 0.0) + market_value[j] if rows.live else None
        beta_ex_ante, rate_exposure = _factor_context(rows, equity, flags)
        out[i] = PortfolioRiskInputs(
            equity=equity,
            columns=columns[a:b],
            exposure=exposure[a:b],
            gamma_dollar=gamma_dollar[a:b],
            positions_total=max(rows.positions_total, b - a),
            positions_included=b - a,
            beta_ex_ante=beta_ex_ante,
            rate_exposure=rate_exposure,
            history=rows.history,
            input_flags=tuple(flags),
        )
    return [out[i] for i in range(len(batch))]


def compute_batch(
    as_of: date,
    window: MarketWindow,
    rows: dict[UUID, repo.PortfolioRows],
    upstream_failed: frozenset[UUID],
) -> dict[UUID, RiskMetrics | Exception]:
    """Risk metrics of every portfolio (pure; run in a worker thread). A failure is returned, not raised."""
    ids = list(rows)
    built = build_inputs_many([rows[pid] for pid in ids], window.column, [pid in upstream_failed for pid in ids])
    ready = [i for i, x in enumerate(built) if isinstance(x, PortfolioRiskInputs)]
    inputs = [built[i] for i in ready]
    metrics = portfolio_risk_many(window, inputs)  # type: ignore[arg-type]
    out: dict[UUID, RiskMetrics | Exception] = {ids[i]: x for i, x in enumerate(built) if isinstance(x, Exception)}
    market_missing = bool(window.dates.size) and window.dates[-1] != np.datetime64(as_of, "D")
    # §0.4 warning: an observed return above 50 % in absolute value, per panel column.
    suspect = (np.abs(window.panel.returns) > 0.5).any(axis=0) if window.dates.size else None
    for i, result in zip(ready, metrics, strict=True):
        if isinstance(result, RiskMetrics):
            extra: list[str] = ["market_data_missing"] if market_missing else []
            cols = built[i].columns  # type: ignore[union-attr]
            if suspect is not None and cols.size and suspect[cols].any():
                extra.append("suspect_returns")
            if extra:
                result = replace(result, flags=sorted(set(result.flags) | set(extra)))
        out[ids[i]] = result
    return {pid: out[pid] for pid in ids}


class RiskMetricsEngine:
    """Computes and stores risk metrics for batches of portfolios of one date."""

    def __init__(self) -> None:
        # A run never changes its own prices: one close panel per run serves all its batches, and so
        # do the window returns derived from it.
        self.closes: RunCache[repo.ClosePanel] = RunCache()
        self._window_returns: list[tuple[repo.ClosePanel, WindowReturns]] = []
        # Nor its risk-free series (read once per panel and date), nor which views are deployed.
        self._risk_free: list[tuple[repo.ClosePanel, date, tuple[np.ndarray, np.ndarray]]] = []
        self._views: RunCache[set[str]] = RunCache()

    async def close_panel(self, session: AsyncSession, as_of: date, run_id: UUID | None) -> repo.ClosePanel:
        """The close panel of (as_of, run_id): cached for a run, else read afresh."""
        panel = self.closes.get(as_of, run_id)
        if panel is None:
            panel = repo.ClosePanel(days=await repo.calendar_days(session, as_of))
            self.closes.put(as_of, run_id, panel)
        return panel

    def window_returns(self, panel: repo.ClosePanel) -> WindowReturns:
        """The window returns over `panel` (≥ 2 days), kept with the panel: the last two panels used."""
        for known, returns in self._window_returns:
            if known is panel:
                return returns
        returns = WindowReturns(panel.days, panel.closes[repo.MARKET_SYMBOL])
        self._window_returns = [(panel, returns), *self._window_returns][:WINDOWS_KEPT]
        return returns

    async def views_present(self, session: AsyncSession, as_of: date, run_id: UUID | None) -> set[str]:
        """The optional factor views deployed: cached for a run, else read afresh."""
        present = self._views.get(as_of, run_id)
        if present is None:
            present = await repo.views_present(session, repo.FACTOR_VIEWS)
            self._views.put(as_of, run_id, present)
        return present

    async def risk_free(
        self, session: AsyncSession, as_of: date, panel: repo.ClosePanel
    ) -> tuple[np.ndarray, np.ndarray]:
        """DGS3MO over the panel's days up to `as_of`, kept with the panel: the last two panels used."""
        for known, day, series in self._risk_free:
            if known is panel and day == as_of:
                return series
        start = panel.days[0].item() if panel.days.size else as_of
        series = await repo.risk_free(session, start, as_of)
        self._risk_free = [(panel, as_of, series), *self._risk_free][:WINDOWS_KEPT]
        return series

    async def market_window(
        self, session: AsyncSession, as_of: date, panel: repo.ClosePanel, symbols: set[str], present: set[str]
    ) -> MarketWindow:
        """The shared VaR window for `symbols` (closes missing from the panel are loaded)."""
        wanted = symbols | {repo.MARKET_SYMBOL}
        await repo.load_closes(session, panel, wanted)
        ordered = tuple(sorted(wanted))
        unknown = [s for s in ordered if s not in panel.betas]
        if unknown:  # every batch of a run asked again for the betas of the symbols it shares with others
            panel.betas.update(await repo.market_betas(session, as_of, unknown, present))
        betas = panel.betas
        rf_dates, rf_values = await self.risk_free(session, as_of, panel)
        stored = np.asarray([betas.get(s, math.nan) for s in ordered], dtype=np.float64)
        if panel.days.size >= 2:
            returns = self.window_returns(panel)
            return await asyncio.to_thread(returns.window, ordered, panel.closes, stored, rf_dates, rf_values)
        closes = np.column_stack([panel.closes[s] for s in ordered]) if panel.days.size else np.zeros((0, len(ordered)))
        return await asyncio.to_thread(
            build_window,
            panel.days,
            closes,
            ordered,
            ordered.index(repo.MARKET_SYMBOL),
            stored,
            rf_dates,
            rf_values,
        )

    async def run(
        self,
        session: AsyncSession,
        *,
        as_of: date,
        run_id: UUID | None,
        portfolio_ids: list[UUID],
        upstream_failed: frozenset[UUID] = frozenset(),
    ) -> dict[UUID, RiskOutcome]:
        """Compute and upsert the risk metrics of `portfolio_ids` on `as_of` (one savepoint for all,
        one each when that fails)."""
        started = utcnow()
        ids = sorted(set(portfolio_ids))
        present = await self.views_present(session, as_of, run_id)
        panel = await self.close_panel(session, as_of, run_id)
        rows = await repo.portfolio_rows(session, ids, as_of, repo.history_start(panel.days, as_of), present)
        symbols = {u for r in rows.values() if r.holdings is not None for u in r.holdings.underlying}
        window = await self.market_window(session, as_of, panel, symbols, present)
        results = await asyncio.to_thread(compute_batch, as_of, window, rows, upstream_failed)
        outcomes: dict[UUID, RiskOutcome] = {}
        computed: dict[UUID, RiskMetrics] = {}
        for pid in ids:
            result = results[pid]
            if not rows[pid].live:
                outcomes[pid] = RiskOutcome(
                    pid,
                    "failed",
                    started,
                    utcnow(),
                    StepError(code="PORTFOLIO_NOT_FOUND", message=f"portfolio {pid} is not a live portfolio"),
                )
            elif isinstance(result, Exception):
                log.error("risk metrics of %s on %s failed: %r", pid, as_of, result)
                outcomes[pid] = RiskOutcome(pid, "failed", started, utcnow(), _error(result))
            else:
                computed[pid] = result
        stored = await self._store(session, as_of, run_id, computed)
        for pid, result in computed.items():
            failure = stored[pid]
            if failure is not None:
                outcomes[pid] = RiskOutcome(pid, "failed", started, utcnow(), _error(failure))
                continue
            status: StepStatus = "partial" if result.data_status == "partial" else "completed"
            error = None
            if status == "partial":
                error = StepError(code="PARTIAL_INPUTS", message="risk metrics flags: " + ", ".join(result.flags))
            outcomes[pid] = RiskOutcome(pid, status, started, utcnow(), error, tuple(result.flags))
        return {pid: outcomes[pid] for pid in ids}

    async def _store(
        self, session: AsyncSession, as_of: date, run_id: UUID | None, computed: dict[UUID, RiskMetrics]
    ) -> dict[UUID, Exception | None]:
        """Upsert every row in one SAVEPOINT; if that fails, redo them one SAVEPOINT each so a bad row
        fails alone (api.md §5.3) — the rows stored are the same either way."""
        out: dict[UUID, Exception | None] = {}
        rows: dict[UUID, dict[str, Any]] = {}
        amounts = _formatted_amounts(computed)
        for pid, m in computed.items():
            try:
                rows[pid] = repo.risk_metric_row(pid, as_of, m, run_id, amounts=amounts.get(pid))
            except Exception as exc:  # a row that cannot be built fails its portfolio only
                log.exception("risk metrics of %s on %s not stored", pid, as_of)
                out[pid] = exc
        if len(rows) > 1:
            try:
                async with session.begin_nested():
                    await repo.upsert_risk_metrics(session, list(rows.values()))
                return out | dict.fromkeys(rows)
            except Exception as exc:
                if is_transient_db_error(exc):
                    raise
                log.warning("risk metrics of %d portfolios on %s not stored at once; one by one", len(rows), as_of)
        for pid, row in rows.items():
            try:
                async with session.begin_nested():
                    await repo.upsert_risk_metric(session, row)
                out[pid] = None
            except Exception as exc:
                if is_transient_db_error(exc):
                    raise
                log.exception("risk metrics of %s on %s not stored", pid, as_of)
                out[pid] = exc
        return out


def _formatted_amounts(computed: dict[UUID, RiskMetrics]) -> dict[UUID, list[str | None]]:
    """`money()` of the stored amounts of every portfolio (`risk_repository.money_amounts`) in one
    vectorised pass; none when that fails (an amount beyond Decimal cents, say): each row then
    formats its own and fails alone."""
    try:
        amounts = [repo.money_amounts(m) for m in computed.values()]
        texts = money_strings(np.array(amounts, dtype=np.float64))  # None → NaN → None
    except Exception:
        return {}
    size = len(amounts[0]) if amounts else 0
    return {pid: texts[i * size : (i + 1) * size] for i, pid in enumerate(computed)}


def _error(exc: BaseException) -> StepError:
    code = getattr(exc, "code", None) or "RISK_METRICS_FAILED"
    return StepError(code=str(code), message=(str(exc) or type(exc).__name__)[:1000])
