"""The seeded demo books carry the facts of demo.md §2-§3.5 and spec/demo-*.csv."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from common.ids import demo_user_id, stable_id
from ingest.demo_data import DEMO_BOOKS, HEDGE_FUND, HIGH_NET_WORTH, INDIVIDUAL, DemoBook
from ingest.instruments import parse_occ, position_type
from ingest.seed import link_rows, position_rows

SPEC = Path("/work/shared/spec")


def cost(book: DemoBook, predicate=lambda p: True) -> Decimal:
    mult = {p.symbol: 100 if parse_occ(p.symbol) else 1 for p in book.positions}
    return sum((p.quantity * p.entry_price * mult[p.symbol] for p in book.positions if predicate(p)), Decimal(0))


def test_books_have_63_positions_with_the_counts_by_type_of_section_3_4() -> None:
    assert sum(len(b.positions) for b in DEMO_BOOKS) == 63
    counts = {b.email: Counter(r["position_type"] for r in position_rows(b)) for b in DEMO_BOOKS}
    assert counts[INDIVIDUAL.email] == {"LONG": 16}
    assert counts[HIGH_NET_WORTH.email] == {"LONG": 17}
    assert counts[HEDGE_FUND.email] == {"LONG": 13, "SHORT": 9, "LC": 4, "SC": 1, "SP": 3}


def test_cost_bases_and_cash_match_the_brief() -> None:
    assert cost(INDIVIDUAL) == Decimal("485000.00")
    assert cost(HIGH_NET_WORTH) == Decimal("1326734.75")
    stocks = [p for p in HEDGE_FUND.positions if parse_occ(p.symbol) is None]
    assert sum(p.quantity * p.entry_price for p in stocks if p.quantity > 0) == Decimal("3271700.00")
    assert sum(p.quantity * p.entry_price for p in stocks if p.quantity < 0) == Decimal("-1419000.00")
    options = [p for p in HEDGE_FUND.positions if parse_occ(p.symbol)]
    assert sum(p.quantity * p.entry_price * 100 for p in options if p.quantity > 0) == Decimal("382500.00")
    assert sum(p.quantity * p.entry_price * 100 for p in options if p.quantity < 0) == Decimal("-170500.00")
    assert cost(HEDGE_FUND) == Decimal("2064700.00")
    assert HEDGE_FUND.cash_balance + cost(HEDGE_FUND) == Decimal("3200000.00")
    assert INDIVIDUAL.cash_balance == HIGH_NET_WORTH.cash_balance == Decimal("0.00")


def test_tag_catalogue_and_strategy_types() -> None:
    per_tag = Counter(name for b in DEMO_BOOKS for p in b.positions for name in p.tags)
    assert per_tag == {
        "Core Holdings": 12,
        "Tech Growth": 6,
        "Dividend Income": 2,
        "Blue Chip": 15,
        "Alternative Assets": 2,
        "Risk Hedge": 2,
        "Long Momentum": 13,
        "Short Value Traps": 9,
        "Options Overlay": 8,
    }
    assert set(HEDGE_FUND.strategy_tags) == {"Long Momentum", "Short Value Traps", "Options Overlay"}
    assert INDIVIDUAL.strategy_tags == HIGH_NET_WORTH.strategy_tags == ()
    assert all(len([t for t in p.tags if t in HEDGE_FUND.strategy_tags]) == 1 for p in HEDGE_FUND.positions)
    assert len(link_rows(INDIVIDUAL)) == 20 and len(link_rows(HIGH_NET_WORTH)) == 19


def test_options_use_the_2027_roll() -> None:
    expiries = {p.symbol: parse_occ(p.symbol) for p in HEDGE_FUND.positions if parse_occ(p.symbol)}
    assert {s: o.expiration_date for s, o in expiries.items() if o} == {
        "SPY270917C00460000": date(2027, 9, 17),
        "QQQ270820C00420000": date(2027, 8, 20),
        "VIX270721C00025000": date(2027, 7, 21),
        "NVDA271015C00800000": date(2027, 10, 15),
        "AAPL270820P00200000": date(2027, 8, 20),
        "MSFT270917P00380000": date(2027, 9, 17),
        "TSLA270820C00300000": date(2027, 8, 20),
        "META270917P00450000": date(2027, 9, 17),
    }
    aapl_put = parse_occ("AAPL270820P00200000")
    assert aapl_put is not None and aapl_put.strike_price == Decimal("200") and aapl_put.underlying == "AAPL"
    assert position_type(Decimal("-60"), "C") == "SC" and position_type(Decimal("-1"), None) == "SHORT"


def test_ids_follow_the_contract_and_are_distinct() -> None:
    book = HEDGE_FUND
    assert book.user_id == demo_user_id("demo_hedgefundstyle@sigmasight.com")
    assert book.portfolio_id == stable_id("portfolio", book.email)
    nvda = book.positions[0]
    assert book.position_id(nvda) == stable_id("position", str(book.portfolio_id), "NVDA", "2024-01-05")
    assert book.tag_id("Long Momentum") == stable_id("tag", book.email, "Long Momentum")
    ids = [b.position_id(p) for b in DEMO_BOOKS for p in b.positions]
    assert len(set(ids)) == 63


@pytest.mark.skipif(not SPEC.exists(), reason="spec folder not mounted")
@pytest.mark.parametrize(
    ("book", "file"),
    [(INDIVIDUAL, "demo-individual.csv"), (HIGH_NET_WORTH, "demo-hnw.csv"), (HEDGE_FUND, "demo-hedgefund.csv")],
)
def test_books_equal_the_spec_csvs(book: DemoBook, file: str) -> None:
    with (SPEC / file).open() as fh:
        rows = list(csv.DictReader(fh))
    expected = [
        (
            r["ticker"],
            Decimal(r["quantity"]),
            Decimal(r["entry_price"]),
            date.fromisoformat(r["entry_date"]),
            tuple(t.strip() for t in r["tags"].split(",")),
        )
        for r in rows
    ]
    assert [(p.symbol, p.quantity, p.entry_price, p.entry_date, p.tags) for p in book.positions] == expected
