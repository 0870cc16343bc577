"""`sigmasight report generate`: the platform team's report command (users.md §4.9), on top of
stress.reports.folder. Returns a process exit code: 0 all written, 1 some portfolio failed, 2 bad options."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

from common.db import Database
from stress.exports.tables import REPORT_FORMATS
from stress.reports.folder import generate_to_folder


def parse_options(
    portfolio_ids: list[str], all_portfolios: bool, as_of: str | None, formats: str
) -> tuple[list[UUID] | None, date | None, list[str]]:
    """Validated options; ValueError with a message for the user."""
    if bool(portfolio_ids) == all_portfolios:
        raise ValueError("give --portfolio-id (one or more) or --all")
    ids = [UUID(p) for p in portfolio_ids] if portfolio_ids else None
    day = date.fromisoformat(as_of) if as_of else None
    chosen = [f.strip().lower() for f in formats.split(",") if f.strip()]
    unknown = sorted(set(chosen) - set(REPORT_FORMATS))
    if not chosen or unknown:
        raise ValueError(f"--formats takes {', '.join(REPORT_FORMATS)}; got {formats!r}")
    return ids, day, chosen


async def run_report_command(
    database_url: str,
    portfolio_ids: list[str],
    all_portfolios: bool,
    as_of: str | None,
    formats: str,
    out: Path,
    dry_run: bool,
    console: Any,
) -> int:
    """Generate, print one line per file (or failure), return the exit code."""
    try:
        ids, day, chosen = parse_options(portfolio_ids, all_portfolios, as_of, formats)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    db = Database(database_url, pool_size=2)
    try:
        results = await generate_to_folder(db, portfolio_ids=ids, as_of=day, formats=chosen, out=out, dry_run=dry_run)
    finally:
        await db.close()
    verb = "would write" if dry_run else "wrote"
    for result in results:
        if result.error:
            console.print(f"[red]{result.portfolio_id}: {result.error}[/red]")
        for path, size in result.files:
            console.print(f"{verb} {path} ({size:,} bytes)")
    return 1 if any(r.error for r in results) else 0
