"""Identifier helpers: job ids (`<svc>_<uuid>`), request ids and deterministic demo ids."""

from __future__ import annotations

import re
import uuid
from uuid import UUID

from ulid import ULID

JOB_PREFIXES: dict[str, str] = {
    "ingest": "ing",
    "marketdata": "mkt",
    "greeks": "grk",
    "factors": "fac",
    "stress": "str",
}
PREFIX_SERVICES: dict[str, str] = {v: k for k, v in JOB_PREFIXES.items()}

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Namespace for ids that must be equal across services without a lookup (demo users, seed rows).
SIGMASIGHT_NAMESPACE = UUID("6f1c2d3e-8a4b-4c5d-9e0f-a1b2c3d4e5f6")


def job_id(service: str, ident: UUID) -> str:
    """Public job id: `<svc prefix>_<uuid>` (api.md §2.9)."""
    return f"{JOB_PREFIXES[service]}_{ident}"


def parse_job_id(value: str) -> tuple[str, UUID] | None:
    """(service, uuid) of a public job id, or None if it is malformed or has an unknown prefix."""
    prefix, _, rest = value.partition("_")
    service = PREFIX_SERVICES.get(prefix)
    if service is None:
        return None
    try:
        return service, UUID(rest)
    except ValueError:
        return None


def new_request_id() -> str:
    """`req_` + a 26-character ULID."""
    return f"req_{ULID()}"


def valid_request_id(value: str | None) -> bool:
    """Client-supplied request ids: 1-64 chars of [A-Za-z0-9_-]."""
    return bool(value) and _REQUEST_ID_RE.match(value or "") is not None


def stable_id(*parts: str) -> UUID:
    """Deterministic UUID (v5) for seed rows shared across services, e.g. demo users."""
    return uuid.uuid5(SIGMASIGHT_NAMESPACE, "/".join(p.lower() for p in parts))


# `requested_by` of jobs and runs started by the scheduler rather than a person.
SYSTEM_USER_ID = UUID("00000000-0000-4000-8000-000000000001")


def demo_user_id(email: str) -> UUID:
    """The id of a seeded user, identical in gateway and ingest seeds."""
    return stable_id("user", email)
