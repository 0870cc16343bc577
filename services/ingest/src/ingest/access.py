"""Portfolio resolution shared by every portfolio-scoped ingest route (api.md §2.8 "Portfolio scoping").

* An explicit `portfolio_id` must be a live portfolio of the caller (admins: anyone's); it may be
  in onboarding or archived.
* Without one, the caller's default portfolio is used; portfolios still in onboarding (and
  archived ones) are skipped by the fallback. If the default cannot be used, the caller's oldest
  active portfolio is taken.
* Nothing found → 404 PORTFOLIO_NOT_FOUND with hint `POST /api/v1/portfolio/upload`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from fastapi import Request

from common.auth import Principal, principal_from_request
from common.db import Database
from common.errors import NotFound, ValidationFailed

UPLOAD_HINT = "POST /api/v1/portfolio/upload"

PORTFOLIO_COLUMNS = (
    "id, user_id, name, description, status, currency, cash_balance, is_default, is_demo_seed, "
    "valuation_date, valued_at, onboarded_at, created_at, updated_at"
)

RESOLVE_SQL = f"""
SELECT {PORTFOLIO_COLUMNS}
FROM ingest.portfolio
WHERE deleted_at IS NULL
  AND CASE WHEN $1::uuid IS NOT NULL THEN id = $1 AND ($3 OR user_id = $2)
           ELSE user_id = $2 AND status = 'active' END
ORDER BY is_default DESC, created_at, id
LIMIT 1
"""


@dataclass(frozen=True)
class PortfolioRef:
    """The resolved portfolio (a row of ingest.portfolio)."""

    id: UUID
    user_id: UUID
    name: str
    description: str | None
    status: str
    currency: str
    cash_balance: Decimal
    is_default: bool
    is_demo_seed: bool
    valuation_date: date | None
    valued_at: datetime | None
    onboarded_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> PortfolioRef:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


async def caller(request: Request) -> Principal:
    """`common.auth.current_principal` as an async dependency.

    FastAPI runs sync dependencies in its thread pool; a thread hop per request costs more than the
    whole of `GET /api/v1/portfolio`, so the routes of this service resolve the caller on the loop.
    """
    return principal_from_request(request)


def not_found() -> NotFound:
    """404 PORTFOLIO_NOT_FOUND with the upload hint."""
    return NotFound("PORTFOLIO", hint=UPLOAD_HINT)


def parse_uuid(value: str | None, field: str) -> UUID | None:
    """A UUID query parameter; malformed → 422."""
    if value is None or value == "":
        return None
    try:
        return UUID(value)
    except ValueError as exc:
        raise ValidationFailed.field(field, "must be a UUID", value) from exc


async def resolve_portfolio(db: Database, principal: Principal, portfolio_id: UUID | str | None) -> PortfolioRef:
    """The portfolio a request addresses: explicit id (own, or any for admins) or the caller's default."""
    pid = parse_uuid(portfolio_id, "query.portfolio_id") if isinstance(portfolio_id, str) else portfolio_id
    row = await db.fetchrow(RESOLVE_SQL, pid, principal.user_id, principal.is_admin)
    if row is None:
        raise not_found()
    return PortfolioRef.from_row(row)
