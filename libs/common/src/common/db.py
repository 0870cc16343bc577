"""Database access: SQLAlchemy 2 async engine on asyncpg, plus a raw asyncpg pool for hot reads."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from common.errors import TransientError

log = logging.getLogger(__name__)


def sqlalchemy_url(url: str) -> str:
    """`postgresql://…` → `postgresql+asyncpg://…` (other drivers are rewritten to asyncpg)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def asyncpg_dsn(url: str) -> str:
    """Plain libpq-style DSN for asyncpg (no `+driver`)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


# Parallel query is off for the services' sessions by default. Their work is many concurrent
# small statements, each for one batch of portfolios; with workers allowed, the planner priced a
# batch's read of ~60 symbols' price history as a parallel scan of the whole price table (three
# processes, ~55 ms) instead of index probes (4 ms), and such scans grow with the stored history,
# not with the batch. SIGMASIGHT_DB_PARALLEL_WORKERS restores a per-gather worker count.
DEFAULT_PARALLEL_WORKERS_PER_GATHER = 0


def server_settings(
    url: str, application_name: str | None, *, parallel_workers_per_gather: int | None = None
) -> dict[str, str]:
    """Session settings sent when a connection opens: `application_name` names the process's
    connections in pg_stat_activity (and in logs with `%a`), so an operator sees which service runs
    a query or holds a lock (one already in the URL wins); `max_parallel_workers_per_gather` when
    given (None: the server's own setting)."""
    settings: dict[str, str] = {}
    if application_name and "application_name" not in make_url(url).query:
        settings["application_name"] = application_name[:63]  # PostgreSQL truncates names to 63 bytes
    if parallel_workers_per_gather is not None:
        settings["max_parallel_workers_per_gather"] = str(parallel_workers_per_gather)
    return settings


class Database:
    """One database, shared by the services of a process. Sessions never outlive a request/handler."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        echo: bool = False,
        application_name: str | None = None,
        parallel_workers_per_gather: int | None = DEFAULT_PARALLEL_WORKERS_PER_GATHER,
    ) -> None:
        self.url = url
        self.server_settings = server_settings(
            url, application_name, parallel_workers_per_gather=parallel_workers_per_gather
        )
        self.engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=False,
            echo=echo,
            connect_args={"server_settings": self.server_settings} if self.server_settings else {},
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._pool: asyncpg.Pool | None = None
        self.pool_size = pool_size

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session without an explicit transaction (reads; caller commits if it writes)."""
        async with self.sessionmaker() as session:
            yield session

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection (autocommit off)."""
        async with self.engine.connect() as conn:
            yield conn

    async def pool(self) -> asyncpg.Pool:
        """Raw asyncpg pool for latency-critical reads (lazy)."""
        if self._pool is None:
            self._pool = await asyncpg.create_pool(
                asyncpg_dsn(self.url),
                min_size=1,
                max_size=self.pool_size,
                statement_cache_size=256,
                reset=_reset_connection,
                server_settings=self.server_settings or None,
            )
        return self._pool

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """Run a read on the raw pool."""
        pool = await self.pool()
        async with pool.acquire() as conn:
            return list(await conn.fetch(query, *args))

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        """One row from the raw pool."""
        pool = await self.pool()
        async with pool.acquire() as conn:
            return await conn.fetchrow(query, *args)

    async def ping(self) -> bool:
        """`SELECT 1` (readiness)."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception as exc:
            log.warning("database ping failed: %s", exc)
            return False

    async def close(self) -> None:
        """Dispose the engine and the raw pool."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        await self.engine.dispose()


async def session_driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under `session`, inside the session's transaction: SQLAlchemy's asyncpg
    adapter sends BEGIN lazily, at its first statement, so a raw statement (COPY, a temp table ON
    COMMIT DROP, a read that must see the transaction's writes) issued first would run outside it."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    if not driver.is_in_transaction():
        await session.execute(text("SELECT 1"))
    return driver


async def fetch_records(session: AsyncSession, sql: str, params: dict[str, Any]) -> list[asyncpg.Record]:
    """`sql` with `:name` parameters, run on the session's own connection and transaction, as asyncpg
    Records. For reads of thousands of rows: SQLAlchemy builds a Row object per row (~10 µs each),
    asyncpg decodes the whole result in C. The named parameters are compiled to `$n` by the asyncpg
    dialect itself, so the SQL text is written exactly as for `session.execute(text(sql))`."""
    compiled = text(sql).compile(dialect=_ASYNCPG_DIALECT)
    args = [params[name] for name in compiled.positiontup or ()]
    return list(await (await session_driver_connection(session)).fetch(compiled.string, *args))


_ASYNCPG_DIALECT = postgresql_asyncpg.dialect()


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """Pool release hook: the raw pool only serves reads, so skip asyncpg's RESET ALL round trip and
    only roll back a transaction a caller left open."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


def is_transient_db_error(exc: BaseException) -> bool:
    """Connection loss, serialization failures and deadlocks are worth retrying."""
    transient_types: tuple[type[BaseException], ...] = (
        asyncpg.exceptions.ConnectionDoesNotExistError,
        asyncpg.exceptions.SerializationError,
        asyncpg.exceptions.DeadlockDetectedError,
        asyncpg.exceptions.CannotConnectNowError,
        asyncpg.exceptions.TooManyConnectionsError,
        ConnectionError,
        OSError,
    )
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, transient_types):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def reraise_transient(exc: BaseException) -> None:
    """Re-raise a transient database error as TransientError (so the bus requeues)."""
    if is_transient_db_error(exc):
        raise TransientError(str(exc)) from exc


@contextlib.asynccontextmanager
async def parent_key_probes(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """Statements inside insert child rows with their foreign-key checks planned as primary-key
    probes of the parent table.

    PostgreSQL checks each inserted child row with one query whose plan a backend prepares at its
    first check and then keeps. A parent table that is a page or two long at that moment (a fresh
    database, the first batch of a date) makes a sequential scan look cheapest; the cached plan then
    scans the whole, growing table once per child row (a first run of 1,000 portfolios: ~22k
    correlation checks reading ~11M parent rows). Planned with sequential scans off, the check is an
    index probe at any size. The setting is set back on success (on failure the caller's
    transaction or savepoint rolls it back)."""
    previous = await conn.fetchval("SELECT current_setting('enable_seqscan')")
    await conn.execute("SELECT set_config('enable_seqscan', 'off', true)")
    yield
    await conn.execute("SELECT set_config('enable_seqscan', $1, true)", previous)
