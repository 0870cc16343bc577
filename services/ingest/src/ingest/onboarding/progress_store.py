"""Onboarding progress: the `ingest.onboarding_step` rows and the switch onboarding → active."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import Database
from ingest.onboarding.steps import StepState
from ingest.upload.bulk import from_json, to_json


async def steps(db: Database, portfolio_id: UUID) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT step, status, attempts, last_error, details, updated_at FROM ingest.onboarding_step "
        "WHERE portfolio_id = $1",
        portfolio_id,
    )
    return [{**dict(r), "details": from_json(r["details"])} for r in rows]


async def write_steps(
    session: AsyncSession, portfolio_id: UUID, states: Sequence[StepState], *, attempt: bool = True
) -> None:
    """Upsert collection-step states (attempts +1 when the step was (re)checked)."""
    for s in states:
        await session.execute(
            sa.text(
                """
                INSERT INTO ingest.onboarding_step (portfolio_id, step, status, attempts, last_error, details)
                VALUES (:p, :step, :status, :attempts, :err, CAST(:details AS jsonb))
                ON CONFLICT (portfolio_id, step) DO UPDATE
                SET status = EXCLUDED.status, attempts = ingest.onboarding_step.attempts + :inc,
                    last_error = EXCLUDED.last_error, details = EXCLUDED.details, updated_at = now()
                """
            ),
            {
                "p": portfolio_id,
                "step": s.step,
                "status": s.status,
                "attempts": 1 if attempt else 0,
                "inc": 1 if attempt else 0,
                "err": s.last_error,
                "details": to_json(s.details),
            },
        )


async def set_step(
    session: AsyncSession,
    portfolio_id: UUID,
    step: str,
    status: str,
    *,
    last_error: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Upsert one step's status (its details kept unless new ones are given)."""
    await session.execute(
        sa.text(
            """
            INSERT INTO ingest.onboarding_step (portfolio_id, step, status, last_error, details)
            VALUES (:p, :step, :status, :err, CAST(:details AS jsonb))
            ON CONFLICT (portfolio_id, step) DO UPDATE
            SET status = EXCLUDED.status, last_error = EXCLUDED.last_error,
                details = COALESCE(EXCLUDED.details, ingest.onboarding_step.details), updated_at = now()
            """
        ),
        {
            "p": portfolio_id,
            "step": step,
            "status": status,
            "err": last_error,
            "details": None if details is None else to_json(details),
        },
    )


async def mark_steps_running(session: AsyncSession, portfolio_id: UUID, names: Sequence[str]) -> None:
    await session.execute(
        sa.text(
            "UPDATE ingest.onboarding_step SET status = 'running', updated_at = now() "
            "WHERE portfolio_id = :p AND step = ANY(:steps)"
        ),
        {"p": portfolio_id, "steps": list(names)},
    )


async def activate(session: AsyncSession, portfolio_id: UUID) -> bool:
    """onboarding → active (onboarded_at now); False when the portfolio was not in onboarding."""
    row = (
        await session.execute(
            sa.text(
                "UPDATE ingest.portfolio SET status = 'active', onboarded_at = now(), updated_at = now() "
                "WHERE id = :p AND status = 'onboarding' AND deleted_at IS NULL RETURNING id"
            ),
            {"p": portfolio_id},
        )
    ).first()
    return row is not None
