"""The three demo books of demo.md §2-§3 (same facts as spec/demo-*.csv, options on the 2027 roll).

Identities are deterministic (docs/contracts.md "Demo seed identities"), so every service's seed
and the demo reset agree without lookups.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from uuid import UUID

from common.ids import demo_user_id, stable_id


@dataclass(frozen=True)
class DemoPosition:
    """One seeded position: (symbol, signed quantity, entry price per share, entry date, tag names)."""

    symbol: str
    quantity: Decimal
    entry_price: Decimal
    entry_date: date
    tags: tuple[str, ...]


@dataclass(frozen=True)
class DemoBook:
    """One demo account with its seeded portfolio and tags."""

    email: str
    portfolio_name: str
    cash_balance: Decimal
    strategy_tags: tuple[str, ...]
    positions: tuple[DemoPosition, ...]

    @property
    def user_id(self) -> UUID:
        return demo_user_id(self.email)

    @property
    def portfolio_id(self) -> UUID:
        return stable_id("portfolio", self.email)

    def position_id(self, pos: DemoPosition) -> UUID:
        return stable_id("position", str(self.portfolio_id), pos.symbol, pos.entry_date.isoformat())

    def tag_id(self, name: str) -> UUID:
        return stable_id("tag", self.email, name)

    @property
    def tag_names(self) -> tuple[str, ...]:
        """Distinct tag names in first-seen order."""
        seen: dict[str, None] = {}
        for pos in self.positions:
            for name in pos.tags:
                seen.setdefault(name, None)
        return tuple(seen)


def _p(symbol: str, qty: str, price: str, entry: str, *tags: str) -> DemoPosition:
    return DemoPosition(symbol, Decimal(qty), Decimal(price), date.fromisoformat(entry), tuple(tags))


CORE, TECH, DIV = "Core Holdings", "Tech Growth", "Dividend Income"
BLUE, ALT, HEDGE = "Blue Chip", "Alternative Assets", "Risk Hedge"
MOM, SVT, OVL = "Long Momentum", "Short Value Traps", "Options Overlay"

INDIVIDUAL = DemoBook(
    email="demo_individual@sigmasight.com",
    portfolio_name="Demo Individual Investor Portfolio",
    cash_balance=Decimal("0.00"),
    strategy_tags=(),
    positions=(
        _p("AAPL", "85", "225.00", "2024-01-15", CORE, TECH),
        _p("MSFT", "45", "420.00", "2024-01-16", CORE, TECH),
        _p("AMZN", "110", "170.00", "2024-01-18", CORE, TECH),
        _p("GOOGL", "115", "160.00", "2024-01-20", CORE, TECH),
        _p("TSLA", "70", "255.00", "2024-01-22", TECH),
        _p("NVDA", "25", "700.00", "2024-01-25", TECH),
        _p("JNJ", "105", "160.00", "2024-02-01", DIV),
        _p("JPM", "85", "170.00", "2024-02-05", DIV),
        _p("V", "50", "268.00", "2024-02-08", CORE),
        _p("FXNAX", "4365", "20.00", "2023-12-15", CORE),
        _p("FCNTX", "4853", "15.00", "2023-12-15", CORE),
        _p("FMAGX", "3880", "15.00", "2023-12-15", CORE),
        _p("VTIAX", "970", "30.00", "2023-12-15", CORE),
        _p("VTI", "155", "250.00", "2023-11-20", CORE),
        _p("BND", "315", "77.00", "2023-11-20", CORE),
        _p("VNQ", "205", "95.00", "2023-11-20", CORE),
    ),
)

HIGH_NET_WORTH = DemoBook(
    email="demo_hnw@sigmasight.com",
    portfolio_name="Demo High Net Worth Investor Portfolio",
    cash_balance=Decimal("0.00"),
    strategy_tags=(),
    positions=(
        _p("SPY", "400", "530.00", "2024-01-05", BLUE),
        _p("QQQ", "450", "420.00", "2024-01-05", BLUE),
        _p("AAPL", "400", "225.00", "2024-01-10", BLUE),
        _p("MSFT", "200", "420.00", "2024-01-10", BLUE),
        _p("AMZN", "480", "170.00", "2024-01-12", BLUE),
        _p("GOOGL", "500", "160.00", "2024-01-12", BLUE),
        _p("BRK-B", "180", "440.00", "2024-01-15", BLUE),
        _p("JPM", "350", "170.00", "2024-01-15", BLUE),
        _p("JNJ", "310", "160.00", "2024-01-18", BLUE),
        _p("NVDA", "70", "700.00", "2024-01-20", BLUE),
        _p("META", "90", "530.00", "2024-01-20", BLUE),
        _p("UNH", "85", "545.00", "2024-01-22", BLUE),
        _p("V", "170", "268.00", "2024-01-22", BLUE),
        _p("HD", "125", "350.00", "2024-01-25", BLUE),
        _p("PG", "250", "165.00", "2024-01-25", BLUE),
        _p("GLD", "325", "219.23", "2024-02-01", ALT, HEDGE),
        _p("DJP", "1900", "30.00", "2024-02-01", ALT, HEDGE),
    ),
)

HEDGE_FUND = DemoBook(
    email="demo_hedgefundstyle@sigmasight.com",
    portfolio_name="Demo Hedge Fund Style Investor Portfolio",
    cash_balance=Decimal("1135300.00"),
    strategy_tags=(MOM, SVT, OVL),
    positions=(
        _p("NVDA", "800", "700.00", "2024-01-05", MOM),
        _p("MSFT", "1000", "420.00", "2024-01-05", MOM),
        _p("AAPL", "1500", "225.00", "2024-01-08", MOM),
        _p("GOOGL", "1800", "160.00", "2024-01-08", MOM),
        _p("META", "1000", "265.00", "2024-01-10", MOM),
        _p("AMZN", "1400", "170.00", "2024-01-10", MOM),
        _p("TSLA", "800", "255.00", "2024-01-12", MOM),
        _p("AMD", "1200", "162.00", "2024-01-12", MOM),
        _p("BRK-B", "600", "440.00", "2024-01-15", MOM),
        _p("JPM", "1000", "170.00", "2024-01-15", MOM),
        _p("JNJ", "800", "160.00", "2024-01-18", MOM),
        _p("UNH", "200", "545.00", "2024-01-18", MOM),
        _p("V", "350", "268.00", "2024-01-20", MOM),
        _p("NFLX", "-600", "490.00", "2024-01-25", SVT),
        _p("SHOP", "-1000", "195.00", "2024-01-25", SVT),
        _p("ZM", "-2000", "70.00", "2024-01-28", SVT),
        _p("PTON", "-3000", "40.00", "2024-01-28", SVT),
        _p("ROKU", "-1800", "60.00", "2024-01-30", SVT),
        _p("XOM", "-2000", "110.00", "2024-02-01", SVT),
        _p("F", "-10000", "12.00", "2024-02-01", SVT),
        _p("GE", "-800", "140.00", "2024-02-05", SVT),
        _p("C", "-2000", "55.00", "2024-02-05", SVT),
        _p("SPY270917C00460000", "200", "7.00", "2024-01-10", OVL),
        _p("QQQ270820C00420000", "150", "7.00", "2024-01-10", OVL),
        _p("VIX270721C00025000", "300", "2.50", "2024-01-15", OVL),
        _p("NVDA271015C00800000", "50", "12.50", "2024-01-15", OVL),
        _p("AAPL270820P00200000", "-100", "4.50", "2024-01-20", OVL),
        _p("MSFT270917P00380000", "-80", "5.00", "2024-01-20", OVL),
        _p("TSLA270820C00300000", "-60", "8.00", "2024-01-25", OVL),
        _p("META270917P00450000", "-50", "7.50", "2024-01-25", OVL),
    ),
)

DEMO_BOOKS: tuple[DemoBook, ...] = (INDIVIDUAL, HIGH_NET_WORTH, HEDGE_FUND)
DEMO_EMAILS: tuple[str, ...] = tuple(book.email for book in DEMO_BOOKS)
