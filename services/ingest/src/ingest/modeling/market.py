"""Market data a session needs, read through marketdata's published views only (docs/contracts.md)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from common.bus import Bus
from common.db import Database
from common.errors import ServiceUnavailable
from ingest.csv_format import Security, SecurityLookup
from ingest.csv_format.verify import _resolve
from ingest.upload.check_inputs import ask_marketdata_to_verify, security_lookup
from ingest.upload.errors import MARKET_ERRORS, MarketDataUnavailable

VERIFY_TIMEOUT_SECONDS = 10.0

_CLOSES_SQL = """
SELECT DISTINCT ON (symbol) symbol, price_date, close
FROM marketdata.api_daily_price
WHERE symbol = ANY($1::text[]) AND price_date <= $2 AND close IS NOT NULL AND close > 0
ORDER BY symbol, price_date DESC
"""


@dataclass(frozen=True)
class Quote:
    """The latest close of a symbol on or before the session date."""

    price: Decimal
    price_date: date


class Securities:
    """Security-master rows of the symbols a request names (aliases resolved, e.g. BRK.B → BRK-B)."""

    def __init__(self, lookup: SecurityLookup) -> None:
        self.lookup = lookup

    def resolve(self, symbol: str) -> Security | None:
        return _resolve(symbol, self.lookup)


async def securities(db: Database, bus: Bus, symbols: Iterable[str]) -> Securities:
    """Look the symbols up; ones new to the security master are first offered to the market-data provider
    (as the upload does, csv-format.md §7), so a ticker the provider knows can be modelled."""
    wanted = sorted(set(symbols))
    try:
        lookup = await security_lookup(db, wanted)
        unknown = [s for s in wanted if _resolve(s, lookup) is None]
        if unknown:
            await ask_marketdata_to_verify(bus, unknown, timeout=VERIFY_TIMEOUT_SECONDS)
            lookup = await security_lookup(db, wanted)
    except MarketDataUnavailable as exc:
        raise ServiceUnavailable(f"Market data is unavailable: {exc}", headers={"Retry-After": "5"}) from exc
    return Securities(lookup)


async def latest_closes(db: Database, symbols: Iterable[str], as_of: date) -> dict[str, Quote]:
    """The latest close ≤ `as_of` of each symbol that has one (options: their own close)."""
    wanted = sorted(set(symbols))
    if not wanted:
        return {}
    try:
        rows = await db.fetch(_CLOSES_SQL, wanted, as_of)
    except MARKET_ERRORS as exc:
        raise ServiceUnavailable(f"Market data is unavailable: {exc}", headers={"Retry-After": "5"}) from exc
    return {r["symbol"]: Quote(Decimal(r["close"]), r["price_date"]) for r in rows}
