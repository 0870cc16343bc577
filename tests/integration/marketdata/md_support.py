"""Helpers of the marketdata data-part integration tests (imported as `md_support`).

Each test module gets its own database with only the marketdata migrations, the seed, and a
minimal stand-in for the one ingest view the market-data step reads (`ingest.api_open_position`),
so these tests do not depend on the ingest schema's evolution.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
import sqlalchemy as sa

from common.auth import Principal, issue_access_token
from common.bus import InProcessBus
from common.db import Database
from common.service import Service
from marketdata.context import MarketDataContext
from marketdata.settings import Settings

MD_SECRET = "marketdata-data-tests-secret-0123456789-abcdefghijklmnop"
MD_ADMIN = Principal(uuid.UUID("aaaaaaaa-1111-4000-8000-000000000001"), "admin@example.com", "admin")
MD_USER = Principal(uuid.UUID("bbbbbbbb-1111-4000-8000-000000000002"), "user@example.com", "user")

INGEST_STANDIN = (
    "CREATE SCHEMA IF NOT EXISTS ingest",
    "CREATE TABLE ingest.api_open_position (portfolio_id uuid NOT NULL, symbol text NOT NULL, underlying_symbol text)",
)


@dataclass
class MdEnv:
    """One module's marketdata service on its own database."""

    url: str
    db: Database
    bus: InProcessBus
    service: Service
    settings: Settings

    @property
    def ctx(self) -> MarketDataContext:
        return self.service.app.state.ctx  # type: ignore[no-any-return]

    def client(self, principal: Principal | None = MD_ADMIN) -> httpx.AsyncClient:
        headers = {}
        if principal is not None:
            headers["Authorization"] = f"Bearer {issue_access_token(principal, MD_SECRET, 3600)}"
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.service.app), base_url="http://t", headers=headers
        )

    async def scalar(self, sql: str, **params: object) -> object:
        async with self.db.session() as session:
            return (await session.execute(sa.text(sql), params)).scalar()


def md_settings(url: str, **overrides: object) -> Settings:
    return Settings(jwt_secret=MD_SECRET, database_url=url, provider="fixture", **overrides)
