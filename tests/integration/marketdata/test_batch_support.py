"""Shared helpers (no tests) for the batch integration tests: database, context, simulated pipeline.

The batch tests run on their own database with only the marketdata migrations plus minimal
stand-ins for the ingest views they read (`ingest.api_portfolio`, `ingest.api_open_position`),
so they do not depend on the ingest schema's evolution.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx
import sqlalchemy as sa

from common.auth import Principal, issue_access_token
from common.bus import InProcessBus
from common.db import Database
from common.events import (
    CycleStarted,
    Event,
    FactorsComputed,
    GreeksComputed,
    PortfolioUpdated,
    PricesUpdated,
    SnapshotCreated,
    StepError,
    StepInfo,
    StressComputed,
)
from marketdata.context import MarketDataContext
from marketdata.main import create_service
from marketdata.providers.fixture import FixtureProvider
from marketdata.settings import Settings

AS_OF = date(2026, 11, 24)
SECRET = "batch-tests-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
ADMIN = Principal(uuid.UUID("aaaaaaaa-0000-4000-8000-000000000001"), "admin@example.com", "admin")
USER = Principal(uuid.UUID("bbbbbbbb-0000-4000-8000-000000000002"), "user@example.com", "user")

STANDIN_SQL = (
    "CREATE SCHEMA IF NOT EXISTS ingest",
    "CREATE TABLE ingest.api_portfolio (id uuid PRIMARY KEY, user_id uuid NOT NULL, name text, status text NOT NULL)",
    "CREATE TABLE ingest.api_open_position (portfolio_id uuid NOT NULL, symbol text NOT NULL, underlying_symbol text)",
)
TRUNCATE_SQL = (
    "TRUNCATE marketdata.batch_schedule, marketdata.batch_job_run, marketdata.batch_run, marketdata.job, "
    "marketdata.outbox, marketdata.processed_event, ingest.api_portfolio, ingest.api_open_position"
)


async def create_batch_database(admin_url: str, name: str) -> str:
    """A database with the marketdata migrations and the ingest stand-ins."""
    from tests.conftest import make_migrated_database

    url = await make_migrated_database(admin_url, name, services=("marketdata",))
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as session:
            for stmt in STANDIN_SQL:
                await session.execute(sa.text(stmt))
    finally:
        await db.close()
    return url


def token(principal: Principal) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_access_token(principal, SECRET, 3600)}"}


@dataclass
class Env:
    """One test's marketdata: context, in-process bus, app client, and captured events."""

    ctx: MarketDataContext
    bus: InProcessBus
    client: httpx.AsyncClient
    seen: list[Event] = field(default_factory=list)

    async def portfolio(self, status: str = "active", symbols: tuple[str, ...] = ("AAPL",)) -> uuid.UUID:
        pid = uuid.uuid4()
        async with self.ctx.db.transaction() as session:
            await session.execute(
                sa.text("INSERT INTO ingest.api_portfolio (id, user_id, name, status) VALUES (:id, :u, 'p', :s)"),
                {"id": pid, "u": USER.user_id, "s": status},
            )
            for sym in symbols:
                await session.execute(
                    sa.text("INSERT INTO ingest.api_open_position (portfolio_id, symbol) VALUES (:p, :s)"),
                    {"p": pid, "s": sym},
                )
        return pid

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.ctx.db.session() as session:
            return (await session.execute(sa.text(sql), params)).scalar()

    async def execute(self, sql: str, **params: Any) -> None:
        async with self.ctx.db.transaction() as session:
            await session.execute(sa.text(sql), params)

    async def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        async with self.ctx.db.session() as session:
            return [dict(r) for r in (await session.execute(sa.text(sql), params)).mappings().all()]

    def events(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.seen if isinstance(e, kind)]


async def make_env(url: str, *, provider: Any = None) -> Env:
    """The marketdata service (main.create_service) on `url`; the caller starts the bus after subscribing."""
    settings = Settings(jwt_secret=SECRET, mode="allinone", scheduler_enabled=False)
    db = Database(url, pool_size=4)
    bus = InProcessBus()
    service = create_service(settings, db, bus, provider=provider or FixtureProvider(AS_OF))
    app = service.app
    ctx: MarketDataContext = app.state.ctx
    async with db.transaction() as session:
        await session.execute(sa.text(TRUNCATE_SQL))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    env = Env(ctx=ctx, bus=bus, client=client)

    async def capture(evt: Event) -> None:
        env.seen.append(evt)

    for kind in (PricesUpdated, GreeksComputed, PortfolioUpdated, SnapshotCreated):
        bus.subscribe("test_capture", kind, capture)
    return env


async def close_env(env: Env) -> None:
    await env.client.aclose()
    await env.bus.close()
    await env.ctx.db.close()


def step(name: str, status: str = "completed", error: str | None = None, records: int = 1) -> StepInfo:
    now = datetime.now(UTC)
    return StepInfo(
        name=name,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        started_at=now,
        finished_at=now,
        records_processed=records,
        error=StepError(code="SIMULATED", message=error) if error else None,
    )


def simulate_pipeline(bus: InProcessBus, *, fail: Callable[[str, uuid.UUID], bool] = lambda s, p: False) -> None:
    """Fake owners of every step: prices → greeks → valued → factors → stress → snapshot (cascade only).

    `fail(step, portfolio_id)` makes that step report `failed` for that portfolio; the chain goes on,
    as the real services do.
    """

    def status_for(name: str, pid: uuid.UUID) -> tuple[str, str | None]:
        return ("failed", f"{name} failed for {pid}") if fail(name, pid) else ("completed", None)

    async def greeks(evt: PricesUpdated) -> None:
        if not evt.cascade:
            return
        for pid in evt.portfolio_ids or []:
            status, error = status_for("greeks", pid)
            await bus.publish(
                GreeksComputed(
                    run_id=evt.run_id,
                    as_of=evt.as_of,
                    portfolio_id=pid,
                    cascade=evt.cascade,
                    producer="greeks",
                    step=step("greeks", status, error),
                )
            )

    async def ingest(evt: GreeksComputed) -> None:
        if not evt.cascade:
            return
        status, error = status_for("aggregations", evt.portfolio_id)
        await bus.publish(
            PortfolioUpdated(
                run_id=evt.run_id,
                as_of=evt.as_of,
                portfolio_id=evt.portfolio_id,
                change="valued",
                cascade=evt.cascade,
                producer="ingest",
                step=step("aggregations", status, error),
            )
        )

    async def factors(evt: PortfolioUpdated) -> None:
        if evt.change != "valued" or not evt.cascade:
            return
        await bus.publish(
            factors_event(evt.run_id, evt.as_of, evt.portfolio_id, evt.cascade, ["factors", "correlations"])
        )

    def factors_event(run_id: Any, as_of: Any, pid: uuid.UUID, cascade: bool, names: list[str]) -> FactorsComputed:
        infos = [step(n, *status_for(n, pid)) for n in names]
        return FactorsComputed(
            run_id=run_id,
            as_of=as_of,
            portfolio_id=pid,
            cascade=cascade,
            producer="factors",
            step=infos[0],
            extra_steps=infos[1:],
        )

    def stress_event(run_id: Any, as_of: Any, pid: uuid.UUID, cascade: bool, names: list[str]) -> StressComputed:
        infos = [step(n, *status_for(n, pid)) for n in names]
        return StressComputed(
            run_id=run_id,
            as_of=as_of,
            portfolio_id=pid,
            cascade=cascade,
            producer="stress",
            step=infos[0],
            extra_steps=infos[1:],
        )

    async def stress(evt: FactorsComputed) -> None:
        if not evt.cascade:
            return
        await bus.publish(
            stress_event(evt.run_id, evt.as_of, evt.portfolio_id, evt.cascade, ["stress_tests", "risk_scenarios"])
        )

    async def snapshots(evt: StressComputed) -> None:
        if not evt.cascade:
            return
        status, error = status_for("snapshots", evt.portfolio_id)
        await bus.publish(
            SnapshotCreated(
                run_id=evt.run_id,
                as_of=evt.as_of,
                portfolio_id=evt.portfolio_id,
                snapshot_date=evt.as_of,
                cascade=evt.cascade,
                producer="stress",
                step=step("snapshots", status, error),
            )
        )

    async def single_step(evt: CycleStarted) -> None:
        # Owners of a single-step trigger act on cycle.started when steps[0] is their step.
        first = evt.steps[0] if evt.steps else None
        for pid in evt.portfolio_ids or []:
            common = {"run_id": evt.run_id, "as_of": evt.as_of, "portfolio_id": pid, "cascade": evt.cascade}
            if first == "greeks":
                status, error = status_for("greeks", pid)
                await bus.publish(GreeksComputed(**common, producer="greeks", step=step("greeks", status, error)))
            elif first == "aggregations":
                status, error = status_for("aggregations", pid)
                await bus.publish(
                    PortfolioUpdated(
                        **common, change="valued", producer="ingest", step=step("aggregations", status, error)
                    )
                )
            elif first in ("factors", "correlations"):
                names = [n for n in ("factors", "correlations") if n in evt.steps]
                await bus.publish(factors_event(evt.run_id, evt.as_of, pid, evt.cascade, names))
            elif first in ("risk_scenarios", "stress_tests"):
                names = [n for n in ("stress_tests", "risk_scenarios") if n in evt.steps]
                await bus.publish(stress_event(evt.run_id, evt.as_of, pid, evt.cascade, names))
            elif first == "snapshots":
                status, error = status_for("snapshots", pid)
                await bus.publish(
                    SnapshotCreated(
                        **common, snapshot_date=evt.as_of, producer="stress", step=step("snapshots", status, error)
                    )
                )

    bus.subscribe("fake_owner", CycleStarted, single_step)
    bus.subscribe("fake_greeks", PricesUpdated, greeks)
    bus.subscribe("fake_ingest", GreeksComputed, ingest)
    bus.subscribe("fake_factors", PortfolioUpdated, factors)
    bus.subscribe("fake_stress", FactorsComputed, stress)
    bus.subscribe("fake_snapshots", StressComputed, snapshots)
