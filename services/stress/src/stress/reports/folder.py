"""Reports written to a folder, for the platform team's CLI (users.md §4.9: one portfolio, all
portfolios, a chosen date, chosen formats, a dry run that writes nothing, a custom output folder).

Reads the same data as the API reports and builds the same files; it stores nothing in the database
(reports made this way are not listed by #75).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from uuid import UUID

from common.db import Database
from common.formatting import utcnow
from stress import repository as snapshot_repository
from stress.reports import inputs as reads
from stress.reports.document import ALL_SECTIONS
from stress.reports.render import build_files


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@dataclass
class FolderReport:
    """What was (or, in a dry run, would be) written for one portfolio."""

    portfolio_id: UUID
    as_of: date | None
    files: list[tuple[str, int]] = field(default_factory=list)  # (path, bytes)
    error: str | None = None


async def generate_to_folder(
    db: Database,
    *,
    portfolio_ids: Sequence[UUID] | None,
    as_of: date | None,
    formats: Sequence[str],
    out: Path,
    dry_run: bool,
) -> list[FolderReport]:
    """Build the reports of `portfolio_ids` (every active portfolio when None) on `as_of` (each
    portfolio's latest snapshot when None) and write them under `out` unless `dry_run`."""
    async with db.session() as session:
        ids = list(portfolio_ids) if portfolio_ids else await snapshot_repository.active_portfolio_ids(session)
        dates = await reads.snapshot_dates(session, ids, as_of)
    results = {pid: FolderReport(pid, dates.get(pid)) for pid in ids}
    by_date: dict[date, list[UUID]] = defaultdict(list)
    for pid in ids:
        if pid in dates:
            by_date[dates[pid]].append(pid)
        else:
            when = as_of.isoformat() if as_of else "any date"
            results[pid].error = f"no snapshot for {when} (or no such portfolio)"
    for day, pids in sorted(by_date.items()):
        async with db.transaction() as session:
            await reads.start_consistent_read(session)
            loaded = await reads.load(session, pids, day)
        for pid in pids:
            inputs = loaded.get(pid)
            if inputs is None:
                results[pid].error = "portfolio not found"
                continue
            _, made = await asyncio.to_thread(build_files, inputs, formats, ALL_SECTIONS, utcnow())
            for f in made:
                path = out / f.file_name
                if not dry_run:
                    await asyncio.to_thread(_write, path, f.data)
                results[pid].files.append((str(path), f.size_bytes))
    return [results[pid] for pid in ids]
