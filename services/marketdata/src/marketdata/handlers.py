"""Bus wiring of the marketdata data part: the upload-verification request/reply.

`rpc.marketdata.verify_symbols` — payload `{"symbols": [raw, …]}`; reply `{"symbols": {raw: {symbol,
known, error, security_type, sector, industry, enrichment_status, classification_known, has_prices,
has_option_data}}}`. New symbols are looked up at the provider and added to the security master;
an unreachable provider raises a TransientError (the caller fails the upload as retryable).
Batch/cycle subscriptions are registered by batch_handlers.register.
"""

from __future__ import annotations

from typing import Any

from common.bus import Bus
from common.errors import PermanentError
from marketdata.context import MarketDataContext
from marketdata.security_master import verify_symbols

MAX_VERIFY_SYMBOLS = 10_000


def register(bus: Bus, ctx: MarketDataContext) -> None:
    """Serve `rpc.marketdata.verify_symbols`."""

    async def on_verify_symbols(payload: dict[str, Any]) -> dict[str, Any]:
        symbols = payload.get("symbols")
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            raise PermanentError("verify_symbols needs {'symbols': [str, ...]}")
        if len(symbols) > MAX_VERIFY_SYMBOLS:
            raise PermanentError(f"at most {MAX_VERIFY_SYMBOLS} symbols per call")
        return await verify_symbols(ctx.db, ctx.provider, symbols)

    bus.respond("marketdata.verify_symbols", on_verify_symbols)
