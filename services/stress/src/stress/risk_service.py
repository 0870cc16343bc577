"""Risk-metrics step (calculations.md §8): inputs of a batch of portfolios in, risk_metric rows out.

One call serves every portfolio of one date in the caller's transaction: the reads are grouped
(`stress.risk_repository`), the maths for all portfolios runs in one worker thread, and each
portfolio's row is written in its own SAVEPOINT so one failure never touches the others (§5.3).
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import is_transient_db_error
from common.events import StepError
from common.formatting import utcnow
from common.run_cache import RunCache
from stress import risk_repository as repo
from stress.compute.risk_metrics import (
    MarketWindow,
    PortfolioRiskInputs,
    RiskMetrics,
    build_window,
    portfolio_risk,
    suspect_columns,
)

log = logging.getLogger(__name__)

StepStatus = Literal["completed", "partial", "failed"]


@dataclass(frozen=True)
class RiskOutcome:
    """What happened to one portfolio's risk metrics."""

    portfolio_id: UUID
    status: StepStatus
    started_at: datetime
    finished_at: datetime
    error: StepError | None = None
    flags: tuple[str, ...] = ()


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

    idx = np.flatnonzero(included)
    return PortfolioRiskInputs(
        equity=equity,
        columns=np.asarray([column[underlying[i]] for i in idx], dtype=np.int64),
        exposure=de[idx],
        gamma_dollar=gamma_dollar[idx],
        positions_total=max(rows.positions_total, int(included.sum())),
        positions_included=int(included.sum()),
        beta_ex_ante=beta_ex_ante,
        rate_exposure=None if rate is None else rate[0],
        history=rows.history,
        input_flags=tuple(flags),
    )


def compute_batch(
    as_of: date,
    window: MarketWindow,
    rows: dict[UUID, repo.PortfolioRows],
    upstream_failed: frozenset[UUID],
) -> dict[UUID, RiskMetrics | Exception]:
    """Risk metrics of every portfolio (pure; run in a worker thread). A failure is returned, not raised."""
    column = window.column
    out: dict[UUID, RiskMetrics | Exception] = {}
    for pid, r in rows.items():
        try:
            inputs = build_inputs(r, column, pid in upstream_failed)
            metrics = portfolio_risk(window, inputs)
            extra: list[str] = []
            if window.dates.size and window.dates[-1] != np.datetime64(as_of, "D"):
                extra.append("market_data_missing")
            if suspect_columns(window, inputs.columns):
                extra.append("suspect_returns")
            if extra:
                metrics = RiskMetrics(**{**metrics.__dict__, "flags": sorted(set(metrics.flags) | set(extra))})
            out[pid] = metrics
        except Exception as exc:  # reported per portfolio by the caller
            out[pid] = exc
    return out


class RiskMetricsEngine:
    """Computes and stores risk metrics for batches of portfolios of one date."""

    def __init__(self) -> None:
        # A run never changes its own prices: one close panel per run serves all its batches.
        self.closes: RunCache[repo.ClosePanel] = RunCache()

    async def close_panel(self, session: AsyncSession, as_of: date, run_id: UUID | None) -> repo.ClosePanel:
        """The close panel of (as_of, run_id): cached for a run, else read afresh."""
        panel = self.closes.get(as_of, run_id)
        if panel is None:
            panel = repo.ClosePanel(days=await repo.calendar_days(session, as_of))
            self.closes.put(as_of, run_id, panel)
        return panel

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
        start = panel.days[0].item() if panel.days.size else as_of
        rf_dates, rf_values = await repo.risk_free(session, start, as_of)
        closes = np.column_stack([panel.closes[s] for s in ordered]) if panel.days.size else np.zeros((0, len(ordered)))
        stored = np.asarray([betas.get(s, math.nan) for s in ordered], dtype=np.float64)
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
        present = await repo.views_present(session, repo.FACTOR_VIEWS)
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
        for pid, m in computed.items():
            try:
                rows[pid] = repo.risk_metric_row(pid, as_of, m, run_id)
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


def _error(exc: BaseException) -> StepError:
    code = getattr(exc, "code", None) or "RISK_METRICS_FAILED"
    return StepError(code=str(code), message=(str(exc) or type(exc).__name__)[:1000])
