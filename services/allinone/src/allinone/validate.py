"""`make validate`: check the demo data counts of demo.md §8 and name what is missing (PLT-02)."""

from __future__ import annotations

import asyncio
import sys

from rich.console import Console

from allinone.runtime import database_url
from common.db import Database

# (description, SQL returning one integer, expected value)
CHECKS: tuple[tuple[str, str, int], ...] = (
    ("demo users", "SELECT count(*) FROM gateway.app_user WHERE is_demo", 3),
    ("demo portfolios", "SELECT count(*) FROM ingest.api_portfolio WHERE is_demo_seed", 3),
    (
        "open positions in demo portfolios",
        "SELECT count(*) FROM ingest.api_open_position p JOIN ingest.api_portfolio f ON f.id = p.portfolio_id "
        "WHERE f.is_demo_seed",
        63,
    ),
    (
        "tags of demo users",
        "SELECT count(*) FROM ingest.tag t WHERE t.deleted_at IS NULL AND t.user_id IN "
        "(SELECT id FROM gateway.app_user WHERE is_demo)",
        9,
    ),
    ("factor definitions", "SELECT count(*) FROM factors.api_factor_definition", 9),
    ("active stress scenarios", "SELECT count(*) FROM stress.stress_scenario WHERE is_active", 18),
)


async def validate(console: Console) -> int:
    """Run every check; return the number of failures."""
    db = Database(database_url(console), pool_size=1)
    failures = 0
    try:
        for label, sql, expected in CHECKS:
            try:
                row = await db.fetchrow(sql)
                found = int(row[0]) if row else 0
            except Exception as exc:
                console.print(f"[red]✗ {label}: cannot read ({exc.__class__.__name__}: {exc})[/red]")
                failures += 1
                continue
            if found == expected:
                console.print(f"[green]✓ {label}: {found}[/green]")
            else:
                console.print(f"[red]✗ {label}: found {found}, expected {expected} (run `make seed`)[/red]")
                failures += 1
    finally:
        await db.close()
    return failures


def main() -> None:
    """Entry point of `python -m allinone.validate`."""
    sys.exit(1 if asyncio.run(validate(Console())) else 0)


if __name__ == "__main__":
    main()
