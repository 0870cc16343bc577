"""Bus subscriptions and background loops of the notification part of ingest.

Consumer `ingest.notifications` (its own queues, api.md §5.1): the per-portfolio step events
(`greeks.computed`, `portfolio.updated`, `factors.computed`, `stress.computed`) for failed steps and
`snapshot.created` for failed snapshot steps and completed onboardings. All are batch
subscriptions, so a 1,000-portfolio cycle costs a handful of calls and no per-portfolio queries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from common.events import FactorsComputed, GreeksComputed, PortfolioUpdated, SnapshotCreated, StressComputed
from ingest.context import SERVICE, IngestContext
from ingest.notifications import service, store
from ingest.notifications.compose import StepEvent
from ingest.notifications.mailer import Mailer
from ingest.notifications.smtp import SmtpConfig

log = logging.getLogger(__name__)

CONSUMER = f"{SERVICE}.notifications"
STEP_EVENTS: tuple[type[StepEvent], ...] = (GreeksComputed, PortfolioUpdated, FactorsComputed, StressComputed)
PURGE_INTERVAL_SECONDS = 3600.0


def register(ctx: IngestContext) -> Mailer | None:
    """Subscribe the handlers; add the mailer (when configured) and the purge loop to the background."""
    mail = service.mail_enabled(ctx.settings)
    db = ctx.db

    async def on_step_events(events: Sequence[StepEvent]) -> None:
        await service.record_run_failures(db, events, mail=mail)

    async def on_snapshot_created(events: list[SnapshotCreated]) -> None:
        await service.record_snapshots(db, events, mail=mail)

    for event_type in STEP_EVENTS:
        ctx.bus.subscribe_batch(CONSUMER, event_type, on_step_events, max_batch=64, max_wait=0.05)
    ctx.bus.subscribe_batch(CONSUMER, SnapshotCreated, on_snapshot_created, max_batch=64, max_wait=0.05)

    retention_days = ctx.settings.notification_retention_days

    async def purge_forever() -> None:
        """Delete notifications past their retention, hourly."""
        while True:
            try:
                async with db.transaction() as session:
                    purged = await store.purge_older_than(session, retention_days)
                if purged:
                    log.info("purged %d notification(s) older than %d days", purged, retention_days)
            except Exception as exc:
                log.warning("notification purge failed: %s", exc)
            await asyncio.sleep(PURGE_INTERVAL_SECONDS)

    ctx.background.append(purge_forever)
    if not mail:
        return None
    assert ctx.settings.smtp_url is not None
    # A malformed SMTP_URL stops the service at start-up (SmtpUrlError) instead of failing every e-mail.
    mailer = Mailer(db, SmtpConfig.from_url(ctx.settings.smtp_url), ctx.settings.smtp_from)
    ctx.background.append(mailer.run_forever)
    return mailer
