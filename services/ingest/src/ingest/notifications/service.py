"""Creating notifications from run events, finished uploads and the onboarding job.

Bus handlers receive batches and cost nothing when no step failed (the filter is in memory); with
failures or snapshots to check, a batch costs one read and one insert. Upload and onboarding hooks
run in (or right after) the transaction that records the outcome, so the notification commits with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from common.db import Database, reraise_transient
from common.events import SnapshotCreated
from common.jobs import JobOutcome
from ingest.notifications import store
from ingest.notifications.compose import (
    Draft,
    StepEvent,
    failed_steps,
    onboarding_completed_draft,
    onboarding_stalled_draft,
    run_failure_drafts,
    stored_snapshots,
    upload_outcome_draft,
)
from ingest.settings import Settings


def mail_enabled(settings: Settings) -> bool:
    """E-mail goes out only when SMTP_URL is set."""
    return bool(settings.smtp_url)


async def _drafts_for_failures(session: AsyncSession, events: Sequence[StepEvent]) -> list[Draft]:
    failures = failed_steps(events)
    if not failures:
        return []
    owners = await store.owners(session, [f.portfolio_id for f in failures])
    return run_failure_drafts(failures, owners)


async def record_run_failures(db: Database, events: Sequence[StepEvent], *, mail: bool) -> list[UUID]:
    """`run_failed` notifications for every step of `events` reported failed (batch handler)."""
    if not failed_steps(events):
        return []
    try:
        async with db.transaction() as session:
            drafts = await _drafts_for_failures(session, events)
            return await store.insert_drafts(session, drafts, mail=mail)
    except Exception as exc:
        reraise_transient(exc)
        raise


async def record_snapshots(db: Database, events: Sequence[SnapshotCreated], *, mail: bool) -> list[UUID]:
    """A failed snapshot step → `run_failed`; the first stored snapshot of an onboarded portfolio →
    `onboarding_completed` (api.md §6 row 13: snapshot.created is the hook)."""
    snapshots = stored_snapshots(events)
    if not snapshots and not failed_steps(events):
        return []
    try:
        async with db.transaction() as session:
            drafts = await _drafts_for_failures(session, events)
            ready = await store.awaiting_first_snapshot(session, snapshots)
            drafts += [onboarding_completed_draft(owner, snapshots[pid]) for pid, owner in ready.items()]
            return await store.insert_drafts(session, drafts, mail=mail)
    except Exception as exc:
        reraise_transient(exc)
        raise


async def record_upload_outcome(session: AsyncSession, upload_id: UUID, *, mail: bool) -> list[UUID]:
    """Inside the transaction that finished the upload: a rejected or failed upload notifies its user."""
    outcome = await store.upload_outcome(session, upload_id)
    draft = None if outcome is None else upload_outcome_draft(outcome)
    if draft is None:
        return []
    return await store.insert_drafts(session, [draft], mail=mail)


async def record_onboarding_outcome(db: Database, portfolio_id: UUID, outcome: JobOutcome, *, mail: bool) -> list[UUID]:
    """The onboarding.complete job ended without a first snapshot → `onboarding_failed` (a later first
    snapshot still brings `onboarding_completed`)."""
    if outcome.status == "completed":
        return []
    async with db.transaction() as session:
        owner = (await store.owners(session, [portfolio_id])).get(portfolio_id)
        if owner is None:
            return []
        return await store.insert_drafts(session, [onboarding_stalled_draft(owner, outcome.result or {})], mail=mail)
