"""What the CLI commands do: all-in-one start-up, single-service serving, seeding, cycles, back-fill."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from allinone.compose import AllInOne, build_allinone, build_service, migrate, seed_all
from allinone.embedded_pg import start_embedded
from common.bus import AmqpBus
from common.db import Database
from common.logging import configure
from common.serve import freeze_heap, uvicorn_config
from common.settings import BaseServiceSettings

log = logging.getLogger(__name__)

DEMO_LOGINS = (
    "demo_individual@sigmasight.com",
    "demo_hnw@sigmasight.com",
    "demo_hedgefundstyle@sigmasight.com",
)
DEMO_PASSWORD = "demo12345"
ADMIN_EMAIL = "demo_admin@sigmasight.com"

# Keeps the embedded PostgreSQL alive for the life of the process.
_embedded_handle: Any = None


def database_url(console: Console) -> str:
    """DATABASE_URL, or the embedded PostgreSQL in all-in-one mode."""
    global _embedded_handle
    settings = BaseServiceSettings()
    if settings.database_url:
        return settings.database_url
    if settings.mode == "distributed":
        raise SystemExit("DATABASE_URL must be set in distributed mode")
    with console.status("starting embedded PostgreSQL (pgserver)…"):
        url, _embedded_handle = start_embedded(settings.data_dir)
    return url


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


async def migrate_with_progress(url: str, console: Console) -> None:
    """Run all migrations with a spinner."""
    with console.status("applying migrations…"):
        await migrate(url)


def _marketdata_ctx(system_or_service: Any) -> Any:
    service = system_or_service.engines["marketdata"] if isinstance(system_or_service, AllInOne) else system_or_service
    return service.app.state.ctx


async def _snapshot_days(db: Database) -> int:
    """Fewest snapshot days across active demo portfolios (0 when none)."""
    rows = await db.fetch(
        """
        SELECT p.id, count(s.snapshot_date) AS n
        FROM ingest.api_portfolio p
        LEFT JOIN stress.api_snapshot s ON s.portfolio_id = p.id
        WHERE p.status = 'active' AND p.is_demo_seed
        GROUP BY p.id
        """
    )
    return min((int(r["n"]) for r in rows), default=0)


async def prepare_demo(system: AllInOne, history_days: int, console: Console) -> dict[str, Any]:
    """Back-fill history on first start, then run today's cycle (a no-op when already completed)."""
    from marketdata.backfill import backfill, wait_for_run
    from marketdata.batch_service import start_run
    from marketdata.market_data import default_as_of

    ctx = _marketdata_ctx(system)
    as_of = default_as_of(ctx, datetime.now(UTC))
    if await _snapshot_days(system.db) < history_days:
        with _progress(console) as progress:
            task = progress.add_task(f"building {history_days} days of history", total=history_days)

            def on_progress(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            await backfill(ctx, days=history_days, end=as_of, progress=on_progress)
    from common.ids import SYSTEM_USER_ID

    with console.status(f"running the daily cycle for {as_of}…"):
        run, _job, _dedup = await start_run(
            ctx,
            job_name="run_all",
            trigger="manual",
            requested_by=SYSTEM_USER_ID,
            as_of_date=as_of,
            portfolio_ids=None,
            cascade=True,
            force=False,
            params={},
        )
        status = await wait_for_run(ctx, run["id"], 600)
    return {"as_of": as_of, "run_id": run["id"], "status": status}


def banner(console: Console, url: str, admin_info: Any, cycle: dict[str, Any] | None) -> None:
    """What a person needs to start using the running system."""
    console.rule("[bold green]SigmaSight is running (all-in-one)")
    console.print(f"API:       {url}/api/v1")
    console.print(f"API docs:  {url}/docs   (OpenAPI: {url}/api/v1/openapi.json)")
    console.print(f"Health:    {url}/health")
    console.print(f"Demo logins (password [bold]{DEMO_PASSWORD}[/bold]): " + ", ".join(DEMO_LOGINS))
    if admin_info:
        console.print(f"Admin:     {ADMIN_EMAIL} — password in {admin_info}")
    else:
        console.print(f"Admin:     {ADMIN_EMAIL} — password from DEMO_ADMIN_PASSWORD")
    if cycle:
        console.print(f"Daily cycle for {cycle['as_of']}: {cycle['status']}")
    console.print(
        "Try: curl -s -X POST "
        f"{url}/api/v1/auth/login -H 'content-type: application/json' "
        f'-d \'{{"email":"{DEMO_LOGINS[2]}","password":"{DEMO_PASSWORD}"}}\''
    )


async def run_allinone(*, host: str, port: int, history_days: int, console: Console) -> None:
    """`sigmasight run`: everything in one process."""
    started = time.perf_counter()
    settings = BaseServiceSettings()
    configure("allinone", settings.log_level)
    url = database_url(console)
    await migrate_with_progress(url, console)
    system = build_allinone(url)
    with console.status("seeding demo data…"):
        seeded = await seed_all(system.db, url)
    await system.start()
    try:
        cycle = await prepare_demo(system, history_days, console)
        server = uvicorn.Server(uvicorn_config(system.app, host, port))
        freeze_heap()
        serve_task = asyncio.create_task(server.serve())
        while not server.started and not serve_task.done():
            await asyncio.sleep(0.05)
        if serve_task.done():
            await serve_task
            return
        public = f"http://{host}:{port}"
        banner(console, public, seeded.get("gateway"), cycle)
        console.print(f"ready in {time.perf_counter() - started:.1f} s — Ctrl+C to stop")
        await serve_task
    finally:
        await system.stop()


async def seed_command(console: Console) -> None:
    """`sigmasight seed`."""
    configure("allinone", BaseServiceSettings().log_level)
    url = database_url(console)
    await migrate_with_progress(url, console)
    db = Database(url, pool_size=2)
    try:
        with console.status("seeding…"):
            seeded = await seed_all(db, url)
    finally:
        await db.close()
    console.print("[green]seed complete[/green]")
    console.print(f"Demo logins (password {DEMO_PASSWORD}): " + ", ".join(DEMO_LOGINS))
    admin = seeded.get("gateway")
    console.print(f"Admin: {ADMIN_EMAIL} — password " + (f"in {admin}" if admin else "from DEMO_ADMIN_PASSWORD"))


def admin_password() -> str:
    """DEMO_ADMIN_PASSWORD, or the password all-in-one mode generated into the data dir."""
    value = os.environ.get("DEMO_ADMIN_PASSWORD")
    if value:
        return value
    path = BaseServiceSettings().data_dir / "admin_password"
    if path.exists():
        return path.read_text().strip()
    raise SystemExit("set DEMO_ADMIN_PASSWORD (or run `sigmasight seed` in all-in-one mode first)")


async def cycle_via_api(url: str, *, as_of: str | None, wait: bool, force: bool, console: Console) -> int:
    """`sigmasight cycle run`: trigger run-all through the admin API; exit code 0 on success."""
    async with aiohttp.ClientSession(base_url=url.rstrip("/") + "/") as http:
        login = await http.post("api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": admin_password()})
        if login.status != 200:
            console.print(f"[red]admin login failed: {login.status} {await login.text()}[/red]")
            return 2
        token = (await login.json())["data"]["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        body: dict[str, Any] = {"force": force}
        if as_of:
            body["as_of_date"] = as_of
        resp = await http.post("api/v1/admin/batch/run-all", json=body, headers=headers)
        payload = await resp.json()
        if resp.status not in (200, 202):
            console.print(f"[red]trigger failed: {resp.status} {payload}[/red]")
            return 2
        job = payload["data"]
        console.print(f"run {job['job_id']} {job['status']} (deduplicated: {job.get('deduplicated')})")
        if not wait:
            return 0
        status = job["status"]
        with console.status("waiting for the run…"):
            while status not in ("completed", "partial", "failed", "cancelled"):
                await asyncio.sleep(1.0)
                poll = await http.get(job["status_url"].lstrip("/"), headers=headers)
                status = (await poll.json())["data"]["status"]
        console.print(f"run finished: {status}")
        return 0 if status == "completed" else 1


async def backfill_command(days: int, console: Console) -> None:
    """`sigmasight backfill --days N` in either mode."""
    from marketdata.backfill import backfill

    settings = BaseServiceSettings()
    configure("allinone", settings.log_level)
    if settings.mode == "distributed":
        settings.require_distributed()
        db = Database(settings.database_url or "", pool_size=4)
        bus = AmqpBus(settings.amqp_url or "", namespace=settings.bus_namespace)
        svc = build_service("marketdata", db, bus, mode="distributed")
        await bus.connect()
        await svc.start()
        await bus.start()
        try:
            await _backfill_with_progress(backfill, _marketdata_ctx(svc), days, console)
        finally:
            await svc.stop()
            await bus.close()
            await db.close()
        return
    url = database_url(console)
    await migrate_with_progress(url, console)
    system = build_allinone(url)
    await seed_all(system.db, url)
    await system.start()
    try:
        await _backfill_with_progress(backfill, _marketdata_ctx(system), days, console)
    finally:
        with contextlib.suppress(Exception):
            await system.stop()


async def _backfill_with_progress(backfill: Any, ctx: Any, days: int, console: Console) -> None:
    with _progress(console) as progress:
        task = progress.add_task(f"back-filling {days} trading days", total=days)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        await backfill(ctx, days=days, progress=on_progress)
    console.print("[green]back-fill complete[/green]")
