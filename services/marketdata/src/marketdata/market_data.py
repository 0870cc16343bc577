"""The core of the `market_data` step: fetch closes and rates, upsert them, enrich securities.

Called by the cycle handler (cycle_market_data.py), the back-fill and tests. Provider calls run
outside any transaction; the writes are one transaction (COPY + upsert), so a re-run replaces the
same rows and never duplicates them (users.md OPS-03 AC2). A provider failure for one symbol
only lists that symbol in `symbols_failed`; its stored prices stay usable (OPS-03 AC3).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from marketdata import calendar, repository
from marketdata.context import MarketDataContext
from marketdata.errors import ProviderError
from marketdata.models import RATE_SERIES
from marketdata.providers.base import PriceBar, PriceFetch
from marketdata.security_master import ensure_securities
from marketdata.symbols import canonical_symbol, is_valid_symbol, parse_occ

log = logging.getLogger(__name__)

MARKET_SYMBOL = "SPY"


@dataclass
class MarketDataResult:
    """Outcome of one collection: which symbols got prices, which failed (with why), rows written."""

    as_of: date
    symbols_ok: list[str] = field(default_factory=list)
    symbols_failed: dict[str, str] = field(default_factory=dict)
    records: int = 0
    price_records: int = 0
    rate_records: int = 0
    rates_failed: dict[str, str] = field(default_factory=dict)
    securities_created: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """completed (no failure), partial (some symbols failed) or failed (nothing collected)."""
        if self.symbols_failed and not self.symbols_ok:
            return "failed"
        return "partial" if self.symbols_failed else "completed"


def default_as_of(ctx: MarketDataContext, now: datetime) -> date:
    """The business date a run should use: the latest completed session the provider has data for."""
    return min(calendar.latest_completed_trading_day(now), ctx.provider.last_available_date(now))


async def scope_symbols(ctx: MarketDataContext, symbols: Sequence[str] | None) -> tuple[list[str], dict[str, str]]:
    """Canonical symbols to collect (plus option underlyings) and the ones rejected as malformed."""
    rejected: dict[str, str] = {}
    async with ctx.db.session() as session:
        if symbols is None:
            wanted = set(await repository.held_symbols(session))
            wanted.update(await repository.factor_proxy_symbols(session))
            wanted.add(MARKET_SYMBOL)
        else:
            raw = [s for s in symbols if s and s.strip()]
            aliases = await repository.resolve_aliases(session, [s.strip().upper() for s in raw])
            wanted = set()
            for s in raw:
                upper = s.strip().upper()
                canonical = aliases.get(upper) or canonical_symbol(s)
                if not is_valid_symbol(canonical):
                    rejected[s] = "not a valid ticker or OCC option symbol"
                    continue
                wanted.add(canonical)
    for s in list(wanted):
        terms = parse_occ(s)
        if terms is not None:
            wanted.add(terms.underlying)
    return sorted(wanted), rejected


async def thin_history_symbols(ctx: MarketDataContext, symbols: Sequence[str], *, up_to: date) -> set[str]:
    """Those of `symbols` with fewer than `min_history_rows` stored closes on or before `up_to`.

    Symbols this process already counted as ample for `up_to` or an earlier date are not counted
    again (prices are never deleted: see `history_memo`)."""
    rows = ctx.settings.min_history_rows
    memo = ctx.ample_history
    unknown = [s for s in symbols if not memo.is_ample(s, rows=rows, up_to=up_to)]
    if not unknown:
        return set()
    async with ctx.db.session() as session:
        counts = await repository.price_counts(session, unknown, up_to=up_to)
    ample = [s for s in unknown if counts.get(s, 0) >= rows]
    memo.remember(ample, rows=rows, up_to=up_to)
    return set(unknown).difference(ample)


def _window_start(as_of: date, days: int) -> date:
    try:
        return calendar.shift_trading_days(as_of, days)
    except calendar.CalendarRangeError:
        return calendar.CALENDAR_START


async def collect_market_data(
    ctx: MarketDataContext,
    *,
    as_of: date,
    symbols: Sequence[str] | None,
    lookback_days: int = 5,
) -> MarketDataResult:
    """Fetch [as_of − lookback trading days, as_of] for the scope and store it (idempotent).

    `symbols=None` means every held symbol and option underlying, every factor-proxy ETF and SPY.
    A symbol with fewer than `min_history_rows` stored closes gets its full history
    (`full_history_days` trading days). The six FRED series are fetched over the widest window.
    """
    settings = ctx.settings
    provider = ctx.provider
    result = MarketDataResult(as_of=as_of)
    wanted, rejected = await scope_symbols(ctx, symbols)
    result.symbols_failed.update(rejected)

    ensured = await ensure_securities(ctx.db, provider, wanted, concurrency=settings.fetch_concurrency)
    result.securities_created = ensured.created
    for sym in wanted:
        if sym not in ensured.known:
            result.symbols_failed[sym] = ensured.failed.get(sym, "unknown symbol")
    collectable = [s for s in wanted if s in ensured.known]

    thin = await thin_history_symbols(ctx, collectable, up_to=as_of)
    short_start = _window_start(as_of, lookback_days)
    full_start = _window_start(as_of, max(lookback_days, settings.full_history_days))
    groups: dict[date, list[str]] = {}
    for sym in collectable:
        start = full_start if sym in thin else short_start
        groups.setdefault(start, []).append(sym)

    bars: list[PriceBar] = []
    for start, group in sorted(groups.items()):
        try:
            fetched = await provider.fetch_prices(group, start, as_of)
        except ProviderError as exc:
            log.warning("%s: price fetch for %d symbols failed: %s", provider.name, len(group), exc)
            fetched = PriceFetch(failed={s: str(exc) for s in group})
        bars.extend(b for b in fetched.rows if b.price_date <= as_of)
        result.symbols_failed.update(fetched.failed)
    got = {b.symbol for b in bars}
    for sym in collectable:
        if sym not in got and sym not in result.symbols_failed:
            result.symbols_failed[sym] = "no prices returned"
    result.symbols_ok = sorted(got)

    async with ctx.db.session() as session:
        rate_counts = await repository.rate_counts(session, RATE_SERIES, up_to=as_of)
    thin_rates = any(rate_counts.get(series, 0) < settings.min_history_rows for series in RATE_SERIES)
    rate_start = full_start if thin_rates else min([short_start, *groups])
    rates = []
    try:
        rates = await provider.fetch_rates(RATE_SERIES, rate_start, as_of)
    except ProviderError as exc:
        log.warning("%s: rate fetch failed: %s", provider.name, exc)
        result.rates_failed = {s: str(exc) for s in RATE_SERIES}
    else:
        served = {r.series_id for r in rates}
        result.rates_failed = {s: "not served by this provider" for s in RATE_SERIES if s not in served}

    async with ctx.db.transaction() as session:
        result.price_records = await repository.upsert_prices(session, bars, source=provider.name)
        result.rate_records = await repository.upsert_rates(session, rates, source=provider.name)
        if any(b.dividend is not None for b in bars):
            await repository.refresh_dividend_yields(
                session, sorted({b.symbol for b in bars if b.dividend is not None})
            )
        # Provider health: a failure is a call that served nothing; single bad symbols are symbol problems.
        if collectable and not result.symbols_ok:
            failures = {k: v for k, v in result.symbols_failed.items() if k in collectable}
            sample = "; ".join(f"{k}: {v}" for k, v in sorted(failures.items())[:5])
            await repository.record_provider_outcome(session, provider.name, ok=False, error=sample)
        elif result.symbols_ok:
            await repository.record_provider_outcome(session, provider.name, ok=True)
    result.records = result.price_records + result.rate_records
    log.info(
        "market data %s via %s: %d symbols ok, %d failed, %d price rows, %d rate rows",
        as_of,
        provider.name,
        len(result.symbols_ok),
        len(result.symbols_failed),
        result.price_records,
        result.rate_records,
    )
    return result
