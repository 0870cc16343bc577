"""Idempotency keys (api.md §2.10): (user, key) → request hash, state and stored response for 24 h."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson

from common.db import Database
from gateway import repository
from gateway.errors import IdempotencyInProgress, IdempotencyKeyReused

TTL_SECONDS = 24 * 3600
# An in-progress record older than this belongs to a request that died (upstream timeout is 30 s);
# a retry of the same request may take it over.
STALE_AFTER_SECONDS = 120
# Largest response stored for replay; a bigger one is released so that a retry runs again.
MAX_STORED_BYTES = 1024 * 1024
# Response headers a replay repeats.
REPLAYED_HEADERS = ("content-type", "location", "retry-after", "content-disposition", "cache-control")


@dataclass(frozen=True, slots=True)
class Replay:
    """A stored response to send again."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class IdempotencyStore:
    """Claims keys before forwarding, stores responses after, replays them on repeats."""

    def __init__(self, db: Database, *, ttl_seconds: int = TTL_SECONDS) -> None:
        self.db = db
        self.ttl_seconds = ttl_seconds

    async def begin(self, *, user_id: UUID, key: str, method: str, route: str, request_hash: bytes) -> Replay | None:
        """None = go ahead (the key is now in progress); a Replay = answer with it; 409 otherwise."""
        async with self.db.transaction() as session:
            claimed = await repository.claim_idempotency_key(
                session,
                user_id=user_id,
                key=key,
                method=method,
                route=route,
                request_hash=request_hash,
                ttl_seconds=self.ttl_seconds,
                stale_after_seconds=STALE_AFTER_SECONDS,
            )
            if claimed:
                return None
            row = await repository.get_idempotency_key(session, user_id=user_id, key=key)
        if row is None:  # deleted between the two statements: the caller may retry at once
            raise IdempotencyInProgress()
        if bytes(row["request_hash"]) != request_hash:
            raise IdempotencyKeyReused()
        if row["state"] != "done":
            raise IdempotencyInProgress()
        return self._replay(row)

    @staticmethod
    def _replay(row: dict[str, Any]) -> Replay:
        stored_headers: dict[str, str] = row.get("response_headers") or {}
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored_headers.items()]
        headers.append((b"idempotent-replayed", b"true"))
        if row.get("response_bytes") is not None:
            body = bytes(row["response_bytes"])
        elif row.get("response_body") is not None:
            body = orjson.dumps(row["response_body"])
        else:
            body = b""
        return Replay(int(row["response_status"]), headers, body)

    async def complete(
        self, *, user_id: UUID, key: str, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        """Store a finished response, or release the key when it must not be replayed."""
        if status >= 500 or status == 429 or len(body) > MAX_STORED_BYTES:
            await self.release(user_id=user_id, key=key)
            return
        kept = {}
        content_type = ""
        for name, value in headers:
            lname = name.decode("latin-1").lower()
            if lname in REPLAYED_HEADERS:
                kept[lname] = value.decode("latin-1")
                if lname == "content-type":
                    content_type = kept[lname]
        body_json: Any = None
        body_bytes: bytes | None = None
        if body and "json" in content_type:
            try:
                body_json = orjson.loads(body)
            except orjson.JSONDecodeError:
                body_bytes = body
        elif body:
            body_bytes = body
        async with self.db.transaction() as session:
            await repository.complete_idempotency_key(
                session,
                user_id=user_id,
                key=key,
                status=status,
                body_json=body_json,
                body_bytes=body_bytes,
                headers=kept,
            )

    async def release(self, *, user_id: UUID, key: str) -> None:
        """Drop an in-progress claim (the request failed before a storable outcome)."""
        async with self.db.transaction() as session:
            await repository.release_idempotency_key(session, user_id=user_id, key=key)
