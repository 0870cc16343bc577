"""Per-stage cost of the daily cycle on a generated book (a profiling aid beside `make bench`).

Each engine service is built on an in-process bus that is never started, so nothing cascades: the
harness calls one stage's real bus handler with synthetic input events for every portfolio (in
batches, as the bus delivers them), times it, and moves on to the next stage. The first pass fills
every table (it includes the once-per-date factor model); the second pass is the steady state of a
re-run. Wall time here is one process on one event loop against the local PostgreSQL — no broker,
no cross-process overlap — so it shows which stage costs what per portfolio.

Usage: `uv run python -m allinone.bench_stages [--portfolios 300] [--passes 2] [--keep]`; then, on the
kept database, `… --database sigmasight_stages_xxxxxxxx --only stress,snapshots --passes 3`.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from rich.console import Console
from sqlalchemy.engine import make_url

from allinone.bench_load import postgres_backends_cpu_seconds
from allinone.bench_universe import generate
from allinone.compose import ENGINES, build_allinone, build_service, migrate, seed_all
from allinone.runtime import prepare_demo
from common.bus import InProcessBus
from common.db import Database
from common.events import (
    Event,
    FactorsComputed,
    GreeksComputed,
    PortfolioUpdated,
    PricesUpdated,
    StepInfo,
    StressComputed,
)
from common.serve import freeze_heap
from common.testing import drop_database, recreate_database, with_database

AS_OF = date(2026, 11, 24)  # the fixture market's last day (MARKETDATA_FIXTURE_END_DATE)
BATCH = 64


@dataclass(frozen=True)
class StageTiming:
    """One stage of one pass: wall time, and the CPU time of this process and of the database's
    server backends (CPU seconds barely move when other work shares the cores; wall time does)."""

    stage: str
    passes: int
    portfolios: int
    seconds: float
    python_cpu: float = 0.0
    database_cpu: float = 0.0

    @property
    def ms_per_portfolio(self) -> float:
        return 1000 * self.seconds / max(self.portfolios, 1)


def _step(name: str) -> StepInfo:
    now = datetime.now(UTC)
    return StepInfo(name=name, status="completed", started_at=now, finished_at=now)


def _handler(bus: InProcessBus, consumer: str, event_type: type[Event]) -> Callable[[Any], Awaitable[None]]:
    for sub in bus.subscriptions:
        if sub.consumer == consumer and sub.event_type is event_type:
            return sub.handler
    raise LookupError(f"no {consumer} subscription for {event_type.routing_key}")


async def _batched(handler: Callable[[Any], Awaitable[None]], events: Sequence[Event]) -> None:
    for i in range(0, len(events), BATCH):
        await handler(list(events[i : i + BATCH]))


async def measure(url: str, *, passes: int = 2, only: Sequence[str] = ()) -> list[StageTiming]:
    """Time each stage's real handler over every active portfolio, `passes` times (stages whose
    name starts with one of `only`, when given; their inputs must already be stored)."""
    db = Database(url, pool_size=4)
    database = make_url(url).database or ""  # whose server backends' CPU is measured
    bus = InProcessBus()
    overrides = {"database_url": url, "mode": "allinone"}
    for name in ENGINES:
        build_service(name, db, bus, **overrides)
    rows = await db.fetch("SELECT id FROM ingest.api_portfolio WHERE status = 'active' ORDER BY id")
    ids = [r["id"] for r in rows]
    # As every serving process does after start-up: full collections then skip the start-up heap
    # (unfrozen, each one cost 150-200 ms here and landed in whichever stage triggered it).
    freeze_heap()
    greeks = _handler(bus, "greeks", PricesUpdated)
    ingest = _handler(bus, "ingest", GreeksComputed)
    factors = _handler(bus, "factors", PortfolioUpdated)
    stress = _handler(bus, "stress", FactorsComputed)
    snapshots = _handler(bus, "stress", StressComputed)
    # Each pass is one run, as in a real cycle: its events share a run id (run-scoped caches apply).
    this_run = {"id": uuid.uuid4()}
    stages: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        (
            "greeks",
            lambda: greeks(
                PricesUpdated(as_of=AS_OF, run_id=this_run["id"], portfolio_ids=ids, step=_step("market_data"))
            ),
        ),
        (
            "aggregations",
            lambda: _batched(ingest, [GreeksComputed(as_of=AS_OF, run_id=this_run["id"], portfolio_id=p) for p in ids]),
        ),
        (
            "factors + correlations",
            lambda: _batched(
                factors,
                [PortfolioUpdated(as_of=AS_OF, run_id=this_run["id"], portfolio_id=p, change="valued") for p in ids],
            ),
        ),
        (
            "risk_scenarios + stress_tests",
            lambda: _batched(
                stress,
                [
                    FactorsComputed(as_of=AS_OF, run_id=this_run["id"], portfolio_id=p, step=_step("factors"))
                    for p in ids
                ],
            ),
        ),
        (
            "snapshots",
            lambda: _batched(
                snapshots,
                [
                    StressComputed(as_of=AS_OF, run_id=this_run["id"], portfolio_id=p, step=_step("stress_tests"))
                    for p in ids
                ],
            ),
        ),
    ]
    out: list[StageTiming] = []
    try:
        for n in range(1, passes + 1):
            this_run["id"] = uuid.uuid4()
            for name, run in stages:
                if only and not any(name.startswith(o) for o in only):
                    continue
                db_cpu, cpu, started = postgres_backends_cpu_seconds(database), time.process_time(), time.perf_counter()
                await run()
                wall, cpu = time.perf_counter() - started, time.process_time() - cpu
                out.append(StageTiming(name, n, len(ids), wall, cpu, postgres_backends_cpu_seconds(database) - db_cpu))
                bus._pending.clear()  # published events go nowhere (the bus is never started)
    finally:
        await db.close()
    return out


async def prepare(url: str, portfolios: int, console: Console) -> None:
    """Migrate, seed, store the fixture market (one demo cycle), then add the generated book."""
    await migrate(url)
    system = build_allinone(url)
    await seed_all(system.db, url)
    await system.start()
    try:
        await prepare_demo(system, 1, console)
    finally:
        await system.stop()
    await generate(url, as_of=AS_OF, portfolios=portfolios)


async def main_async(portfolios: int, passes: int, keep: bool, database: str | None, only: list[str]) -> None:
    console = Console(width=160)
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    if database:  # a database kept by an earlier `--keep` run: measure only
        keep = True
        name, url = database, with_database(admin, database)
    else:
        name = f"sigmasight_stages_{uuid.uuid4().hex[:8]}"
        url = await recreate_database(admin, name)
    try:
        if not database:
            console.print(f"preparing {name}: migrations, seed, fixture market, {portfolios} generated portfolios …")
            await prepare(url, portfolios, console)
        for t in await measure(url, passes=passes, only=only):
            console.print(
                f"pass {t.passes}  {t.stage:<30} {t.portfolios:>5} portfolios  {t.seconds:7.2f} s  "
                f"{t.ms_per_portfolio:7.1f} ms/portfolio  CPU: python {t.python_cpu:6.2f} s, "
                f"database {t.database_cpu:6.2f} s"
            )
    finally:
        if keep:
            console.print(f"kept database {name}")
        else:
            await drop_database(admin, name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m allinone.bench_stages", description=__doc__.split("\n\n")[0])
    parser.add_argument("--portfolios", type=int, default=300)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the prepared database")
    parser.add_argument("--database", help="measure on a database kept by an earlier --keep run (no preparation)")
    parser.add_argument("--only", default="", help="comma-separated stage name prefixes, e.g. greeks,aggregations")
    opts = parser.parse_args(argv)
    only = [o.strip() for o in opts.only.split(",") if o.strip()]
    asyncio.run(main_async(opts.portfolios, opts.passes, opts.keep, opts.database, only))


if __name__ == "__main__":
    main()
