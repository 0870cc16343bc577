"""The stress step's shared reads give what the reads they replace gave.

* Risk metrics take a batch's holdings from the one positions read that market risk and stress tests
  use (`stress_repository.batch_position_rows`): on the Example 7 books, an empty and an option-only
  portfolio, one that is not live, and a generated book (options without Greeks or with NULL gamma,
  unpriced positions, underlying prices from the Greeks or only from the valuation), the holdings
  are, to the bit, what the former holdings read (copied below) gave; a batch reads its positions once.
* The close panel read (one row per symbol off the price key) fills the panel with exactly the values
  of the former read (every value tagged with its symbol's ordinal, copied below): NULL adjusted
  closes, numeric NaN, prices off the panel's days, a symbol without prices, panels filled in steps
  and the prepared statement's generic plan (after five runs) included.
"""

from __future__ import annotations

import math
import uuid
from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from tests.integration.stress.stress_dataset import AS_OF, STOCK_A, STOCK_B
from tests.integration.stress.test_stress_batch_equivalence import portfolios  # noqa: F401  (fixture)
from tests.unit.stress.bitwise import identical

from stress import risk_repository, stress_repository
from stress.risk_repository import ClosePanel, HoldingRows

pytestmark = pytest.mark.integration

# The risk metrics' own holdings read before they shared the stress step's positions read.
FORMER_HOLDINGS_SQL = sa.text(
    """
    SELECT v.portfolio_id,
           array_agg(coalesce(v.underlying_symbol, v.symbol) ORDER BY v.position_id) AS underlying,
           array_agg(v.instrument_type = 'option' ORDER BY v.position_id) AS is_option,
           array_agg(v.market_value::float8 ORDER BY v.position_id) AS market_value,
           array_agg(v.dollar_exposure::float8 ORDER BY v.position_id) AS dollar_exposure,
           array_agg(g.gamma ORDER BY v.position_id) AS gamma,
           array_agg(coalesce(g.underlying_price, v.underlying_price)::float8 ORDER BY v.position_id)
               AS underlying_price,
           array_agg(g.status ORDER BY v.position_id) AS greek_status
    FROM ingest.api_position_valuation v
    LEFT JOIN greeks.api_position_greek g ON g.position_id = v.position_id AND g.calculation_date = v.valuation_date
    WHERE v.portfolio_id = ANY(:ids) AND v.valuation_date = :d
    GROUP BY v.portfolio_id
    """
)


def _nan(values: list[Any] | None) -> list[float]:
    return [math.nan if x is None else float(x) for x in values or []]


async def former_holdings(session, ids: list[uuid.UUID]) -> dict[Any, HoldingRows]:
    return {
        h.portfolio_id: HoldingRows(
            underlying=list(h.underlying),
            is_option=[bool(x) for x in h.is_option],
            market_value=_nan(h.market_value),
            dollar_exposure=_nan(h.dollar_exposure),
            gamma=_nan(h.gamma),
            underlying_price=_nan(h.underlying_price),
            greek_status=list(h.greek_status),
        )
        for h in await session.execute(FORMER_HOLDINGS_SQL, {"ids": ids, "d": AS_OF})
    }


async def seed_generated_book(seeder, rng: np.random.Generator) -> uuid.UUID:
    """30 positions on STRA/STRB: stocks (some unpriced) and options with full Greeks, with a Greeks row
    without underlying price (and some without any Greek: `missing_inputs`), or with none; some
    valuations carry the underlying price."""
    pid = await seeder.portfolio(cash="2500")
    entry, expiry = date(2026, 1, 5), AS_OF + timedelta(days=60)
    for i in range(30):
        underlying = (STOCK_A, STOCK_B)[i % 2]
        if rng.random() < 0.4:
            q = str(int(rng.integers(-300, 300)) or 1)
            pos = await seeder.position(pid, underlying, q, "50", entry - timedelta(days=i))
            priced = rng.random() > 0.15
            value = f"{float(q) * rng.uniform(40, 120):.2f}" if priced else None
            await seeder.valuation(
                pos,
                pid,
                AS_OF,
                last_price="1" if priced else None,
                market_value=value,
                dollar_exposure=value,
                notional=value,
            )
        else:
            kind = str(rng.choice(["C", "P"]))
            strike = f"{rng.integers(60, 140)}"
            symbol = f"{underlying}270120{kind}{int(strike) * 1000:08d}"
            q = str(int(rng.integers(1, 20)) * int(rng.choice([-1, 1])))
            pos = await seeder.position(
                pid, symbol, q, "2", entry, option=(kind, strike, expiry), underlying=underlying
            )
            exposure = None if rng.random() < 0.15 else f"{rng.normal(0, 20_000):.2f}"
            await seeder.valuation(
                pos,
                pid,
                AS_OF,
                last_price="2",
                market_value=f"{float(q) * 200:.2f}",
                dollar_exposure=exposure,
                notional="1",
            )
            greeks = rng.random()
            if greeks < 0.6:
                await seeder.option_greek(
                    pos, pid, AS_OF, symbol=symbol, underlying=underlying, option_type=kind, strike=strike,
                    expiry=expiry, quantity=q, spot=float(rng.uniform(60, 140)), sigma=0.3,
                    delta_ps=float(rng.uniform(-1, 1)), gamma_ps=float(rng.uniform(0, 0.05)), years=60 / 365,
                )  # fmt: skip
            elif greeks < 0.8:  # a Greeks row without underlying price (its gamma: 2.0)
                await seeder.greek(pos, pid, AS_OF, dollar_gamma_1pct="1.00", theta=-1.0, vega=1.0, rho=1.0)
                if rng.random() < 0.5:  # nor any Greek values
                    await seeder.execute(
                        "UPDATE greeks.position_greek SET status = 'missing_inputs', delta = NULL, gamma = NULL,"
                        " theta = NULL, vega = NULL, rho = NULL WHERE position_id = :p",
                        {"p": pos},
                    )
        if rng.random() < 0.5:
            await seeder.execute(
                "UPDATE ingest.position_valuation SET underlying_price = :u WHERE position_id = :p",
                {"u": round(float(rng.uniform(60, 140)), 4), "p": pos},
            )
    return pid


def same(a: dict[Any, HoldingRows], b: dict[Any, HoldingRows | None]) -> list[str]:
    keys = sorted(a, key=str)
    if sorted(b, key=str) != keys:
        return ["portfolio ids"]
    return identical([a[k] for k in keys], [b[k] for k in keys])


async def test_risk_holdings_from_the_shared_read_are_the_former_holdings(
    stress_db,
    seeder,
    portfolios,  # noqa: F811  (the imported fixture)
) -> None:
    ids = sorted([*portfolios, await seed_generated_book(seeder, np.random.default_rng(5))])
    async with stress_db.transaction() as s:
        former = await former_holdings(s, ids)
        assert len(former) == 4  # the two books, the option-only one and the generated one
        shared = risk_repository.holdings_by_portfolio(await stress_repository.position_rows(s, ids, AS_OF))
        assert same(former, shared) == []
        days = await risk_repository.calendar_days(s, AS_OF)
        rows = await risk_repository.portfolio_rows(
            s, ids, AS_OF, risk_repository.history_start(days, AS_OF), set(risk_repository.FACTOR_VIEWS)
        )
        got = {pid: r.holdings for pid, r in rows.items() if r.holdings is not None}
        assert same(former, got) == []
        assert {pid for pid, r in rows.items() if r.holdings is None} == set(ids) - set(former)


async def test_a_batch_reads_its_positions_once(
    harness,
    stress_db,
    portfolios,  # noqa: F811  (the imported fixture)
    monkeypatch,
) -> None:
    reads: list[tuple[uuid.UUID, ...]] = []
    real = stress_repository.position_rows

    async def counted(session, portfolio_ids, on):  # type: ignore[no-untyped-def]
        reads.append(tuple(portfolio_ids))
        return await real(session, portfolio_ids, on)

    monkeypatch.setattr(stress_repository, "position_rows", counted)
    live = sorted(portfolios[:4])  # the fifth is not live
    pipeline = harness.service.app.state.pipeline
    async with stress_db.transaction() as session:
        outcomes = await pipeline.run_parts(
            session, as_of=AS_OF, run_id=uuid.uuid4(), portfolio_ids=live, market=True, stress=True
        )
    assert reads == [tuple(live)]  # market risk, stress tests and risk metrics: one read
    assert all(o.risk is not None and o.risk.status != "failed" for o in outcomes.values())


# -- the close panel ---------------------------------------------------------------------------


async def former_load_closes(session, panel: ClosePanel, symbols: set[str]) -> None:
    """The former read: every value tagged with its symbol's ordinal in one joined aggregate."""
    missing = sorted(symbols - panel.closes.keys())
    if not missing or not panel.days.size:
        for symbol in missing:
            panel.closes[symbol] = np.full(panel.days.shape, np.nan)
        return
    lo, hi = panel.days[0].item(), panel.days[-1].item()
    row = (
        await session.execute(
            sa.text(
                """
                SELECT string_agg(int4send(CAST(s.k AS int4)), ''::bytea) AS symbol_index,
                       string_agg(int4send(p.price_date - CAST(:lo AS date)), ''::bytea) AS day_offset,
                       string_agg(int8send(coalesce(
                           CAST(nullif(coalesce(p.adj_close, p.close), 'NaN') * 10000 AS int8),
                           -9223372036854775808)), ''::bytea) AS price
                FROM unnest(CAST(:symbols AS text[])) WITH ORDINALITY AS s(symbol, k)
                JOIN marketdata.api_daily_price p
                  ON p.symbol = s.symbol AND p.price_date BETWEEN CAST(:lo AS date) AND CAST(:hi AS date)
                """
            ),
            {"symbols": missing, "lo": lo, "hi": hi},
        )
    ).one()
    closes = np.full((len(missing), panel.days.size), np.nan)
    if row.price is not None:
        column = np.frombuffer(row.symbol_index, dtype=">i4").astype(np.int64) - 1
        offset = np.frombuffer(row.day_offset, dtype=">i4").astype(np.int64)
        scaled = np.frombuffer(row.price, dtype=">i8").astype(np.int64)
        price = np.where(scaled == np.iinfo(np.int64).min, np.nan, scaled / 10_000.0)
        row_of = np.full((hi - lo).days + 1, -1, dtype=np.int64)
        row_of[(panel.days - panel.days[0]).astype(np.int64)] = np.arange(panel.days.size)
        at = row_of[offset]
        ok = at >= 0
        closes[column[ok], at[ok]] = price[ok]
    for j, symbol in enumerate(missing):
        panel.closes[symbol] = closes[j]


async def seed_odd_closes(seeder, days: list[date]) -> list[str]:
    """Three symbols with awkward closes and one without any; returns their names."""
    tag = uuid.uuid4().hex[:6].upper()
    plain, odd, sparse, none = (f"C{tag}{k}" for k in "PODN")
    rng = np.random.default_rng(3)
    await seeder.prices(plain, days, list(rng.uniform(1, 5000, len(days))))
    await seeder.prices(odd, days[::2], list(rng.uniform(0.0001, 3, len(days[::2]))))
    await seeder.prices(sparse, days[-40::7], [123456789.1234] * len(days[-40::7]))
    await seeder.security(none)
    saturday = next(d for d in (days[-10] + timedelta(days=k) for k in range(7)) if d.weekday() == 5)
    await seeder.execute(
        "INSERT INTO marketdata.daily_price (symbol, price_date, close, adj_close, source) VALUES"
        " (:s, :sat, 7.5, 7.5, 'fixture'),"  # off the calendar: not a panel day
        " (:s, :d1, 11.25, NULL, 'fixture')"  # no adjusted close: the close
        " ON CONFLICT (symbol, price_date) DO UPDATE SET close = excluded.close, adj_close = excluded.adj_close",
        {"s": odd, "sat": saturday, "d1": days[-1]},
    )
    await seeder.execute(
        "UPDATE marketdata.daily_price SET adj_close = 'NaN' WHERE symbol = :s AND price_date = :d",
        {"s": odd, "d": days[-3]},
    )
    return [plain, odd, sparse, none]


def panel_differences(a: ClosePanel, b: ClosePanel) -> list[str]:
    if sorted(a.closes) != sorted(b.closes):
        return ["symbols"]
    return [s for s in sorted(a.closes) if a.closes[s].tobytes() != b.closes[s].tobytes()]


async def test_the_close_panel_holds_the_values_of_the_former_read(
    stress_db,
    seeder,
    portfolios,  # noqa: F811  (the imported fixture: SPY, STRA and STRB closes)
    calendar_days,
) -> None:
    symbols = await seed_odd_closes(seeder, [d for d in calendar_days if d <= AS_OF])
    wanted = {*symbols, "SPY", STOCK_A, STOCK_B}
    async with stress_db.transaction() as s:
        days = await risk_repository.calendar_days(s, AS_OF)
        former = ClosePanel(days)
        await former_load_closes(s, former, wanted)
        assert np.isnan(former.closes[symbols[1]]).any() and np.isfinite(former.closes[symbols[1]]).any()
        assert np.isnan(former.closes[symbols[3]]).all()
        for _ in range(7):  # past the 5 custom plans of the prepared statement
            panel = ClosePanel(days)
            await risk_repository.load_closes(s, panel, {"SPY", symbols[0]})  # a panel filled in steps
            await risk_repository.load_closes(s, panel, wanted)
            assert panel_differences(former, panel) == []
        single = ClosePanel(days)
        await risk_repository.load_closes(s, single, {symbols[3]})  # nothing stored
        assert np.isnan(single.closes[symbols[3]]).all() and single.closes[symbols[3]].shape == days.shape
        empty = ClosePanel(days[:0])
        await risk_repository.load_closes(s, empty, wanted)
        assert all(v.shape == (0,) for v in empty.closes.values()) and set(empty.closes) == wanted
