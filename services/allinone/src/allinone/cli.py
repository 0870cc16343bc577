"""The `sigmasight` command line: run all-in-one, serve one service, migrate, seed, cycles, back-fill."""

from __future__ import annotations

import asyncio
import os
from datetime import date
from pathlib import Path
from typing import Any

import typer
import uvloop
from rich.console import Console

from allinone import runtime
from common.serve import default_port, serve_service
from common.settings import SERVICES

app = typer.Typer(help="SigmaSight risk backend.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database commands.", no_args_is_help=True)
cycle_app = typer.Typer(help="Daily cycle commands.", no_args_is_help=True)
report_app = typer.Typer(help="Portfolio reports (users.md §4).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(cycle_app, name="cycle")
app.add_typer(report_app, name="report")
console = Console()


@app.command()
def run(
    host: str = typer.Option("127.0.0.1", help="Interface to bind"),
    port: int = typer.Option(int(os.environ.get("SIGMASIGHT_PORT", "8000")), help="Port (SIGMASIGHT_PORT)"),
    history_days: int = typer.Option(90, help="Trading days of snapshot history built on first start"),
) -> None:
    """All-in-one: migrate, seed demo data, run the first cycle, then serve the API."""
    uvloop.run(runtime.run_allinone(host=host, port=port, history_days=history_days, console=console))


@app.command()
def serve(
    service: str = typer.Argument(..., help=f"One of: {', '.join(SERVICES)}"),
    host: str = typer.Option("0.0.0.0", help="Interface to bind"),
    port: int | None = typer.Option(None, help="Port (default <SERVICE>_PORT or the service default)"),
) -> None:
    """Distributed mode: run one service on RabbitMQ (AMQP_URL) and PostgreSQL (DATABASE_URL)."""
    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}; choose one of {', '.join(SERVICES)}")
    uvloop.run(serve_service(service, host=host, port=port or default_port(service)))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every service's migrations (embedded PostgreSQL in all-in-one mode without DATABASE_URL)."""
    url = runtime.database_url(console)
    asyncio.run(runtime.migrate_with_progress(url, console))
    console.print("[green]database is up to date[/green]")


@app.command()
def seed() -> None:
    """Migrate, then seed demo users, portfolios, securities and the factor registry (idempotent)."""
    asyncio.run(runtime.seed_command(console))


@cycle_app.command("run")
def cycle_run(
    as_of: str | None = typer.Option(None, "--date", help="As-of trading date (default: latest completed)"),
    wait: bool = typer.Option(False, "--wait", help="Wait for the run to finish"),
    url: str = typer.Option(
        os.environ.get("SIGMASIGHT_URL", f"http://127.0.0.1:{os.environ.get('SIGMASIGHT_PORT', '8000')}"),
        help="Gateway URL of a running SigmaSight",
    ),
    force: bool = typer.Option(False, help="Re-run work already completed for this date"),
) -> None:
    """Start the daily run through the admin API of a running SigmaSight (idempotent per as-of date)."""
    if as_of is not None:
        date.fromisoformat(as_of)
    code = asyncio.run(runtime.cycle_via_api(url, as_of=as_of, wait=wait, force=force, console=console))
    raise typer.Exit(code)


@app.command()
def backfill(days: int = typer.Option(90, "--days", help="Trading days to back-fill")) -> None:
    """Back-fill prices, valuations and snapshots for the last N trading days."""
    asyncio.run(runtime.backfill_command(days, console))


@report_app.command("generate")
def report_generate(
    portfolio_id: list[str] = typer.Option([], "--portfolio-id", help="Portfolio id (repeatable)"),
    all_portfolios: bool = typer.Option(False, "--all", help="Every active portfolio"),
    as_of: str | None = typer.Option(None, "--date", help="Snapshot date (default: each portfolio's latest)"),
    formats: str = typer.Option("md,json,csv", help="Comma-separated: md, json, csv, pdf"),
    out: Path = typer.Option(Path("reports"), "--out", help="Output folder"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Build the files but write nothing"),
) -> None:
    """Write portfolio reports to a folder (reads the database directly; stores nothing)."""
    from stress.reports.cli import run_report_command

    raise typer.Exit(
        asyncio.run(
            run_report_command(
                runtime.database_url(console), portfolio_id, all_portfolios, as_of, formats, out, dry_run, console
            )
        )
    )


def main() -> Any:  # pragma: no cover - console entry point
    """Entry point."""
    return app()


if __name__ == "__main__":  # pragma: no cover
    main()
