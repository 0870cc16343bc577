"""Pass 2: every well-formed ticker against the security master (§7).

Runs after pass 1 on the rows whose ticker parsed, with the securities, aliases and price presence
of the file's symbols looked up in one go (`symbols_to_look_up`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ingest.csv_format.model import CheckContext, Row
from ingest.csv_format.result import CheckResult, SecuritySummary
from ingest.csv_format.rows import PositionKey, duplicate_error


@dataclass(frozen=True, slots=True)
class Security:
    """What the security master says about a symbol."""

    symbol: str
    security_type: str  # stock | etf | mutual_fund | option | index
    sector: str | None = None
    industry: str | None = None


@dataclass(frozen=True)
class SecurityLookup:
    """The known securities for the symbols of one file (api_security + api_symbol_alias + prices)."""

    securities: Mapping[str, Security]
    aliases: Mapping[str, str] = field(default_factory=dict)
    priced: frozenset[str] = frozenset()  # symbols with at least one row in api_daily_price


def is_classified(sector: str | None, industry: str | None) -> bool:
    """Sector and industry both known (empty or 'Unknown' counts as missing); onboarding uses the same rule."""
    return bool(sector) and bool(industry) and "Unknown" not in (sector, industry)


def symbols_to_look_up(result: CheckResult) -> set[str]:
    """Symbols whose security-master rows, aliases and price presence pass 2 needs."""
    out: set[str] = set()
    for row in result.rows:
        if row.symbol is None:
            continue
        out.add(row.symbol)
        if row.underlying_symbol:
            out.add(row.underlying_symbol)
            if row.instrument_type == "stock" and "-" in row.symbol:
                out.add(row.symbol.replace("-", "."))
    return out


def _resolve(symbol: str, lookup: SecurityLookup) -> Security | None:
    """The master row of `symbol`, directly or through an alias (also in its `.` class spelling)."""
    sec = lookup.securities.get(symbol)
    if sec is not None:
        return sec
    for alias in (symbol, symbol.replace("-", ".")):
        target = lookup.aliases.get(alias)
        if target is not None and target in lookup.securities:
            return lookup.securities[target]
    return None


def verify_symbols(result: CheckResult, lookup: SecurityLookup, ctx: CheckContext) -> None:
    """Add UNKNOWN_SYMBOL, NOT_HOLDABLE, SHORT_NOT_ALLOWED, NO_OPTION_DATA, UNKNOWN_CLASSIFICATION."""
    if result.stopped:
        return
    verified: set[str] = set()  # position symbols found in the security master
    unclassified: set[str] = set()  # position symbols whose (underlying's) classification is missing
    unknown_class: dict[str, None] = {}  # securities without sector/industry, in file order
    rewritten = False
    for row in result.rows:
        if row.symbol is None or "ticker" in row.error_columns:
            continue
        value = row.raw.get("ticker")
        if row.instrument_type == "stock":
            before = row.symbol
            classified_by = _verify_stock(row, lookup, result)
            rewritten = rewritten or row.symbol != before
        else:
            classified_by = _verify_option(row, lookup, result)
        if classified_by is None:
            continue
        verified.add(row.symbol)
        if not is_classified(classified_by.sector, classified_by.industry):
            unclassified.add(row.symbol)
            unknown_class[classified_by.symbol] = None
            result.warn(
                row.row_number,
                "ticker",
                "UNKNOWN_CLASSIFICATION",
                f"no sector/industry found for '{classified_by.symbol}'; stored as 'Unknown'",
                value,
            )
    if rewritten:
        _recheck_duplicates_after_aliases(result, ctx)
    result.securities = SecuritySummary(
        verified=len(verified),
        classified=len(verified - unclassified),
        unknown_classification=list(unknown_class),
    )


def _verify_stock(row: Row, lookup: SecurityLookup, result: CheckResult) -> Security | None:
    """The stock's master row (its symbol rewritten to the canonical one); None when it cannot be held."""
    assert row.symbol is not None
    value = row.raw.get("ticker")
    sec = _resolve(row.symbol, lookup)
    if sec is None:
        result.fail_cell(row, "ticker", "UNKNOWN_SYMBOL", f"symbol '{row.symbol}' is not a known security", value)
        return None
    if sec.symbol != row.symbol:
        row.symbol = row.underlying_symbol = sec.symbol
    if sec.security_type == "index":
        message = f"'{sec.symbol}' is an index and cannot be held directly"
        result.fail_cell(row, "ticker", "NOT_HOLDABLE", message, value)
        return None
    if sec.security_type == "mutual_fund" and row.quantity is not None and row.quantity < 0:
        row.position_type = None
        message = f"mutual fund '{sec.symbol}' cannot be held short"
        result.fail_cell(row, "quantity", "SHORT_NOT_ALLOWED", message, row.raw.get("quantity"))
    return sec


def _verify_option(row: Row, lookup: SecurityLookup, result: CheckResult) -> Security | None:
    """The underlying's master row (options take its classification); None when it is unknown."""
    value = row.raw.get("ticker")
    root = row.underlying_symbol or ""
    underlying = _resolve(root, lookup)
    if underlying is None:
        message = f"underlying '{root}' of '{row.symbol}' is not a known security"
        result.fail_cell(row, "ticker", "UNKNOWN_SYMBOL", message, value)
        return None
    row.underlying_symbol = underlying.symbol
    if row.symbol not in lookup.securities and row.symbol not in lookup.priced:
        message = f"no market data found for option '{row.symbol}'; it is kept and priced from model inputs"
        result.warn(row.row_number, "ticker", "NO_OPTION_DATA", message, value)
    return underlying


def _recheck_duplicates_after_aliases(result: CheckResult, ctx: CheckContext) -> None:
    """An alias (e.g. a provider spelling) can make two rows the same position; report the later one."""
    seen: dict[PositionKey, int] = {}
    for row in result.rows:
        if row.symbol is None or row.entry_date is None or "ticker" in row.error_columns:
            continue
        key = (row.symbol, row.entry_date)
        error = duplicate_error(row.symbol, row.entry_date, seen.get(key), ctx)
        if error is not None:
            result.fail_cell(row, "ticker", error[0], error[1], row.raw.get("ticker"))
        else:
            # Unlike pass 1, a row already flagged is not remembered: only clean rows are originals here.
            seen[key] = row.row_number
