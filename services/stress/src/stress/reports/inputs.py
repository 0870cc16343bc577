"""A report's one data read (users.md §4.8): everything the files are built from, for one or many
portfolios of one date, in a single REPEATABLE READ snapshot so the md, json, csv and pdf agree.

The daily report reads a whole batch of portfolios with one statement per concern; the on-demand
report reads one. Stress results come through `stress_repository` (the #40 read path).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from stress import stress_repository
from stress.reports import inputs_sql as q
from stress.risk_repository import views_present

Row = dict[str, Any]


@dataclass(frozen=True)
class PortfolioInfo:
    """A live portfolio and its owner (owner fields are None when gateway.api_user is not deployed)."""

    id: UUID
    user_id: UUID
    name: str
    status: str
    cash_balance: Any
    owner_name: str | None
    owner_email: str | None


@dataclass(frozen=True)
class FactorWindow:
    """The factor model window of the report date (model basis)."""

    observations: int | None
    start: date | None
    end: date | None
    lookback_days: int | None


@dataclass
class ReportInputs:
    """Everything one portfolio's report is built from."""

    portfolio: PortfolioInfo
    as_of: date
    data_source: str
    positions: list[Row] = field(default_factory=list)
    snapshots: list[Row] = field(default_factory=list)  # ascending, up to as_of
    first_snapshot_date: date | None = None
    previous_date: date | None = None
    previous_positions: list[Row] = field(default_factory=list)
    factors: list[Row] = field(default_factory=list)
    factor_window: FactorWindow | None = None
    stress_run: Row | None = None
    stress_results: list[Row] = field(default_factory=list)
    active_scenarios: list[Row] = field(default_factory=list)
    risk_metric: Row | None = None
    correlation: Row | None = None  # the latest position-correlation calculation on or before as_of
    correlation_clusters: list[Row] = field(default_factory=list)  # its stored clusters, one row per member
    correlation_pairs: Row | None = None  # its pairs: symbols_1, symbols_2, correlations (parallel arrays)

    @property
    def snapshot(self) -> Row | None:
        """The snapshot of the report date, if stored."""
        last = self.snapshots[-1] if self.snapshots else None
        return last if last is not None and last["snapshot_date"] == self.as_of else None


def _grouped(rows: Sequence[Row]) -> dict[UUID, list[Row]]:
    out: dict[UUID, list[Row]] = defaultdict(list)
    for row in rows:
        out[row["portfolio_id"]].append(row)
    return out


async def _rows(session: AsyncSession, stmt: sa.TextClause, **params: Any) -> list[Row]:
    return [dict(r) for r in (await session.execute(stmt, params)).mappings()]


async def start_consistent_read(session: AsyncSession) -> None:
    """Make every following statement of the transaction see one snapshot of the database."""
    await session.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))


async def portfolios(session: AsyncSession, ids: Sequence[UUID]) -> dict[UUID, PortfolioInfo]:
    """Live portfolios among `ids` with their owners."""
    with_owner = bool(await views_present(session, ("gateway.api_user",)))
    sql = q.PORTFOLIOS.format(
        owner=q.OWNER_COLUMNS if with_owner else q.NO_OWNER, owner_join=q.OWNER_JOIN if with_owner else ""
    )
    rows = await _rows(session, sa.text(sql), ids=list(ids))
    return {
        r["id"]: PortfolioInfo(
            r["id"], r["user_id"], r["name"], r["status"], r["cash_balance"], r["owner_name"], r["owner_email"]
        )
        for r in rows
    }


async def snapshot_dates(session: AsyncSession, ids: Sequence[UUID], as_of: date | None) -> dict[UUID, date]:
    """The latest snapshot date on or before `as_of` (latest overall when None) of each portfolio."""
    rows = await session.execute(
        sa.text(
            """
            SELECT q.pid, (SELECT max(s.snapshot_date) FROM stress.api_snapshot s
                           WHERE s.portfolio_id = q.pid AND (CAST(:d AS date) IS NULL OR s.snapshot_date = :d)) AS d
            FROM unnest(CAST(:ids AS uuid[])) AS q(pid)
            """
        ),
        {"ids": list(ids), "d": as_of},
    )
    return {r.pid: r.d for r in rows if r.d is not None}


async def load(session: AsyncSession, ids: Sequence[UUID], as_of: date) -> dict[UUID, ReportInputs]:
    """The report inputs of every live portfolio among `ids` on `as_of`."""
    infos = await portfolios(session, ids)
    live = list(infos)
    if not live:
        return {}
    source = await stress_repository.data_source(session, as_of)
    out = {pid: ReportInputs(infos[pid], as_of, source) for pid in live}
    for pid, rows in _grouped(await _rows(session, q.POSITIONS, ids=live, d=as_of)).items():
        out[pid].positions = rows
    for pid, rows in _grouped(await _rows(session, q.SNAPSHOTS, ids=live, d=as_of)).items():
        out[pid].snapshots = rows
        out[pid].first_snapshot_date = rows[0]["first_date"]
    await _previous_books(session, out)
    for pid, rows in _grouped(await _rows(session, q.FACTORS, ids=live, d=as_of)).items():
        out[pid].factors = rows
    window = (await session.execute(q.FACTOR_WINDOW, {"d": as_of})).mappings().first()
    for inputs in out.values():
        inputs.factor_window = (
            None
            if window is None
            else FactorWindow(
                window["observations"], window["window_start_date"], window["window_end_date"], window["lookback_days"]
            )
        )
    for row in await _rows(session, q.RISK_METRICS, ids=live, d=as_of):
        out[row["portfolio_id"]].risk_metric = row
    for row in await _rows(session, q.CORRELATIONS, ids=live, d=as_of):
        out[row["portfolio_id"]].correlation = row
    await _correlation_details(session, out)
    await _stress(session, out, as_of)
    return out


async def _previous_books(session: AsyncSession, out: dict[UUID, ReportInputs]) -> None:
    """The book of each portfolio's previous snapshot date (one read per distinct date)."""
    by_date: dict[date, list[UUID]] = defaultdict(list)
    for pid, inputs in out.items():
        earlier = [s["snapshot_date"] for s in inputs.snapshots if s["snapshot_date"] < inputs.as_of]
        if earlier:
            inputs.previous_date = earlier[-1]
            by_date[earlier[-1]].append(pid)
    for day, pids in by_date.items():
        for pid, rows in _grouped(await _rows(session, q.PREVIOUS_POSITIONS, ids=pids, d=day)).items():
            out[pid].previous_positions = rows


async def _correlation_details(session: AsyncSession, out: dict[UUID, ReportInputs]) -> None:
    """Clusters and pairs of every chosen correlation calculation: one statement each for the batch."""
    by_calc = {i.correlation["calculation_id"]: i for i in out.values() if i.correlation is not None}
    if not by_calc:
        return
    calcs = list(by_calc)
    for row in await _rows(session, q.CORRELATION_CLUSTERS, calcs=calcs):
        by_calc[row["calculation_id"]].correlation_clusters.append(row)
    for row in await _rows(session, q.CORRELATION_PAIRS, calcs=calcs):
        by_calc[row["calculation_id"]].correlation_pairs = row


async def _stress(session: AsyncSession, out: dict[UUID, ReportInputs], as_of: date) -> None:
    """The stress run of the date (the batch run first) with its results, and the active catalogue."""
    runs = await _rows(session, q.STRESS_RUNS, ids=list(out), d=as_of)
    active = await stress_repository.scenarios(session, active_only=True)
    for inputs in out.values():
        inputs.active_scenarios = active
    for run in runs:
        inputs = out[run["portfolio_id"]]
        inputs.stress_run = run
        inputs.stress_results = await stress_repository.stress_results(session, run["id"])
