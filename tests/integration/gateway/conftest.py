"""Gateway integration fixtures: a database with the gateway schema (plus a stand-in for ingest's
`api_portfolio` view contract), seeded users, stub upstream services and an in-process client."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from tests.conftest import make_migrated_database, worker_suffix

from common.api import envelope
from common.app import create_service_app, jobs_router
from common.auth import Principal, current_principal, issue_access_token, require_admin
from common.bus import InProcessBus
from common.db import Database, asyncpg_dsn
from common.testing import drop_database
from gateway.main import create_service
from gateway.seed import seed
from gateway.settings import Settings

JWT_SECRET = "gateway-test-secret-0123456789abcdef0123456789"
ADMIN_PASSWORD = "admin-test-password-1"
ENGINES = ("ingest", "marketdata", "greeks", "factors", "stress")

# Stand-ins for ingest's published views (docs/contracts.md), so these tests do not depend on the
# ingest schema being written concurrently: api_portfolio and api_notification with the contract's
# columns, and the api_position_valuation columns the gateway reads.
API_PORTFOLIO_DDL = """
CREATE SCHEMA IF NOT EXISTS ingest;
CREATE TABLE IF NOT EXISTS ingest.api_portfolio (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    name text NOT NULL,
    description text,
    status text NOT NULL,
    currency char(3) NOT NULL DEFAULT 'USD',
    cash_balance numeric(20,2) NOT NULL DEFAULT 0,
    is_default boolean NOT NULL DEFAULT false,
    is_demo_seed boolean NOT NULL DEFAULT false,
    equity numeric(20,2),
    valued_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ingest.api_position_valuation (
    position_id uuid NOT NULL,
    valuation_date date NOT NULL,
    portfolio_id uuid NOT NULL,
    market_value numeric(20,2),
    PRIMARY KEY (position_id, valuation_date)
);
CREATE TABLE IF NOT EXISTS ingest.api_notification (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    kind text NOT NULL,
    severity text NOT NULL,
    title text NOT NULL,
    message text NOT NULL,
    portfolio_id uuid,
    link text,
    details jsonb NOT NULL DEFAULT '{}',
    read_at timestamptz,
    email_status text NOT NULL DEFAULT 'skipped',
    email_sent_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""


@pytest.fixture(scope="session")
async def gateway_db_url(pg_admin_url: str) -> AsyncIterator[str]:
    """A database migrated with the gateway schema only, plus the api_portfolio stand-in."""
    name = f"sigmasight_gateway_{worker_suffix()}"
    url = await make_migrated_database(pg_admin_url, name, services=("gateway",))
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(API_PORTFOLIO_DDL)
    finally:
        await conn.close()
    yield url
    await drop_database(pg_admin_url, name)


def make_settings(url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "jwt_secret": JWT_SECRET,
        "bcrypt_rounds": 4,
        "demo_admin_password": ADMIN_PASSWORD,
        "data_dir": data_dir,
        "mode": "allinone",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
async def gateway_db(gateway_db_url: str) -> AsyncIterator[Database]:
    db = Database(gateway_db_url, pool_size=5)
    yield db
    await db.close()


@pytest.fixture(scope="session")
async def seeded(gateway_db: Database, gateway_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Demo users and the admin, seeded once per session (bcrypt cost 4 for speed)."""
    settings = make_settings(gateway_db_url, tmp_path_factory.mktemp("gw-data"))
    await seed(gateway_db, settings)
    return settings


@dataclass
class StubState:
    """What the stub services saw."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    created: int = 0
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    ready: bool = True


def stub_service(name: str, state: StubState) -> Any:
    """A tiny service built like the real ones (create_service_app), with a few routes per owner."""

    async def ready_check() -> dict[str, Any]:
        return {"database": state.ready, "broker": "in_process"}

    app = create_service_app(
        name, title=f"stub {name}", description="stub", jwt_secret=JWT_SECRET, ready_check=ready_check
    )
    router = APIRouter()

    async def load_job(ident: uuid.UUID) -> dict[str, Any] | None:
        return {"job_id": f"{name}-{ident}", "status": "completed", "requested_by": None, "service": name}

    app.include_router(jobs_router(name, load_job))

    def record(request: Request, principal: Principal, **extra: Any) -> dict[str, Any]:
        seen = {
            "service": name,
            "path": request.url.path,
            "user_id": str(principal.user_id),
            "role": principal.role,
            "x_user_id": request.headers.get("x-user-id"),
            "x_user_role": request.headers.get("x-user-role"),
            "x_request_id": request.headers.get("x-request-id"),
            **extra,
        }
        state.calls.append(seen)
        return seen

    if name == "ingest":

        @router.get("/api/v1/portfolio", summary="Portfolio overview")
        async def portfolio(request: Request, principal: Principal = Depends(current_principal)) -> Response:
            return envelope(record(request, principal), request=request)

        @router.get("/api/v1/positions/{id}", summary="One position")
        async def position(id: str, request: Request, principal: Principal = Depends(current_principal)) -> Response:
            return envelope(record(request, principal, id=id), request=request)

        @router.post("/api/v1/tags", summary="Create a tag", status_code=201)
        async def create_tag(request: Request, principal: Principal = Depends(current_principal)) -> Response:
            body = await request.json()
            state.created += 1
            return envelope(
                {"tag": body, "n": state.created, **record(request, principal)}, request=request, status=201
            )

        @router.post("/api/v1/portfolio/upload", summary="Upload positions")
        async def upload(request: Request, principal: Principal = Depends(current_principal)) -> Response:
            size = len(await request.body())
            return envelope({"received": size}, request=request, status=202)

        @router.post("/api/v1/modeling/sessions", summary="Start a session")
        async def slow_session(request: Request, principal: Principal = Depends(current_principal)) -> Response:
            await state.gate.wait()
            state.created += 1
            return envelope({"n": state.created}, request=request, status=201)

    if name == "marketdata":

        @router.get("/api/v1/admin/batch/status", summary="Batch status (admin)")
        async def batch_status(request: Request, principal: Principal = Depends(require_admin)) -> Response:
            return envelope(record(request, principal), request=request)

        @router.post("/api/v1/market-data/prices/import", summary="Import prices")
        async def import_prices(request: Request, principal: Principal = Depends(require_admin)) -> Response:
            return envelope({"received": len(await request.body())}, request=request)

    if name == "stress":

        @router.get("/api/v1/portfolio/exposures", summary="Exposure history")
        async def exposures(request: Request, principal: Principal = Depends(current_principal)) -> Response:
            return envelope(record(request, principal), request=request)

    app.include_router(router)
    return app


@dataclass
class Harness:
    """A gateway service over stub upstreams, with an httpx client on its ASGI app."""

    service: Any
    client: httpx.AsyncClient
    state: StubState
    settings: Settings

    @property
    def edge(self) -> Any:
        return self.service.app.state.edge

    def token(self, user_id: uuid.UUID | None = None, role: str = "user", ttl: int = 3600, **kw: Any) -> str:
        principal = Principal(user_id=user_id or uuid.uuid4(), email="someone@example.com", role=role)  # type: ignore[arg-type]
        return issue_access_token(principal, JWT_SECRET, ttl, **kw)

    def auth(self, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(**kw)}"}

    async def login(self, email: str, password: str, **kw: Any) -> httpx.Response:
        return await self.client.post("/api/v1/auth/login", json={"email": email, "password": password}, **kw)


async def build_harness(db: Database, settings: Settings, *, client: tuple[str, int] = ("127.0.0.1", 5555)) -> Harness:
    state = StubState()
    upstreams = {name: stub_service(name, state) for name in ENGINES}
    service = create_service(settings, db, InProcessBus(), upstreams=upstreams)
    transport = httpx.ASGITransport(app=service.app, client=client)
    http = httpx.AsyncClient(transport=transport, base_url="http://gateway.test")
    return Harness(service, http, state, settings)


@pytest.fixture
async def harness(gateway_db: Database, seeded: Settings) -> AsyncIterator[Harness]:
    h = await build_harness(gateway_db, seeded)
    yield h
    await h.client.aclose()
    await h.service.app.state.edge.upstreams.close()


async def add_portfolio(
    db: Database, user_id: uuid.UUID, name: str, *, default: bool, equity: Decimal | None, valued_at: Any = None
) -> uuid.UUID:
    """Insert a row into the api_portfolio stand-in."""
    pid = uuid.uuid4()
    pool = await db.pool()
    await pool.execute(
        "INSERT INTO ingest.api_portfolio (id, user_id, name, status, is_default, equity, valued_at) "
        "VALUES ($1, $2, $3, 'active', $4, $5, $6)",
        pid,
        user_id,
        name,
        default,
        equity,
        valued_at,
    )
    return pid
