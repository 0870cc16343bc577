"""Security master: canonical symbols, aliases, option contracts and profile enrichment.

* Symbols are stored canonical (`symbols.canonical_symbol`); other spellings live in
  `symbol_alias` (BRK.B → BRK-B) and resolve everywhere.
* Options are compact OCC; their terms come from the symbol, classification from the
  underlying (demo.md §5), multiplier 100. The underlying is created first (FK).
* A profile without sector or industry is stored with `'Unknown'` and `enrichment_status`
  `partial` (a warning, never an error); a known classification is never overwritten by `'Unknown'`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import Database
from common.formatting import utcnow
from marketdata import repository
from marketdata.errors import ProviderError, ProviderUnavailable
from marketdata.models import security, symbol_alias
from marketdata.providers.base import MarketDataProvider, SecurityInfo
from marketdata.symbols import OptionTerms, canonical_symbol, is_valid_symbol, parse_occ

log = logging.getLogger(__name__)

UNKNOWN = "Unknown"
ENRICHED = ("ok", "partial")


@dataclass
class EnsureResult:
    """Outcome of `ensure_securities`."""

    known: set[str] = field(default_factory=set)
    created: list[str] = field(default_factory=list)
    enriched: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    # Symbols whose lookup failed because the provider could not be reached (retryable).
    unavailable: set[str] = field(default_factory=set)


def option_info(terms: OptionTerms, underlying: SecurityInfo | dict[str, Any] | None) -> SecurityInfo:
    """An option SecurityInfo from its OCC terms, classified like its underlying."""
    get = (lambda k: underlying.get(k)) if isinstance(underlying, dict) else (lambda k: getattr(underlying, k, None))
    kind = "Call" if terms.option_type == "C" else "Put"
    return SecurityInfo(
        symbol=terms.symbol,
        security_type="option",
        name=f"{terms.underlying} {terms.expiration.isoformat()} {terms.strike:.2f} {kind}",
        exchange="OPRA",
        country=get("country"),
        currency="USD",
        sector=get("sector"),
        industry=get("industry"),
        underlying_symbol=terms.underlying,
        option_type=terms.option_type,
        strike_price=terms.strike,
        expiration_date=terms.expiration,
        multiplier=100,
    )


def security_values(info: SecurityInfo, *, provider: str | None, status: str | None = None) -> dict[str, Any]:
    """Row values for an upsert; missing classification becomes 'Unknown' (status partial)."""
    sector = info.sector or UNKNOWN
    industry = info.industry or UNKNOWN
    if status is None:
        status = "partial" if UNKNOWN in (sector, industry) else "ok"
    is_option = info.security_type == "option"
    return {
        "symbol": info.symbol,
        "security_type": info.security_type,
        "name": info.name,
        "exchange": (info.exchange or None) and info.exchange[:16],
        "country": info.country,
        "currency": (info.currency or "USD")[:3],
        "sector": sector,
        "industry": industry,
        "market_cap": info.market_cap,
        "dividend_yield": info.dividend_yield,
        "underlying_symbol": info.underlying_symbol if is_option else None,
        "option_type": info.option_type if is_option else None,
        "strike_price": info.strike_price if is_option else None,
        "expiration_date": info.expiration_date if is_option else None,
        "multiplier": (info.multiplier or 100) if is_option else None,
        "primary_provider": provider,
        "enrichment_status": status,
        "enrichment_error": None,
    }


async def upsert_securities(
    session: AsyncSession, infos: Iterable[SecurityInfo], *, provider: str | None, status: str | None = None
) -> int:
    """Insert or refresh security rows (one statement); underlyings must come before their options."""
    values = [security_values(i, provider=provider, status=status) for i in infos]
    if not values:
        return 0
    ordered = sorted(values, key=lambda v: v["security_type"] == "option")
    ins = pg.insert(security)
    ex = ins.excluded
    t = security.c

    def keep_known(col: str) -> Any:
        return sa.case(
            (sa.and_(getattr(ex, col) == UNKNOWN, getattr(t, col).is_not(None)), getattr(t, col)),
            else_=getattr(ex, col),
        )

    sector_final = keep_known("sector")
    industry_final = keep_known("industry")
    stmt = ins.on_conflict_do_update(
        index_elements=[t.symbol],
        set_={
            "security_type": ex.security_type,
            "name": sa.func.coalesce(ex.name, t.name),
            "exchange": sa.func.coalesce(ex.exchange, t.exchange),
            "country": sa.func.coalesce(ex.country, t.country),
            "currency": ex.currency,
            "sector": sector_final,
            "industry": industry_final,
            "market_cap": sa.func.coalesce(ex.market_cap, t.market_cap),
            "dividend_yield": sa.func.coalesce(ex.dividend_yield, t.dividend_yield),
            "underlying_symbol": ex.underlying_symbol,
            "option_type": ex.option_type,
            "strike_price": ex.strike_price,
            "expiration_date": ex.expiration_date,
            "multiplier": ex.multiplier,
            "primary_provider": sa.func.coalesce(ex.primary_provider, t.primary_provider),
            "enrichment_status": sa.case(
                (ex.enrichment_status == "pending", t.enrichment_status),
                (sa.or_(sector_final == UNKNOWN, industry_final == UNKNOWN), "partial"),
                else_="ok",
            ),
            "enrichment_error": None,
            "enriched_at": sa.case((ex.enrichment_status == "pending", t.enriched_at), else_=sa.func.now()),
            "updated_at": sa.func.now(),
            "is_active": True,
        },
    )
    # Insert rows carry enriched_at only when they were enriched.
    now = utcnow()
    for v in ordered:
        v["enriched_at"] = None if v["enrichment_status"] == "pending" else now
    await session.execute(stmt, ordered)
    return len(ordered)


async def upsert_aliases(session: AsyncSession, aliases: dict[str, str], *, provider: str | None = None) -> None:
    """alias → symbol rows (the target must exist)."""
    rows = [{"alias": a, "symbol": s, "provider": provider} for a, s in aliases.items() if a != s]
    if not rows:
        return
    ins = pg.insert(symbol_alias)
    await session.execute(
        ins.on_conflict_do_update(
            index_elements=[symbol_alias.c.alias],
            set_={"symbol": ins.excluded.symbol, "provider": ins.excluded.provider},
        ),
        rows,
    )


async def mark_enrichment_failed(session: AsyncSession, failures: dict[str, str], *, retryable: set[str]) -> None:
    """Record why enrichment failed on existing rows: `failed` when the provider does not know the
    symbol, still `pending` (retried next run) when the provider could not be reached."""
    for symbol, reason in failures.items():
        values: dict[str, Any] = {"enrichment_error": reason[:1000], "updated_at": sa.func.now()}
        if symbol not in retryable:
            values["enrichment_status"] = "failed"
        await session.execute(sa.update(security).where(security.c.symbol == symbol).values(**values))


async def pending_placeholders(session: AsyncSession, symbols: Sequence[str]) -> list[str]:
    """Create `pending` rows for symbols not in the master (file import); returns the symbols created."""
    existing = await repository.existing_securities(session, list(symbols))
    missing = [s for s in symbols if s not in existing]
    if not missing:
        return []
    infos: list[SecurityInfo] = []
    options: list[SecurityInfo] = []
    for sym in missing:
        terms = parse_occ(sym)
        if terms is None:
            infos.append(SecurityInfo(symbol=sym, security_type="stock"))
        else:
            options.append(option_info(terms, None))
    underlyings = sorted({o.underlying_symbol for o in options if o.underlying_symbol} - set(existing) - set(missing))
    infos.extend(SecurityInfo(symbol=u, security_type="stock") for u in underlyings)
    await upsert_securities(session, [*infos, *options], provider=None, status="pending")
    return sorted({*missing, *underlyings})


async def ensure_securities(
    db: Database, provider: MarketDataProvider, symbols: Sequence[str], *, concurrency: int = 8
) -> EnsureResult:
    """Make sure every symbol has an enriched security row: profile new or pending ones from the provider.

    Provider calls happen outside any transaction; the writes are one transaction at the end.
    """
    wanted = sorted({canonical_symbol(s) for s in symbols if s})
    async with db.session() as session:
        existing = await repository.existing_securities(session, wanted)
    # pending (new, e.g. from a file import) and failed rows get a profile attempt on every call.
    result = EnsureResult(known={s for s, row in existing.items() if row["enrichment_status"] in ENRICHED})
    todo = [s for s in wanted if s not in result.known]
    option_terms = {s: t for s in todo if (t := parse_occ(s)) is not None}
    # Underlyings of new options must be known too.
    underlyings = sorted({t.underlying for t in option_terms.values()} - set(wanted))
    if underlyings:
        async with db.session() as session:
            under_rows = await repository.existing_securities(session, underlyings)
        existing.update(under_rows)
        todo.extend(u for u in underlyings if u not in under_rows or under_rows[u]["enrichment_status"] not in ENRICHED)
    plain = [s for s in todo if s not in option_terms]
    gate = asyncio.Semaphore(concurrency)
    profiles: dict[str, SecurityInfo] = {}

    async def fetch(symbol: str) -> None:
        async with gate:
            try:
                info = await provider.profile(symbol)
            except ProviderError as exc:
                result.failed[symbol] = f"profile lookup failed: {exc}"
                result.unavailable.add(symbol)
                return
        if info is None:
            result.failed[symbol] = f"unknown to provider {provider.name}"
        else:
            profiles[symbol] = dataclasses.replace(info, symbol=symbol)

    await asyncio.gather(*(fetch(s) for s in plain))
    options: list[SecurityInfo] = []
    for sym, terms in option_terms.items():
        under = profiles.get(terms.underlying) or existing.get(terms.underlying)
        if under is None:
            result.failed[sym] = f"underlying {terms.underlying} is unknown"
            continue
        options.append(option_info(terms, under))
    to_write = [*profiles.values(), *options]
    existing_failures = {s: r for s, r in result.failed.items() if s in existing}
    if to_write or existing_failures:
        async with db.transaction() as session:
            await upsert_securities(session, to_write, provider=provider.name)
            if existing_failures:
                await mark_enrichment_failed(session, existing_failures, retryable=result.unavailable)
    for info in to_write:
        (result.enriched if info.symbol in existing else result.created).append(info.symbol)
        result.known.add(info.symbol)
    result.created.sort()
    result.enriched.sort()
    return result


async def verify_symbols(db: Database, provider: MarketDataProvider, raw_symbols: Sequence[str]) -> dict[str, Any]:
    """Upload verification (csv-format.md §7): resolve, enrich unknown symbols, report classification.

    Returns `{"symbols": {raw: {...}}}`; raises ProviderUnavailable when the provider could not be
    reached for a symbol not yet in the master (the upload then fails `retryable`).
    """
    async with db.session() as session:
        aliases = await repository.resolve_aliases(session, [s.strip().upper() for s in raw_symbols])
    spelled = {raw: aliases.get(raw.strip().upper()) or canonical_symbol(raw) for raw in raw_symbols}
    valid = {c for c in spelled.values() if c and is_valid_symbol(c)}
    ensured = await ensure_securities(db, provider, sorted(valid))
    if ensured.unavailable & valid:
        raise ProviderUnavailable(provider.name, f"could not verify {', '.join(sorted(ensured.unavailable))}")
    known = sorted(ensured.known & valid)
    async with db.session() as session:
        rows = await repository.existing_securities(session, known)
        with_prices = await repository.symbols_with_prices(session, known)
    out: dict[str, Any] = {}
    for raw, canonical in spelled.items():
        row = rows.get(canonical)
        if row is None:
            reason = (
                "not a valid ticker or OCC option symbol"
                if canonical not in valid
                else ensured.failed.get(canonical, "unknown symbol")
            )
            out[raw] = {"symbol": canonical or None, "known": False, "error": "UNKNOWN_SYMBOL", "reason": reason}
            continue
        out[raw] = {
            "symbol": canonical,
            "known": True,
            "error": None,
            "security_type": row["security_type"],
            "sector": row["sector"],
            "industry": row["industry"],
            "enrichment_status": row["enrichment_status"],
            "classification_known": UNKNOWN not in (row["sector"], row["industry"]),
            "has_prices": canonical in with_prices,
            "has_option_data": canonical in with_prices if row["security_type"] == "option" else None,
        }
    return {"symbols": out}
