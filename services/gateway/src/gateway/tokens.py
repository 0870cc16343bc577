"""Access-token verification with a bounded LRU cache, and opaque refresh tokens (api.md §2.2)."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from common.auth import Principal, bearer_token, verify_access_token
from common.errors import ApiError

REFRESH_PREFIX = "rt_"


@dataclass(frozen=True, slots=True)
class Verified:
    """A verified access token: who, until when, and its `jti` (links it to its login).

    The identity header values are rendered once per token, not once per request."""

    principal: Principal
    expires_at: float
    jti: str | None
    user_id: str
    identity_headers: tuple[tuple[bytes, bytes], tuple[bytes, bytes]]


def token_expired() -> ApiError:
    """401 TOKEN_EXPIRED (same body as common.auth's)."""
    return ApiError(
        "Access token expired; call POST /api/v1/auth/refresh",
        code="TOKEN_EXPIRED",
        status=401,
        hint="POST /api/v1/auth/refresh",
    )


class TokenVerifier:
    """Verifies HS256 access tokens once and caches the result until the token expires.

    The cache is an LRU bounded to `max_entries`; a hit costs a dict probe and a clock read.
    Failures are not cached (they raise and cost one verification each).
    """

    def __init__(self, secret: str, *, max_entries: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self.secret = secret
        self.max_entries = max_entries
        self.clock = clock
        self._cache: OrderedDict[str, Verified] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cache)

    def verify_header(self, authorization: str | None) -> Verified:
        """Verify an `Authorization: Bearer …` header value (401 on any problem)."""
        return self.verify(bearer_token(authorization))

    def verify(self, token: str) -> Verified:
        """Verify a bearer token (401 UNAUTHENTICATED / TOKEN_EXPIRED)."""
        cache = self._cache
        hit = cache.get(token)
        if hit is not None:
            if self.clock() < hit.expires_at:
                cache.move_to_end(token)
                return hit
            del cache[token]
            raise token_expired()
        principal = verify_access_token(token, self.secret)
        # The signature was just checked; read exp/jti without verifying twice.
        claims = jwt.decode(token, options={"verify_signature": False})
        user_id = str(principal.user_id)
        verified = Verified(
            principal,
            float(claims["exp"]),
            str(claims["jti"]) if claims.get("jti") else None,
            user_id,
            ((b"x-user-id", user_id.encode()), (b"x-user-role", principal.role.encode())),
        )
        cache[token] = verified
        if len(cache) > self.max_entries:
            cache.popitem(last=False)
        return verified


def new_refresh_token() -> str:
    """An opaque refresh token: `rt_` + 256 random bits (URL-safe)."""
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


def refresh_token_hash(token: str) -> bytes:
    """SHA-256 of the token (only the hash is stored)."""
    return hashlib.sha256(token.encode("utf-8")).digest()
