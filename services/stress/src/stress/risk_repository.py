"""Storage and inputs of the risk metrics (calculations.md §8, data-model.md §8.5).

Inputs come from published views only (docs/contracts.md): positions and exposures from
`ingest.api_position_valuation` / `ingest.api_position`, option gammas from
`greeks.api_position_greek`, adjusted closes from `marketdata.api_daily_price`, the NYSE calendar
from `marketdata.api_trading_day`, DGS3MO from `marketdata.api_rate`, market betas and the market and
rate factor exposures from `factors.api_underlying_beta` / `factors.api_portfolio_factor_exposure`.

Every read serves a whole batch of portfolios of one date (one query per concern, grouped in SQL);
the valued positions with their Greeks are the stress step's one read of the batch
(`stress_repository.batch_position_rows`, shared with market risk and stress tests), and the price
panel of a date is cached per process for the batch run that asked for it, so a 1,000-portfolio
cycle reads each underlying's closes once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import islice, pairwise
from typing import Any
from uuid import UUID

import asyncpg
import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import Database
from common.formatting import money
from stress import bulk_upsert, stress_repository
from stress.compute.risk_metrics import ENGINE_VERSION, RiskMetrics, SnapshotHistory, ewma_block
from stress.compute.var import CONFIDENCES, VAR_WINDOW
from stress.models import risk_metric

MARKET_SYMBOL = "SPY"
# Calendar days loaded before t0: 300 trading days leave room for 48 missing SPY closes in the window.
CALENDAR_DAYS = 300
_NO_CLOSE = np.iinfo(np.int64).min  # int8 sentinel of a missing (NULL or NaN) close
FACTOR_VIEWS = ("factors.api_underlying_beta", "factors.api_portfolio_factor_exposure")


def _float(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


# ---------------------------------------------------------------------------------------------
# Market data: calendar, adjusted closes (cached per date and run), betas, risk-free rate
# ---------------------------------------------------------------------------------------------


@dataclass
class ClosePanel:
    """Adjusted closes on the last CALENDAR_DAYS NYSE trading days up to t0 (NaN = no close)."""

    days: np.ndarray
    closes: dict[str, np.ndarray] = field(default_factory=dict)
    # Stored market betas of t0 found so far (a symbol without one is asked again: a later factors
    # batch of the run may store it); cached with the panel, i.e. for one run.
    betas: dict[str, float] = field(default_factory=dict)


async def views_present(session: AsyncSession, names: tuple[str, ...]) -> set[str]:
    """Which of the optional cross-service views exist (the factors schema may not be deployed)."""
    rows = await session.execute(
        sa.text("SELECT name FROM unnest(CAST(:names AS text[])) AS name WHERE to_regclass(name) IS NOT NULL"),
        {"names": list(names)},
    )
    return {r.name for r in rows}


async def calendar_days(session: AsyncSession, as_of: date) -> np.ndarray:
    """The last CALENDAR_DAYS NYSE trading days up to and including `as_of`, ascending."""
    rows = await session.execute(
        sa.text(
            "SELECT trading_date FROM marketdata.api_trading_day WHERE trading_date <= :d "
            "ORDER BY trading_date DESC LIMIT :n"
        ),
        {"d": as_of, "n": CALENDAR_DAYS},
    )
    return np.asarray(sorted(r.trading_date for r in rows), dtype="datetime64[D]")


# Per symbol, one range scan of the price key and a plain aggregate: no sort, no hash and no join of
# every value with its symbol's ordinal, whichever plan PostgreSQL picks; the outer aggregate only
# concatenates one block per symbol. The symbol list goes through a sub-select so the planner costs
# it as a short list: with its true length a custom plan costs enough (~700 per symbol) to be
# JIT-compiled on every batch, which costs more than the read.
_CLOSES_SQL = sa.text(
    """
    SELECT array_agg(CAST(s.k AS int4)) AS symbol_index, array_agg(octet_length(c.price) / 8) AS counts,
           string_agg(c.day_offset, ''::bytea) AS day_offset, string_agg(c.price, ''::bytea) AS price
    FROM unnest(CAST((SELECT CAST(:symbols AS text[])) AS text[])) WITH ORDINALITY AS s(symbol, k)
    CROSS JOIN LATERAL (
        SELECT string_agg(int4send(p.price_date - CAST(:lo AS date)), ''::bytea) AS day_offset,
               string_agg(int8send(coalesce(
                   CAST(nullif(coalesce(p.adj_close, p.close), 'NaN') * 10000 AS int8),
                   -9223372036854775808)), ''::bytea) AS price
        FROM marketdata.api_daily_price p
        WHERE p.symbol = s.symbol AND p.price_date BETWEEN CAST(:lo AS date) AND CAST(:hi AS date)
    ) c
    WHERE c.price IS NOT NULL
    """
)


async def load_closes(session: AsyncSession, panel: ClosePanel, symbols: set[str]) -> None:
    """Add the adjusted closes of `symbols` not yet in `panel` (one query)."""
    missing = sorted(symbols - panel.closes.keys())
    if not missing or not panel.days.size:
        for symbol in missing:
            panel.closes[symbol] = np.full(panel.days.shape, np.nan)
        return
    lo, hi = panel.days[0].item(), panel.days[-1].item()
    # One row of packed big-endian arrays (day offset from `lo`, close), a block per symbol with
    # closes, and each block's symbol ordinal and length: no per-value Python objects, no per-symbol
    # sort — the panel is filled in one numpy scatter. This read is the bulk of the step's database
    # time when the panel is not cached.
    row = (await session.execute(_CLOSES_SQL, {"symbols": missing, "lo": lo, "hi": hi})).one()
    closes = np.full((len(missing), panel.days.size), np.nan)
    if row.price is not None:
        # ordinality is 1-based
        column = np.repeat(np.asarray(row.symbol_index, dtype=np.int64) - 1, np.asarray(row.counts, dtype=np.int64))
        offset = np.frombuffer(row.day_offset, dtype=">i4").astype(np.int64)
        # Closes are numeric(18,4): sent as exact int8 ten-thousandths (numeric → float8 in SQL costs
        # a decimal-string round trip per value). int / 10000.0 is the correctly rounded double of the
        # decimal, i.e. exactly what `::float8` gave, for any close below 2**53 / 10**4 (≈ $900bn).
        scaled = np.frombuffer(row.price, dtype=">i8").astype(np.int64)
        price = np.where(scaled == _NO_CLOSE, np.nan, scaled / 10_000.0)
        # Panel row of each calendar offset from `lo` (-1: not a trading day of the panel).
        row_of = np.full((hi - lo).days + 1, -1, dtype=np.int64)
        row_of[(panel.days - panel.days[0]).astype(np.int64)] = np.arange(panel.days.size)
        at = row_of[offset]
        ok = at >= 0
        closes[column[ok], at[ok]] = price[ok]
    for j, symbol in enumerate(missing):
        panel.closes[symbol] = closes[j]


async def market_betas(session: AsyncSession, as_of: date, symbols: list[str], present: set[str]) -> dict[str, float]:
    """Stored market betas of `symbols` for `as_of` (factors.api_underlying_beta)."""
    if "factors.api_underlying_beta" not in present or not symbols:
        return {}
    # A semi-join on the unnested list, not `symbol = ANY(:s)`: once PostgreSQL switches the prepared
    # statement to its generic plan (6th run), ANY over a parameter array is no longer hashed and
    # compares every stored row with every symbol (~1,000 × 2,000 per batch: 4 ms became 20 ms).
    rows = await session.execute(
        sa.text(
            "SELECT symbol, beta FROM factors.api_underlying_beta "
            "WHERE calculation_date = :d AND factor_code = 'market' AND beta IS NOT NULL "
            "AND symbol::text IN (SELECT unnest(CAST(:s AS text[])))"
        ),
        {"d": as_of, "s": symbols},
    )
    return {r.symbol: float(r.beta) for r in rows}


async def risk_free(session: AsyncSession, start: date, end: date) -> tuple[np.ndarray, np.ndarray]:
    """DGS3MO (fractions) on [last value ≤ start, end]."""
    rows = (
        await session.execute(
            sa.text(
                """
                SELECT observation_date, value::float8 AS value FROM marketdata.api_rate
                WHERE series_id = 'DGS3MO' AND value IS NOT NULL AND observation_date <= :end
                  AND observation_date >= coalesce(
                        (SELECT max(observation_date) FROM marketdata.api_rate
                         WHERE series_id = 'DGS3MO' AND value IS NOT NULL AND observation_date <= :start), :start)
                ORDER BY observation_date
                """
            ),
            {"start": start, "end": end},
        )
    ).all()
    return (
        np.asarray([r.observation_date for r in rows], dtype="datetime64[D]"),
        np.asarray([r.value for r in rows], dtype=np.float64),
    )


# ---------------------------------------------------------------------------------------------
# Portfolio inputs (a batch of portfolios of one date)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HoldingRows:
    """Valued positions of one portfolio on t0 (parallel lists; money in dollars, NaN = NULL)."""

    underlying: list[str]
    is_option: list[bool]
    market_value: list[float]
    dollar_exposure: list[float]
    gamma: list[float]
    underlying_price: list[float]
    greek_status: list[str | None]


@dataclass(frozen=True)
class PortfolioRows:
    """Everything stored about one portfolio that its risk metrics need."""

    portfolio_id: UUID
    live: bool
    cash: float | None
    positions_total: int
    holdings: HoldingRows | None
    factors: dict[str, tuple[float | None, float | None]]
    history: SnapshotHistory


def holdings_by_portfolio(columns: Mapping[str, list[Any]]) -> dict[UUID, HoldingRows]:
    """The holdings of each portfolio in the batch's valued positions (`stress_repository.position_rows`:
    ordered by portfolio, then position id), NULL amounts as NaN. The underlying is the position's
    underlying symbol, else its own symbol."""
    pids = columns["portfolio_id"]
    if not pids:
        return {}
    owner = np.asarray(pids, dtype=object)
    if not _grouped(owner):  # never so from position_rows; any other caller is grouped here, stably
        order = np.argsort(owner, kind="stable")
        owner = owner[order]
        columns = {name: [values[i] for i in order.tolist()] for name, values in columns.items()}
    starts = np.flatnonzero(np.concatenate(([True], owner[1:] != owner[:-1]))).tolist()
    bounds = [*starts, owner.size]

    def floats(name: str) -> list[float]:  # None → NaN, as the former per-value `_nan`
        return np.asarray(columns[name], dtype=np.float64).tolist()

    underlying = columns["underlying_symbol"]
    if None in underlying:  # coalesce(underlying_symbol, symbol)
        underlying = [u if u is not None else s for u, s in zip(underlying, columns["symbol"], strict=True)]
    is_option = np.asarray(columns["is_option"], dtype=bool).tolist()  # NULL → False
    market_value = floats("market_value")
    dollar_exposure = floats("dollar_exposure")
    gamma = floats("gamma")
    price = floats("underlying_price")
    status = columns["greek_status"]
    out: dict[UUID, HoldingRows] = {}
    for a, b in pairwise(bounds):
        out[owner[a]] = HoldingRows(
            underlying=underlying[a:b],
            is_option=is_option[a:b],
            market_value=market_value[a:b],
            dollar_exposure=dollar_exposure[a:b],
            gamma=gamma[a:b],
            underlying_price=price[a:b],
            greek_status=status[a:b],
        )
    return out


def _grouped(owner: np.ndarray) -> bool:
    """Whether each portfolio's positions are contiguous (a portfolio id never comes back later)."""
    changes = np.flatnonzero(owner[1:] != owner[:-1])
    return len({*owner[changes + 1].tolist(), owner[0]}) == changes.size + 1


# Held on t0 (docs/contracts.md rule) or valued on t0: the positions the metrics account for.
_COUNTS_SQL = sa.text(
    """
    SELECT p.id AS portfolio_id, p.cash_balance::float8 AS cash,
           (SELECT count(*) FROM ingest.api_position x
            WHERE x.portfolio_id = p.id
              AND ((x.entry_date <= :d AND (x.status = 'open' OR x.exit_date > :d))
                   OR EXISTS (SELECT 1 FROM ingest.api_position_valuation v
                              WHERE v.position_id = x.id AND v.valuation_date = :d))) AS positions_total
    FROM ingest.api_portfolio p
    WHERE p.id = ANY(:ids)
    """
)

_FACTORS_SQL = sa.text(
    """
    SELECT portfolio_id, factor_code, exposure_dollar::float8 AS exposure_dollar, beta
    FROM factors.api_portfolio_factor_exposure
    WHERE portfolio_id = ANY(:ids) AND calculation_date = :d AND factor_code IN ('market', 'interest_rate')
      AND status = 'ok'
    """
)

_HISTORY_SQL = sa.text(
    """
    SELECT s.portfolio_id,
           array_agg(s.snapshot_date ORDER BY s.snapshot_date) AS dates,
           array_agg(t.previous_trading_date ORDER BY s.snapshot_date) AS previous,
           array_agg(s.daily_pnl::float8 ORDER BY s.snapshot_date) AS daily_pnl,
           array_agg(s.daily_return ORDER BY s.snapshot_date) AS daily_return,
           array_agg(s.var_95_1d::float8 ORDER BY s.snapshot_date) AS var95,
           array_agg(s.var_99_1d::float8 ORDER BY s.snapshot_date) AS var99
    FROM stress.portfolio_snapshot s
    LEFT JOIN marketdata.api_trading_day t ON t.trading_date = s.snapshot_date
    WHERE s.portfolio_id = ANY(:ids) AND s.snapshot_date < :d AND s.snapshot_date >= :lo
    GROUP BY s.portfolio_id
    """
)


def _nan(values: list[Any] | None) -> list[float]:
    return [math.nan if x is None else float(x) for x in values or []]


async def portfolio_rows(
    session: AsyncSession, portfolio_ids: list[UUID], as_of: date, history_start: date, present: set[str]
) -> dict[UUID, PortfolioRows]:
    """Holdings, cash, counts, market/rate factor rows and snapshot history of each portfolio."""
    params = {"ids": portfolio_ids, "d": as_of}
    counts = {r.portfolio_id: r for r in await session.execute(_COUNTS_SQL, params)}
    # The stress step's one positions read of the batch (memoised: market risk and stress tests of
    # the same portfolios have usually read it already).
    holdings = holdings_by_portfolio(await stress_repository.batch_position_rows(session, portfolio_ids, as_of))
    factors: dict[UUID, dict[str, tuple[float | None, float | None]]] = {}
    if "factors.api_portfolio_factor_exposure" in present:
        for r in await session.execute(_FACTORS_SQL, params):
            factors.setdefault(r.portfolio_id, {})[r.factor_code] = (r.exposure_dollar, r.beta)
    history = {r.portfolio_id: r for r in await session.execute(_HISTORY_SQL, {**params, "lo": history_start})}
    out: dict[UUID, PortfolioRows] = {}
    no_history = SnapshotHistory.empty()  # read only: one for every portfolio without snapshots
    for pid in portfolio_ids:
        c = counts.get(pid)
        s = history.get(pid)
        out[pid] = PortfolioRows(
            portfolio_id=pid,
            live=c is not None,
            cash=None if c is None else c.cash,
            positions_total=0 if c is None else int(c.positions_total),
            holdings=holdings.get(pid),
            factors=factors.get(pid, {}),
            history=no_history
            if s is None
            else SnapshotHistory.build(
                s.dates, [p for p in s.previous], _nan(s.daily_pnl), _nan(s.daily_return), _nan(s.var95), _nan(s.var99)
            ),
        )
    return out


def history_start(days: np.ndarray, as_of: date) -> date:
    """First date of the snapshot history the metrics read (≈ 300 trading days before t0)."""
    return days[0].item() if days.size else as_of - timedelta(days=2 * VAR_WINDOW)


# ---------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------


def money_amounts(m: RiskMetrics) -> list[float | None]:
    """The dollar amounts of `m` that its row stores rounded to cents, in the order `risk_metric_row`
    reads them: equity, historical and parametric VaR/ES, σ, rate exposure, DV01, then the EWMA
    block's σ, VaR and ES (None without one)."""
    h95, h99 = m.historical(0.95), m.historical(0.99)
    p95, p99 = m.parametric(0.95), m.parametric(0.99)
    ewma = ewma_block(m.var)
    amounts = [
        m.equity,
        h95.var if h95 else None,
        h99.var if h99 else None,
        h95.es if h95 else None,
        h99.es if h99 else None,
        p95.var if p95 else None,
        p99.var if p99 else None,
        p95.es if p95 else None,
        p99.es if p99 else None,
        m.var.sigma_daily,
        m.rate_exposure,
        m.dv01,
    ]
    if ewma is None:  # as many places, so that every portfolio's amounts line up in one matrix
        return [*amounts, *[None] * (1 + 2 * len(CONFIDENCES))]
    return [*amounts, ewma["sigma_daily"], *ewma["var"].values(), *ewma["es"].values()]


def risk_metric_row(
    portfolio_id: UUID,
    as_of: date,
    m: RiskMetrics,
    run_id: UUID | None,
    extra_flags: list[str] | None = None,
    amounts: Sequence[str | None] | None = None,
) -> dict[str, Any]:
    """The stress.risk_metric row of `m`: money as `money()` text (cents half-even; numeric_in stores
    the very cents `round_money` gives). `amounts` are those texts of `money_amounts(m)` when a batch
    formatted them all at once (`money_vector.money_strings`)."""
    texts = iter([money(v) for v in money_amounts(m)] if amounts is None else amounts)
    equity, h95_var, h99_var, h95_es, h99_es, p95_var, p99_var, p95_es, p99_es = islice(texts, 9)
    sigma_daily, rate_exposure, dv01 = islice(texts, 3)
    perf = m.performance
    ewma = ewma_block(m.var)
    if ewma is not None:
        ewma["sigma_daily"] = next(texts)
        ewma["var"] = {k: next(texts) for k in ewma["var"]}
        ewma["es"] = {k: next(texts) for k in ewma["es"]}
    flags = sorted(set(m.flags) | set(extra_flags or []))
    return {
        "portfolio_id": portfolio_id,
        "calculation_date": as_of,
        "equity": equity,
        "var_window_start_date": m.window_start,
        "var_window_end_date": m.window_end,
        "var_observations": m.var.observations,
        "var_95_hist": h95_var,
        "var_99_hist": h99_var,
        "es_95_hist": h95_es,
        "es_99_hist": h99_es,
        "var_95_param": p95_var,
        "var_99_param": p99_var,
        "es_95_param": p95_es,
        "es_99_param": p99_es,
        "sigma_daily": sigma_daily,
        "ewma": ewma,
        "ex_ante_volatility": _float(m.ex_ante_volatility),
        "beta_ex_ante": _float(m.beta_ex_ante),
        "series_type": perf.series_type,
        "performance_observations": perf.observations,
        "performance_start_date": perf.start_date,
        "performance_end_date": perf.end_date,
        "realized_volatility": _float(perf.volatility),
        "beta_realized": _float(perf.beta),
        "alpha_daily": _float(perf.alpha_daily),
        "beta_r_squared": _float(perf.r_squared),
        "beta_observations": perf.beta_observations,
        "sharpe_ratio": _float(perf.sharpe),
        "sortino_ratio": _float(perf.sortino),
        "max_drawdown": _float(perf.max_drawdown),
        "max_drawdown_peak_date": perf.peak_date,
        "max_drawdown_trough_date": perf.trough_date,
        "max_drawdown_recovery_date": perf.recovery_date,
        "rate_exposure_dollar": rate_exposure,
        "dv01": dv01,
        "positions_total": m.positions_total,
        "positions_included": m.positions_included,
        "proxied": m.proxied,
        "backtest": m.backtest,
        "flags": flags,
        "data_status": "partial" if m.data_status == "partial" or "upstream_step_failed" in flags else "fresh",
        "engine_version": ENGINE_VERSION,
        "run_id": run_id,
    }


async def upsert_risk_metric(session: AsyncSession, row: dict[str, Any]) -> None:
    """Insert or replace the risk metrics of (portfolio_id, calculation_date)."""
    await upsert_risk_metrics(session, [row])


async def upsert_risk_metrics(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert or replace the risk metrics of many (portfolio_id, calculation_date) in one executemany."""
    if not rows:
        return
    await bulk_upsert.upsert_rows(session, risk_metric, rows, ("portfolio_id", "calculation_date"))


async def delete_portfolio_metrics(session: AsyncSession, portfolio_id: UUID) -> int:
    """Purge the risk metrics of a removed portfolio."""
    result = await session.execute(sa.delete(risk_metric).where(risk_metric.c.portfolio_id == portfolio_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# Reads of GET /api/v1/risk/metrics (raw asyncpg pool)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortfolioOwner:
    """A live portfolio and its owner."""

    id: UUID
    user_id: UUID


class RiskReader:
    """Stored risk metrics, market-risk scenario results and provenance for #33."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def portfolio(self, portfolio_id: UUID) -> PortfolioOwner | None:
        """The live portfolio `portfolio_id`."""
        row = await self.db.fetchrow("SELECT id, user_id FROM ingest.api_portfolio WHERE id = $1", portfolio_id)
        return None if row is None else PortfolioOwner(row["id"], row["user_id"])

    async def default_portfolio(self, user_id: UUID) -> PortfolioOwner | None:
        """The user's default portfolio (else the first created); onboarding ones only by explicit id."""
        row = await self.db.fetchrow(
            "SELECT id, user_id FROM ingest.api_portfolio WHERE user_id = $1 AND status <> 'onboarding'"
            " ORDER BY is_default DESC, created_at, id LIMIT 1",
            user_id,
        )
        return None if row is None else PortfolioOwner(row["id"], row["user_id"])

    async def metrics(self, portfolio_id: UUID, as_of: date | None) -> asyncpg.Record | None:
        """The risk metrics of `as_of` (latest when None), with the market context of that date."""
        return await self.db.fetchrow(
            """
            SELECT m.*,
                   (SELECT p.source FROM marketdata.api_daily_price p
                    WHERE p.symbol = 'SPY' AND p.price_date <= m.calculation_date
                    ORDER BY p.price_date DESC LIMIT 1) AS spy_source,
                   (SELECT max(p.price_date) FROM marketdata.api_daily_price p WHERE p.symbol = 'SPY') AS spy_last
            FROM stress.risk_metric m
            WHERE m.portfolio_id = $1 AND ($2::date IS NULL OR m.calculation_date = $2)
            ORDER BY m.calculation_date DESC LIMIT 1
            """,
            portfolio_id,
            as_of,
        )

    async def market_scenarios(self, portfolio_id: UUID, as_of: date) -> list[asyncpg.Record]:
        """Stored market-risk scenario results of the date: market moves first, by size, up before down."""
        return await self.db.fetch(
            """
            SELECT scenario_key, kind, shock, predicted_pnl, predicted_pnl_pct, linear_pnl, nonlinear_adjustment,
                   flags
            FROM stress.market_risk_result
            WHERE portfolio_id = $1 AND calculation_date = $2
            ORDER BY kind = 'interest_rate', abs(shock), shock DESC
            """,
            portfolio_id,
            as_of,
        )
