"""Test helpers shared by the services: database and broker URLs, service checks, builders."""

from __future__ import annotations

import asyncio
import os
import socket
from urllib.parse import urlparse

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_TEST_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def test_database_url() -> str:
    """Admin URL of the PostgreSQL server tests create their databases on."""
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)


def test_amqp_url() -> str:
    """URL of the RabbitMQ broker integration tests use."""
    return os.environ.get("TEST_AMQP_URL", DEFAULT_TEST_AMQP_URL)


def services_required() -> bool:
    """CI sets SIGMASIGHT_REQUIRE_SERVICES=1: unreachable services fail tests instead of skipping."""
    return os.environ.get("SIGMASIGHT_REQUIRE_SERVICES", "") not in ("", "0", "false")


def reachable(url: str, default_port: int, timeout: float = 2.0) -> bool:
    """TCP reachability of a service URL."""
    parsed = urlparse(url)
    host = parsed.hostname or "127.0.0.1"
    port = parsed.port or default_port
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def with_database(url: str, name: str) -> str:
    """Same server, another database name."""
    parsed = urlparse(url)
    return parsed._replace(path=f"/{name}").geturl()


async def recreate_database(admin_url: str, name: str) -> str:
    """Drop (if present) and create database `name`; returns its URL."""
    import asyncpg

    from common.db import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(admin_url, name)


async def drop_database(admin_url: str, name: str) -> None:
    """Drop database `name` (terminating its connections)."""
    import asyncpg

    from common.db import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


async def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1) -> None:  # type: ignore[no-untyped-def]
    """Poll an async or sync predicate until true; TimeoutError after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
