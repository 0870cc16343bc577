"""Which other services' published views exist yet (they arrive with their services' migrations).

Reads of optional analytics (Greeks, snapshots, batch runs) are built only from views that exist,
so ingest answers with null blocks instead of failing while an engine is not deployed. A present
view is remembered for good; a missing one is looked up again after `ttl` seconds.
"""

from __future__ import annotations

import time

from common.db import Database

DAILY_PRICE = "marketdata.api_daily_price"
TRADING_DAY = "marketdata.api_trading_day"
SECURITY = "marketdata.api_security"
BATCH_RUN = "marketdata.api_batch_run"
POSITION_GREEK = "greeks.api_position_greek"
LATEST_GREEK = "greeks.api_latest_position_greek"
SNAPSHOT = "stress.api_snapshot"

OPTIONAL_VIEWS = (DAILY_PRICE, TRADING_DAY, SECURITY, BATCH_RUN, POSITION_GREEK, LATEST_GREEK, SNAPSHOT)

_SQL = """
SELECT n.nspname || '.' || c.relname AS name
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname || '.' || c.relname = ANY($1::text[])
"""


class ViewCatalog:
    """Cached existence of the optional cross-service views."""

    def __init__(self, db: Database, ttl: float = 30.0) -> None:
        self.db = db
        self.ttl = ttl
        self._present: frozenset[str] = frozenset()
        self._checked = float("-inf")

    async def present(self) -> frozenset[str]:
        """The optional views that exist now."""
        missing = len(self._present) < len(OPTIONAL_VIEWS)
        if missing and time.monotonic() - self._checked > self.ttl:
            rows = await self.db.fetch(_SQL, list(OPTIONAL_VIEWS))
            self._present = frozenset(r["name"] for r in rows)
            self._checked = time.monotonic()
        return self._present

    async def has(self, view: str) -> bool:
        """True when `view` exists."""
        return view in await self.present()

    def forget(self) -> None:
        """Look again on the next call (after migrations ran in-process, e.g. in tests)."""
        self._checked = float("-inf")
