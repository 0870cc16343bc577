"""SQL of `ingest.notification`: set-based writes inside the caller's transaction, reads on the pool.

Writes are one statement per batch (`unnest` arrays), idempotent on the natural key
(user_id, kind, subject). A write that creates a notification to be e-mailed also sends
`NOTIFY ingest_notification_mail`, which PostgreSQL delivers only after the transaction commits:
the mailer wakes for committed rows only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any
from uuid import UUID

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import Database
from common.formatting import json_default
from ingest.notifications.compose import Draft, Owner, UploadOutcome, unique

MAIL_CHANNEL = "ingest_notification_mail"

_INSERT = sa.text(
    """
    INSERT INTO ingest.notification
        (user_id, kind, subject, severity, title, message, portfolio_id, link, details, email_status,
         email_next_attempt_at)
    SELECT i.user_id, i.kind, i.subject, i.severity, i.title, i.message, i.portfolio_id, i.link,
           CAST(i.details AS jsonb), CAST(:email_status AS text),
           CASE WHEN CAST(:email_status AS text) = 'pending' THEN now() END
    FROM unnest(CAST(:user_ids AS uuid[]), CAST(:kinds AS text[]), CAST(:subjects AS text[]),
                CAST(:severities AS text[]), CAST(:titles AS text[]), CAST(:messages AS text[]),
                CAST(:portfolio_ids AS uuid[]), CAST(:links AS text[]), CAST(:details AS text[]))
         AS i(user_id, kind, subject, severity, title, message, portfolio_id, link, details)
    -- A portfolio removed since the draft was made (demo reset, archive) gets no notification.
    WHERE i.portfolio_id IS NULL OR EXISTS (SELECT 1 FROM ingest.portfolio p WHERE p.id = i.portfolio_id)
    ON CONFLICT ON CONSTRAINT notification_natural_key DO NOTHING
    RETURNING id
    """
)


async def insert_drafts(session: AsyncSession, drafts: Sequence[Draft], *, mail: bool) -> list[UUID]:
    """Store drafts not stored before (one statement); returns the ids of the new rows."""
    rows = unique(drafts)
    if not rows:
        return []
    result = await session.execute(
        _INSERT,
        {
            "email_status": "pending" if mail else "skipped",
            "user_ids": [d.user_id for d in rows],
            "kinds": [d.kind for d in rows],
            "subjects": [d.subject for d in rows],
            "severities": [d.severity for d in rows],
            "titles": [d.title for d in rows],
            "messages": [d.message for d in rows],
            "portfolio_ids": [d.portfolio_id for d in rows],
            "links": [d.link for d in rows],
            "details": [orjson.dumps(d.details, default=json_default).decode() for d in rows],
        },
    )
    created = [UUID(str(r[0])) for r in result.all()]
    if created and mail:
        await session.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": MAIL_CHANNEL})
    return created


# ---------------------------------------------------------------------------------- state the drafts need


async def owners(session: AsyncSession, portfolio_ids: Sequence[UUID]) -> dict[UUID, Owner]:
    """Live portfolios among `portfolio_ids` with their users (one statement)."""
    if not portfolio_ids:
        return {}
    rows = await session.execute(
        sa.text(
            "SELECT id, user_id, name FROM ingest.portfolio WHERE id = ANY(CAST(:ids AS uuid[])) AND deleted_at IS NULL"
        ),
        {"ids": list(set(portfolio_ids))},
    )
    return {r.id: Owner(r.id, r.user_id, r.name) for r in rows}


async def awaiting_first_snapshot(session: AsyncSession, snapshots: dict[UUID, date]) -> dict[UUID, Owner]:
    """Portfolios whose onboarding is completed by this snapshot: onboarded through #62 (they have the
    `first_snapshot` onboarding step), no earlier snapshot stored, not notified yet. One statement."""
    if not snapshots:
        return {}
    rows = await session.execute(
        sa.text(
            """
            SELECT p.id, p.user_id, p.name
            FROM unnest(CAST(:ids AS uuid[]), CAST(:dates AS date[])) AS e(portfolio_id, snapshot_date)
            JOIN ingest.portfolio p ON p.id = e.portfolio_id AND p.deleted_at IS NULL AND p.onboarded_at IS NOT NULL
            WHERE EXISTS (SELECT 1 FROM ingest.onboarding_step s
                          WHERE s.portfolio_id = p.id AND s.step = 'first_snapshot')
              AND NOT EXISTS (SELECT 1 FROM ingest.notification n
                              WHERE n.user_id = p.user_id AND n.kind = 'onboarding_completed'
                                AND n.subject = p.id::text)
              AND NOT EXISTS (SELECT 1 FROM stress.api_snapshot s
                              WHERE s.portfolio_id = p.id AND s.snapshot_date < e.snapshot_date)
            """
        ),
        {"ids": list(snapshots), "dates": list(snapshots.values())},
    )
    return {r.id: Owner(r.id, r.user_id, r.name) for r in rows}


async def upload_outcome(session: AsyncSession, upload_id: UUID) -> UploadOutcome | None:
    """The finished upload as this transaction sees it, with its target portfolio's name."""
    row = (
        await session.execute(
            sa.text(
                "SELECT u.id, u.user_id, u.mode, u.status, u.file_name, u.portfolio_id, p.name AS portfolio_name, "
                "u.error_count, u.error_code, u.error_message, u.retryable "
                "FROM ingest.upload u LEFT JOIN ingest.portfolio p ON p.id = u.portfolio_id WHERE u.id = :id"
            ),
            {"id": upload_id},
        )
    ).first()
    if row is None:
        return None
    return UploadOutcome(
        upload_id=row.id,
        user_id=row.user_id,
        mode=row.mode,
        status=row.status,
        file_name=row.file_name,
        portfolio_id=row.portfolio_id,
        portfolio_name=row.portfolio_name,
        error_count=row.error_count,
        error_code=row.error_code,
        error_message=row.error_message,
        retryable=row.retryable,
    )


# ---------------------------------------------------------------------------------- the API


COLUMNS = (
    "id, kind, severity, title, message, portfolio_id, link, details, read_at, email_status, email_sent_at, created_at"
)


async def list_for_user(
    db: Database, user_id: UUID, *, unread_only: bool, kinds: Sequence[str], limit: int, offset: int
) -> tuple[list[dict[str, Any]], int, int]:
    """A page of the user's notifications, newest first; (rows, total matching, unread overall)."""
    where = ["user_id = $1"]
    args: list[Any] = [user_id]
    if unread_only:
        where.append("read_at IS NULL")
    if kinds:
        args.append(list(kinds))
        where.append(f"kind = ANY(${len(args)}::text[])")
    condition = " AND ".join(where)
    counts = await db.fetchrow(
        f"SELECT count(*) FILTER (WHERE {condition}) AS total, count(*) FILTER (WHERE read_at IS NULL) AS unread "
        "FROM ingest.notification WHERE user_id = $1",
        *args,
    )
    args.extend([limit, offset])
    rows = await db.fetch(
        f"SELECT {COLUMNS} FROM ingest.notification WHERE {condition} "
        f"ORDER BY created_at DESC, id DESC LIMIT ${len(args) - 1} OFFSET ${len(args)}",
        *args,
    )
    total = int(counts["total"]) if counts else 0
    unread = int(counts["unread"]) if counts else 0
    return [dict(r) for r in rows], total, unread


async def mark_read(session: AsyncSession, user_id: UUID, notification_id: UUID) -> dict[str, Any] | None:
    """Mark one of the user's notifications read (kept as first read); None when it is not theirs."""
    row = (
        (
            await session.execute(
                sa.text(
                    "UPDATE ingest.notification SET read_at = COALESCE(read_at, now()), updated_at = now() "
                    f"WHERE id = :id AND user_id = :user_id RETURNING {COLUMNS}"
                ),
                {"id": notification_id, "user_id": user_id},
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


async def mark_all_read(session: AsyncSession, user_id: UUID) -> int:
    """Mark every unread notification of the user read; returns how many changed."""
    result = await session.execute(
        sa.text(
            "UPDATE ingest.notification SET read_at = now(), updated_at = now() "
            "WHERE user_id = :user_id AND read_at IS NULL"
        ),
        {"user_id": user_id},
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def delete_for_users(session: AsyncSession, user_ids: Sequence[UUID]) -> None:
    """Demo reset: forget the demo users' notifications."""
    await session.execute(
        sa.text("DELETE FROM ingest.notification WHERE user_id = ANY(CAST(:u AS uuid[]))"), {"u": list(user_ids)}
    )


async def purge_older_than(session: AsyncSession, days: int) -> int:
    """Retention: delete notifications created more than `days` ago."""
    result = await session.execute(
        sa.text("DELETE FROM ingest.notification WHERE created_at < now() - make_interval(days => :days)"),
        {"days": days},
    )
    return int(getattr(result, "rowcount", 0) or 0)
