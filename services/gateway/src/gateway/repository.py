"""Database access of the gateway: its own tables, plus `ingest.api_portfolio` (read-only contract)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import activity_log, app_user, idempotency_key, refresh_token

_USER_COLUMNS = (
    app_user.c.id,
    app_user.c.email,
    app_user.c.username,
    app_user.c.password_hash,
    app_user.c.full_name,
    app_user.c.role,
    app_user.c.is_active,
    app_user.c.is_demo,
    app_user.c.last_login_at,
    app_user.c.created_at,
)


def _email_key(email: str) -> sa.ColumnElement[bool]:
    # Matches the unique index on lower(email::text) whether the column is citext or text.
    return sa.func.lower(sa.cast(app_user.c.email, sa.Text)) == email.strip().lower()


# ---- users -------------------------------------------------------------------------------------


async def find_user_by_email(session: AsyncSession, *, email: str) -> dict[str, Any] | None:
    """The user with this email (case-insensitive), or None."""
    row = (await session.execute(sa.select(*_USER_COLUMNS).where(_email_key(email)))).mappings().first()
    return dict(row) if row else None


async def get_user(session: AsyncSession, *, user_id: UUID) -> dict[str, Any] | None:
    """The user with this id, or None."""
    row = (await session.execute(sa.select(*_USER_COLUMNS).where(app_user.c.id == user_id))).mappings().first()
    return dict(row) if row else None


async def record_login(session: AsyncSession, *, user_id: UUID) -> datetime:
    """Set last_login_at = now(); returns it."""
    stmt = (
        sa.update(app_user)
        .where(app_user.c.id == user_id)
        .values(last_login_at=sa.func.now())
        .returning(app_user.c.last_login_at)
    )
    value: datetime = (await session.execute(stmt)).scalar_one()
    return value


async def insert_user(
    session: AsyncSession,
    *,
    user_id: UUID,
    email: str,
    username: str | None,
    password_hash: str,
    full_name: str,
    role: str,
    is_demo: bool,
) -> None:
    """Create a user (seed); no-op when the email or id already exists."""
    await session.execute(
        pg.insert(app_user)
        .values(
            id=user_id,
            email=email,
            username=username,
            password_hash=password_hash,
            full_name=full_name,
            role=role,
            is_demo=is_demo,
        )
        # A concurrent seed that created the same user first wins (unique email).
        .on_conflict_do_nothing()
    )


async def update_user(session: AsyncSession, *, user_id: UUID, values: dict[str, Any]) -> None:
    """Update seeded attributes of a user (and updated_at)."""
    await session.execute(
        sa.update(app_user).where(app_user.c.id == user_id).values(**values, updated_at=sa.func.now())
    )


# ---- portfolios (ingest's published view) ------------------------------------------------------

_PORTFOLIOS_SQL = sa.text(
    """
    SELECT id, name, is_default, status, equity, valued_at
    FROM ingest.api_portfolio
    WHERE user_id = :user_id
    ORDER BY is_default DESC, created_at, name, id
    """
)


# Business date of the equity: the latest valuation date of the portfolio's positions.
_PORTFOLIOS_VALUED_SQL = sa.text(
    """
    SELECT p.id, p.name, p.is_default, p.status, p.equity, p.valued_at,
           (SELECT max(v.valuation_date) FROM ingest.api_position_valuation v WHERE v.portfolio_id = p.id)
               AS valuation_date
    FROM ingest.api_portfolio p
    WHERE p.user_id = :user_id
    ORDER BY p.is_default DESC, p.created_at, p.name, p.id
    """
)


async def user_portfolios(session: AsyncSession, *, user_id: UUID, valuation: bool = False) -> list[dict[str, Any]]:
    """The user's live portfolios from `ingest.api_portfolio`, default first (with the latest
    `valuation_date` from `ingest.api_position_valuation` when asked)."""
    query = _PORTFOLIOS_VALUED_SQL if valuation else _PORTFOLIOS_SQL
    rows = (await session.execute(query, {"user_id": user_id})).mappings().all()
    return [dict(r) for r in rows]


# ---- notifications (ingest's published view) ---------------------------------------------------

# The unread count and the newest few in one round trip (both served by ingest's indexes on user_id).
_NOTIFICATIONS_SQL = sa.text(
    """
    SELECT c.unread, n.id, n.kind, n.severity, n.title, n.portfolio_id, n.link, n.read_at, n.created_at
    FROM (SELECT count(*) AS unread FROM ingest.api_notification
          WHERE user_id = :user_id AND read_at IS NULL) c
    LEFT JOIN LATERAL (
        SELECT id, kind, severity, title, portfolio_id, link, read_at, created_at
        FROM ingest.api_notification
        WHERE user_id = :user_id
        ORDER BY created_at DESC, id DESC
        LIMIT :limit
    ) n ON true
    """
)


async def user_notifications(session: AsyncSession, *, user_id: UUID, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """(unread count, the newest `limit` notifications) from `ingest.api_notification`."""
    rows = (await session.execute(_NOTIFICATIONS_SQL, {"user_id": user_id, "limit": limit})).mappings().all()
    unread = int(rows[0]["unread"]) if rows else 0
    return unread, [dict(r) for r in rows if r["id"] is not None]


# ---- refresh tokens ----------------------------------------------------------------------------


async def insert_refresh_token(
    session: AsyncSession,
    *,
    user_id: UUID,
    family_id: UUID,
    token_hash: bytes,
    ttl_seconds: int,
    access_jti: str | None,
    ip: Any,
    user_agent: str | None,
) -> UUID:
    """Store a new refresh token (hash only); returns its id."""
    stmt = (
        pg.insert(refresh_token)
        .values(
            user_id=user_id,
            family_id=family_id,
            token_hash=token_hash,
            expires_at=sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, ttl_seconds),
            access_jti=access_jti,
            ip=ip,
            user_agent=user_agent,
        )
        .returning(refresh_token.c.id)
    )
    token_id: UUID = (await session.execute(stmt)).scalar_one()
    return token_id


async def lock_refresh_token(session: AsyncSession, *, token_hash: bytes) -> dict[str, Any] | None:
    """The token row (locked for this transaction) with `expired` computed by the database clock."""
    stmt = (
        sa.select(
            refresh_token.c.id,
            refresh_token.c.user_id,
            refresh_token.c.family_id,
            refresh_token.c.used_at,
            refresh_token.c.revoked_at,
            (refresh_token.c.expires_at <= sa.func.now()).label("expired"),
        )
        .where(refresh_token.c.token_hash == token_hash)
        .with_for_update()
    )
    row = (await session.execute(stmt)).mappings().first()
    return dict(row) if row else None


async def mark_refresh_used(session: AsyncSession, *, token_id: UUID, replaced_by: UUID) -> None:
    """Rotation: the old token is used and points at its successor."""
    await session.execute(
        sa.update(refresh_token)
        .where(refresh_token.c.id == token_id)
        .values(used_at=sa.func.now(), replaced_by=replaced_by)
    )


async def revoke_families(session: AsyncSession, *, family_ids: Sequence[UUID]) -> int:
    """Revoke every still-valid token of these families; returns how many were revoked."""
    if not family_ids:
        return 0
    result = await session.execute(
        sa.update(refresh_token)
        .where(refresh_token.c.family_id.in_(list(family_ids)), refresh_token.c.revoked_at.is_(None))
        .values(revoked_at=sa.func.now())
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def families_for_logout(
    session: AsyncSession, *, user_id: UUID, access_jti: str | None, token_hash: bytes | None
) -> list[UUID]:
    """Families of this login: the one issued with the access token, and the presented refresh
    token's (only when it belongs to the same user)."""
    conditions = []
    if access_jti:
        conditions.append(refresh_token.c.access_jti == access_jti)
    if token_hash is not None:
        conditions.append(refresh_token.c.token_hash == token_hash)
    if not conditions:
        return []
    stmt = (
        sa.select(refresh_token.c.family_id).where(refresh_token.c.user_id == user_id, sa.or_(*conditions)).distinct()
    )
    return list((await session.execute(stmt)).scalars().all())


async def purge_refresh_tokens(session: AsyncSession, *, grace_days: int = 7) -> int:
    """Delete tokens expired more than `grace_days` ago (data-model §11)."""
    # Successors reference their predecessors; clear links into the rows about to go first.
    doomed = sa.select(refresh_token.c.id).where(
        refresh_token.c.expires_at < sa.func.now() - sa.func.make_interval(0, 0, 0, grace_days)
    )
    await session.execute(
        sa.update(refresh_token).where(refresh_token.c.replaced_by.in_(doomed)).values(replaced_by=None)
    )
    result = await session.execute(sa.delete(refresh_token).where(refresh_token.c.id.in_(doomed)))
    return int(getattr(result, "rowcount", 0) or 0)


# ---- idempotency keys --------------------------------------------------------------------------


async def claim_idempotency_key(
    session: AsyncSession,
    *,
    user_id: UUID,
    key: str,
    method: str,
    route: str,
    request_hash: bytes,
    ttl_seconds: int,
    stale_after_seconds: int,
) -> bool:
    """Insert (user, key) as in progress; take over an expired row, or a same-request row whose first
    attempt died. False when another live row holds the key."""
    insert = pg.insert(idempotency_key).values(
        user_id=user_id,
        key=key,
        method=method,
        route=route,
        request_hash=request_hash,
        state="in_progress",
        created_at=sa.func.now(),
        expires_at=sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, ttl_seconds),
    )
    existing = idempotency_key
    stmt = insert.on_conflict_do_update(
        index_elements=[existing.c.user_id, existing.c.key],
        set_={
            "method": insert.excluded.method,
            "route": insert.excluded.route,
            "request_hash": insert.excluded.request_hash,
            "state": "in_progress",
            "response_status": None,
            "response_body": None,
            "response_headers": None,
            "response_bytes": None,
            "created_at": sa.func.now(),
            "expires_at": insert.excluded.expires_at,
        },
        where=sa.or_(
            existing.c.expires_at <= sa.func.now(),
            sa.and_(
                existing.c.state == "in_progress",
                existing.c.request_hash == insert.excluded.request_hash,
                existing.c.created_at < sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, stale_after_seconds),
            ),
        ),
    ).returning(existing.c.key)
    return (await session.execute(stmt)).first() is not None


async def get_idempotency_key(session: AsyncSession, *, user_id: UUID, key: str) -> dict[str, Any] | None:
    """The stored record of (user, key)."""
    stmt = sa.select(idempotency_key).where(idempotency_key.c.user_id == user_id, idempotency_key.c.key == key)
    row = (await session.execute(stmt)).mappings().first()
    return dict(row) if row else None


async def complete_idempotency_key(
    session: AsyncSession,
    *,
    user_id: UUID,
    key: str,
    status: int,
    body_json: Any,
    body_bytes: bytes | None,
    headers: dict[str, str],
) -> None:
    """Store the response of a finished request."""
    await session.execute(
        sa.update(idempotency_key)
        .where(idempotency_key.c.user_id == user_id, idempotency_key.c.key == key)
        .values(
            state="done",
            response_status=status,
            response_body=body_json,
            response_bytes=body_bytes,
            response_headers=headers,
        )
    )


async def release_idempotency_key(session: AsyncSession, *, user_id: UUID, key: str) -> None:
    """Forget a key whose request did not run to a storable outcome (so a retry may run it)."""
    await session.execute(
        sa.delete(idempotency_key).where(
            idempotency_key.c.user_id == user_id,
            idempotency_key.c.key == key,
            idempotency_key.c.state == "in_progress",
        )
    )


async def purge_idempotency_keys(session: AsyncSession) -> int:
    """Delete expired keys (kept 24 h)."""
    result = await session.execute(sa.delete(idempotency_key).where(idempotency_key.c.expires_at <= sa.func.now()))
    return int(getattr(result, "rowcount", 0) or 0)


# ---- activity log ------------------------------------------------------------------------------


async def insert_activity(session: AsyncSession, *, rows: Sequence[dict[str, Any]]) -> None:
    """Append activity rows (one multi-row statement)."""
    if rows:
        await session.execute(sa.insert(activity_log), list(rows))


async def ensure_activity_partitions(session: AsyncSession, *, retention_days: int = 90) -> list[tuple[str, str]]:
    """Create this and next month's partitions, drop those past retention; returns the changes."""
    rows = await session.execute(
        sa.text("SELECT change, partition_name FROM gateway.ensure_activity_partitions(:days)"),
        {"days": retention_days},
    )
    return [(r.change, r.partition_name) for r in rows]
