"""Authentication use cases (#1-#4): login, refresh-token rotation, logout, who-am-I."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import jwt

from common.auth import Principal, issue_access_token
from common.db import Database
from common.errors import RateLimited, Unauthenticated
from common.formatting import iso_datetime, money
from gateway import repository
from gateway.compute import parse_ip
from gateway.errors import AccountDisabled, InvalidCredentials, InvalidRefreshToken
from gateway.passwords import PasswordHasher
from gateway.ratelimit import Decision, SlidingWindowLimiter
from gateway.tokens import new_refresh_token, refresh_token_hash

log = logging.getLogger(__name__)

EASTERN = ZoneInfo("America/New_York")
# Notifications shown in /auth/me (newest first); the rest are paged by GET /api/v1/notifications.
LATEST_NOTIFICATIONS = 5


@dataclass
class ClientInfo:
    """Who is calling, as far as the edge knows (for throttling and the activity log)."""

    ip: str | None = None
    user_agent: str | None = None


@dataclass
class Outcome:
    """A use case's response body plus what the activity log and headers need."""

    body: dict[str, Any]
    user_id: UUID | None = None
    rate: Decision | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _portfolio_ref(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(row["id"]), "name": row["name"], "is_default": bool(row["is_default"]), "status": row["status"]}


def _notification_ref(row: dict[str, Any]) -> dict[str, Any]:
    """A notification as listed in /auth/me (the full one: GET /api/v1/notifications)."""
    return {
        "id": str(row["id"]),
        "kind": row["kind"],
        "severity": row["severity"],
        "title": row["title"],
        "portfolio_id": None if row["portfolio_id"] is None else str(row["portfolio_id"]),
        "link": row["link"],
        "read": row["read_at"] is not None,
        "created_at": iso_datetime(row["created_at"]),
    }


def _as_of(value: Any) -> str | None:
    """Business date of a valuation: a date as is; a timestamp (no valuation row yet) as its
    US/Eastern calendar date."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(EASTERN).date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class AuthService:
    """Users, passwords, access tokens and rotating refresh tokens."""

    def __init__(
        self,
        db: Database,
        *,
        jwt_secret: str,
        access_ttl_seconds: int,
        refresh_ttl_seconds: int,
        hasher: PasswordHasher,
        login_limiter: SlidingWindowLimiter,
        user_limiter: SlidingWindowLimiter,
    ) -> None:
        self.db = db
        self.jwt_secret = jwt_secret
        self.access_ttl = access_ttl_seconds
        self.refresh_ttl = refresh_ttl_seconds
        self.hasher = hasher
        self.login_limiter = login_limiter
        self.user_limiter = user_limiter

    def _tokens(self, principal: Principal, refresh: str) -> tuple[dict[str, Any], str]:
        access = issue_access_token(principal, self.jwt_secret, self.access_ttl)
        jti = str(jwt.decode(access, options={"verify_signature": False})["jti"])
        body = {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": self.access_ttl,
            "refresh_token": refresh,
            "refresh_expires_in": self.refresh_ttl,
        }
        return body, jti

    async def login(self, email: str, password: str, client: ClientInfo) -> Outcome:
        """#1: verify the password (constant-time-ish for unknown emails) and open a token family."""
        normalized = email.strip().lower()
        decision = self.login_limiter.hit((client.ip, normalized))
        if not decision.allowed:
            raise RateLimited(
                "Too many login attempts; wait before trying again",
                headers=decision.header_dict(),
            )
        async with self.db.session() as session:
            user = await repository.find_user_by_email(session, email=normalized)
        if user is None:
            await self.hasher.verify(password, await self.hasher.dummy_hash())
            raise InvalidCredentials(headers=decision.header_dict())
        if not await self.hasher.verify(password, user["password_hash"]):
            raise InvalidCredentials(user_id=user["id"], headers=decision.header_dict())
        if not user["is_active"]:
            raise AccountDisabled(user_id=user["id"], headers=decision.header_dict())
        principal = Principal(user_id=user["id"], email=str(user["email"]), role=user["role"])
        refresh = new_refresh_token()
        tokens, jti = self._tokens(principal, refresh)
        async with self.db.transaction() as session:
            await repository.record_login(session, user_id=user["id"])
            await repository.insert_refresh_token(
                session,
                user_id=user["id"],
                family_id=uuid.uuid4(),
                token_hash=refresh_token_hash(refresh),
                ttl_seconds=self.refresh_ttl,
                access_jti=jti,
                ip=parse_ip(client.ip),
                user_agent=(client.user_agent or "")[:512] or None,
            )
            portfolios = await repository.user_portfolios(session, user_id=user["id"])
        tokens["user"] = {
            "id": str(user["id"]),
            "email": str(user["email"]),
            "full_name": user["full_name"],
            "role": user["role"],
            "is_demo": bool(user["is_demo"]),
            "portfolios": [_portfolio_ref(p) for p in portfolios],
        }
        return Outcome(tokens, user_id=user["id"], rate=decision)

    async def refresh(self, token: str, client: ClientInfo) -> Outcome:
        """#2: single-use rotation; a reused token revokes its whole family (theft detection)."""
        reused = disabled = False
        decision: Decision | None = None
        async with self.db.transaction() as session:
            row = await repository.lock_refresh_token(session, token_hash=refresh_token_hash(token))
            if row is None or row["revoked_at"] is not None or row["expired"]:
                raise InvalidRefreshToken()
            user = await repository.get_user(session, user_id=row["user_id"])
            if user is None:
                raise InvalidRefreshToken()
            if row["used_at"] is not None:
                # Committed before answering 401: the family stays revoked.
                reused = True
                revoked = await repository.revoke_families(session, family_ids=[row["family_id"]])
                log.warning(
                    "refresh token reuse for user %s: family %s revoked (%d tokens)",
                    row["user_id"],
                    row["family_id"],
                    revoked,
                )
            elif not user["is_active"]:
                disabled = True
                await repository.revoke_families(session, family_ids=[row["family_id"]])
            else:
                decision = self.user_limiter.hit(user["id"])
                if not decision.allowed:
                    raise RateLimited("Rate limit exceeded; retry later", headers=decision.header_dict())
                principal = Principal(user_id=user["id"], email=str(user["email"]), role=user["role"])
                new_token = new_refresh_token()
                tokens, jti = self._tokens(principal, new_token)
                new_id = await repository.insert_refresh_token(
                    session,
                    user_id=user["id"],
                    family_id=row["family_id"],
                    token_hash=refresh_token_hash(new_token),
                    ttl_seconds=self.refresh_ttl,
                    access_jti=jti,
                    ip=parse_ip(client.ip),
                    user_agent=(client.user_agent or "")[:512] or None,
                )
                await repository.mark_refresh_used(session, token_id=row["id"], replaced_by=new_id)
        if reused:
            raise InvalidRefreshToken(user_id=user["id"])
        if disabled:
            raise AccountDisabled(user_id=user["id"])
        return Outcome(tokens, user_id=user["id"], rate=decision)

    async def logout(self, principal: Principal, access_jti: str | None, refresh: str | None) -> int:
        """#4: revoke this login's token family (found through the access token's jti) and the
        presented refresh token's family when it is the caller's."""
        token_hash = refresh_token_hash(refresh) if refresh else None
        async with self.db.transaction() as session:
            families = await repository.families_for_logout(
                session, user_id=principal.user_id, access_jti=access_jti, token_hash=token_hash
            )
            return await repository.revoke_families(session, family_ids=families)

    async def me(self, principal: Principal) -> dict[str, Any]:
        """#3: the caller with their portfolios (equity and as-of) and their rate limit."""
        async with self.db.session() as session:
            user = await repository.get_user(session, user_id=principal.user_id)
            if user is None:
                raise Unauthenticated("The user of this token no longer exists")
            if not user["is_active"]:
                raise AccountDisabled()
            portfolios = await repository.user_portfolios(session, user_id=principal.user_id, valuation=True)
            unread, latest = await repository.user_notifications(
                session, user_id=principal.user_id, limit=LATEST_NOTIFICATIONS
            )
        return {
            "id": str(user["id"]),
            "email": str(user["email"]),
            "full_name": user["full_name"],
            "role": user["role"],
            "is_demo": bool(user["is_demo"]),
            "created_at": iso_datetime(user["created_at"]),
            "last_login_at": iso_datetime(user["last_login_at"]),
            "portfolios": [
                {
                    **_portfolio_ref(p),
                    "equity": money(p["equity"]),
                    "as_of": _as_of(p["valuation_date"] or p["valued_at"]),
                }
                for p in portfolios
            ],
            "rate_limit": {"limit": self.user_limiter.limit, "window_seconds": self.user_limiter.window},
            "notifications": {
                "unread_count": unread,
                "latest": [_notification_ref(n) for n in latest],
                "list_url": "/api/v1/notifications",
            },
        }
