"""Fixtures of the marketdata data-part integration tests (fixture names start with `md_`).

Each test module gets its own database with only the marketdata migrations, the seed, and a
minimal stand-in for the one ingest view the market-data step reads (`ingest.api_open_position`),
so these tests do not depend on the ingest schema's evolution.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from md_support import INGEST_STANDIN, MdEnv, md_settings
from test_batch_support import Env, close_env, create_batch_database, make_env
from tests.conftest import drop_database, make_migrated_database

from common.bus import InProcessBus
from common.db import Database
from marketdata.main import create_service
from marketdata.seed import seed


@pytest.fixture(scope="module")
async def md_env(pg_admin_url: str) -> AsyncIterator[MdEnv]:
    name = f"sigmasight_md_{uuid.uuid4().hex[:8]}"
    url = await make_migrated_database(pg_admin_url, name, ("marketdata",))
    db = Database(url, pool_size=3)
    async with db.transaction() as session:
        for stmt in INGEST_STANDIN:
            await session.execute(sa.text(stmt))
    settings = md_settings(url)
    await seed(db, settings)
    bus = InProcessBus()
    service = create_service(settings, db, bus)
    yield MdEnv(url, db, bus, service, settings)
    await db.close()
    await drop_database(pg_admin_url, name)


@pytest.fixture(scope="module")
async def batch_db_url(pg_admin_url: str) -> AsyncIterator[str]:
    """The batch-part tests' database, one per test module (unique name: parallel pytest sessions
    share the server)."""
    name = f"sigmasight_mdbatch_{uuid.uuid4().hex[:8]}"
    url = await create_batch_database(pg_admin_url, name)
    yield url
    await drop_database(pg_admin_url, name)


@pytest.fixture
async def env(batch_db_url: str) -> AsyncIterator[Env]:
    """A marketdata batch environment on the module's database (bus not started)."""
    e = await make_env(batch_db_url)
    yield e
    await close_env(e)
