"""Demo reset (api.md #74, users.md DEMO-01): restore the seeded books, remove what demo users made.

Everything happens in one transaction under the demo users' tag and portfolio locks:
1. positions of demo users' portfolios that are not seeded rows are deleted (valuations and tag
   links cascade), then their uploads, onboarding steps and modelling sessions, then every
   non-seeded portfolio and tag of those users;
2. the three books are restored exactly (status, default flag, open positions, tags, links).
Events: `portfolio.updated` `removed` for every removed portfolio and `positions` with
`trigger="demo_reset"` for each demo portfolio (marketdata starts the recalculation run on it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from common.events import Event, PortfolioUpdated
from ingest import repository, seed
from ingest.demo_data import DEMO_BOOKS
from ingest.modeling import store as modeling_store
from ingest.notifications.store import delete_for_users as delete_notifications
from ingest.tag_rules import lock_user
from ingest.upload.store import delete_for_user

log = logging.getLogger(__name__)


@dataclass
class ResetResult:
    """Summary of a demo reset (the job's `result`)."""

    removed_portfolios: list[UUID] = field(default_factory=list)
    removed_positions: int = 0
    removed_tags: int = 0
    restored: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "portfolios": self.restored.get("portfolios", 0),
            "positions": self.restored.get("positions", 0),
            "tags": self.restored.get("tags", 0),
            "removed_portfolios": [str(p) for p in self.removed_portfolios],
            "removed_positions": self.removed_positions,
            "removed_tags": self.removed_tags,
        }


async def _delete_user_artifacts(session: AsyncSession, users: list[UUID]) -> None:
    """Uploads, onboarding progress, modelling sessions and notifications of demo users (the upload,
    modelling and notification parts own those tables)."""
    for user in users:
        await delete_for_user(session, user)
        await modeling_store.delete_for_user(session, user)
    await delete_notifications(session, users)


async def reset_demo(session: AsyncSession, as_of: date) -> tuple[ResetResult, list[Event]]:
    """Restore the demo state inside `session`'s transaction; returns the summary and events to emit."""
    users = [b.user_id for b in DEMO_BOOKS]
    for user in sorted(users):
        await lock_user(session, "portfolios", user)
        await lock_user(session, "tags", user)
    seed_portfolios = [b.portfolio_id for b in DEMO_BOOKS]
    seed_positions = [b.position_id(p) for b in DEMO_BOOKS for p in b.positions]
    seed_tags = [b.tag_id(n) for b in DEMO_BOOKS for n in b.tag_names]
    result = ResetResult()

    deleted = await session.execute(
        sa.text(
            "DELETE FROM ingest.position p USING ingest.portfolio pf WHERE p.portfolio_id = pf.id "
            "AND pf.user_id = ANY(CAST(:u AS uuid[])) AND p.id <> ALL(CAST(:keep AS uuid[])) RETURNING p.id"
        ),
        {"u": users, "keep": seed_positions},
    )
    result.removed_positions = len(deleted.all())
    doomed = [
        r[0]
        for r in await session.execute(
            sa.text(
                "SELECT id FROM ingest.portfolio WHERE user_id = ANY(CAST(:u AS uuid[])) "
                "AND id <> ALL(CAST(:keep AS uuid[])) ORDER BY created_at, id"
            ),
            {"u": users, "keep": seed_portfolios},
        )
    ]
    await _delete_user_artifacts(session, users)
    if doomed:
        await session.execute(sa.text("DELETE FROM ingest.portfolio WHERE id = ANY(CAST(:p AS uuid[]))"), {"p": doomed})
    result.removed_portfolios = doomed
    tags = await session.execute(
        sa.text(
            "DELETE FROM ingest.tag WHERE user_id = ANY(CAST(:u AS uuid[])) AND id <> ALL(CAST(:keep AS uuid[])) "
            "RETURNING id"
        ),
        {"u": users, "keep": seed_tags},
    )
    result.removed_tags = len(tags.all())
    for book in DEMO_BOOKS:
        await seed.upsert_book(session, book, restore=True)
    result.restored = (await seed.counts(session)).as_dict()

    events: list[Event] = [
        PortfolioUpdated(as_of=as_of, portfolio_id=pid, change="removed", trigger="demo_reset") for pid in doomed
    ]
    for book in DEMO_BOOKS:
        symbols = await repository.portfolio_symbols(session, book.portfolio_id)
        events.append(
            PortfolioUpdated(
                as_of=as_of, portfolio_id=book.portfolio_id, change="positions", symbols=symbols, trigger="demo_reset"
            )
        )
    log.info(
        "demo reset: removed %d portfolio(s), %d position(s), %d tag(s)",
        len(doomed),
        result.removed_positions,
        result.removed_tags,
    )
    return result, events
