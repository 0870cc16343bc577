"""Shared fixtures: real PostgreSQL / RabbitMQ endpoints (fail, never skip, when CI requires them)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

from common.testing import (
    drop_database,
    reachable,
    recreate_database,
    services_required,
    test_amqp_url,
    test_database_url,
)

# Tests never touch a developer's .env-configured services by accident.
os.environ.setdefault("SIGMASIGHT_MODE", "allinone")


def _unavailable(what: str, url: str) -> None:
    message = f"{what} is not reachable at {url}"
    if services_required():
        pytest.fail(message + " (SIGMASIGHT_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """URL of the test PostgreSQL server (TEST_DATABASE_URL)."""
    url = test_database_url()
    if not reachable(url, 5432):
        _unavailable("PostgreSQL", url)
    return url


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """URL of the test RabbitMQ broker (TEST_AMQP_URL)."""
    url = test_amqp_url()
    if not reachable(url, 5672):
        _unavailable("RabbitMQ", url)
    return url


def worker_suffix() -> str:
    """Distinct per pytest-xdist worker so parallel workers never share a database."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture
async def scratch_database(pg_admin_url: str) -> AsyncIterator[str]:
    """An empty database for one test, dropped afterwards."""
    name = f"sigmasight_scratch_{worker_suffix()}_{uuid.uuid4().hex[:8]}"
    url = await recreate_database(pg_admin_url, name)
    yield url
    await drop_database(pg_admin_url, name)


def _services_with_migrations(candidates: tuple[str, ...]) -> list[str]:
    import importlib.util

    return [svc for svc in candidates if importlib.util.find_spec(f"{svc}.migrations") is not None]


async def make_migrated_database(admin_url: str, name: str, services: tuple[str, ...] | None = None) -> str:
    """Create database `name` and run the migrations of `services` (default: every service that has them)."""
    import asyncio

    from common.migrations import MIGRATION_ORDER, upgrade

    url = await recreate_database(admin_url, name)
    for svc in _services_with_migrations(services or MIGRATION_ORDER):
        await asyncio.to_thread(upgrade, svc, url)
    return url


@pytest.fixture(scope="session")
async def migrated_db_url(pg_admin_url: str) -> AsyncIterator[str]:
    """One migrated database per test worker (every service's schema), dropped at the end."""
    name = f"sigmasight_test_{worker_suffix()}_{uuid.uuid4().hex[:8]}"
    url = await make_migrated_database(pg_admin_url, name)
    yield url
    await drop_database(pg_admin_url, name)
