"""The snapshot step's read of held positions (`repository.HELD_SQL`) on a real PostgreSQL.

The held-but-unvalued branch first drops the positions among the batch's own valuations (a hashed
anti join) and only then probes every valuation of the date: these tests pin what the one-probe
query returned — valued rows, unvalued held rows, and a position whose valuation was filed under
another portfolio (found by the probe alone) — for a batch of several portfolios.
"""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from stress.repository import HELD_SQL

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 19)
ENTRY = date(2026, 1, 5)

# The pre-change query (a per-position probe of every valuation of the date), the reference here.
PROBE_ONLY_SQL = """
    WITH held AS (
        SELECT v.portfolio_id, v.instrument_type, v.position_type, v.quantity::float8 AS quantity,
               (v.market_value * 100)::float8 AS market_value,
               (v.dollar_exposure * 100)::float8 AS dollar_exposure,
               (v.notional * 100)::float8 AS notional,
               (v.unrealized_pnl * 100)::float8 AS unrealized_pnl,
               (v.daily_pnl * 100)::float8 AS daily_pnl,
               coalesce(v.price_source = 'stale', false) AS stale,
               (g.dollar_gamma_1pct * 100)::float8 AS dollar_gamma_1pct,
               g.theta::float8 AS theta, g.vega::float8 AS vega, g.rho::float8 AS rho
        FROM ingest.api_position_valuation v
        LEFT JOIN greeks.api_position_greek g
               ON g.position_id = v.position_id AND g.calculation_date = v.valuation_date
        WHERE v.portfolio_id = ANY(CAST(:ids AS uuid[])) AND v.valuation_date = :as_of
        UNION ALL
        SELECT p.portfolio_id, p.instrument_type, p.position_type, p.quantity::float8,
               NULL, NULL, NULL, NULL, NULL, false, NULL, NULL, NULL, NULL
        FROM ingest.api_position p
        WHERE p.portfolio_id = ANY(CAST(:ids AS uuid[])) AND p.entry_date <= :as_of
          AND (p.status = 'open' OR p.exit_date > :as_of)
          AND NOT EXISTS (SELECT 1 FROM ingest.api_position_valuation v
                          WHERE v.position_id = p.id AND v.valuation_date = :as_of OFFSET 0)
    )
    SELECT portfolio_id, array_agg(instrument_type = 'option') AS is_option, array_agg(position_type) AS position_type,
           array_agg(quantity) AS quantity, array_agg(market_value) AS market_value,
           array_agg(dollar_exposure) AS dollar_exposure, array_agg(notional) AS notional,
           array_agg(unrealized_pnl) AS unrealized_pnl, array_agg(daily_pnl) AS daily_pnl,
           array_agg(stale) AS stale, array_agg(dollar_gamma_1pct) AS dollar_gamma_1pct,
           array_agg(theta) AS theta, array_agg(vega) AS vega, array_agg(rho) AS rho
    FROM held
    GROUP BY portfolio_id
"""


async def _valued(seeder, position: uuid.UUID, portfolio: uuid.UUID, value: str) -> None:
    await seeder.valuation(
        position, portfolio, DAY, last_price="10", market_value=value, dollar_exposure=value, notional=value
    )


async def _held_rows(seeder, sql: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[tuple]]:
    """Each portfolio's positions as (quantity, market value in cents, …) tuples, in a fixed order."""
    rows = await seeder.rows(sql, {"ids": ids, "as_of": DAY})
    columns = [k for k in rows[0] if k != "portfolio_id"] if rows else []
    return {r["portfolio_id"]: sorted(zip(*(r[c] for c in columns), strict=True), key=repr) for r in rows}


async def test_held_read_keeps_valued_unvalued_and_elsewhere_valued_positions(seeder) -> None:
    first, second, other = await seeder.portfolio(), await seeder.portfolio(), await seeder.portfolio()
    # first: one valued stock and one held but never valued (unpriced)
    await _valued(seeder, await seeder.position(first, "AAPL", "10", "150", ENTRY), first, "2000.00")
    await seeder.position(first, "MSFT", "5", "300", ENTRY)
    # second: one valued, one closed before the day (not held), one whose valuation was filed under
    # another portfolio: only the probe of every valuation of the date finds it (so it is not unpriced)
    await _valued(seeder, await seeder.position(second, "XYZ", "-20", "40", ENTRY), second, "-800.00")
    await seeder.position(second, "OLD", "3", "10", ENTRY, status="closed", exit_price="11", exit_date=date(2026, 6, 1))
    await _valued(seeder, await seeder.position(second, "ELSE", "7", "20", ENTRY), other, "140.00")

    ids = [first, second]
    held = await _held_rows(seeder, HELD_SQL.text, ids)

    assert held == await _held_rows(seeder, PROBE_ONLY_SQL, ids)
    assert set(held) == {first, second}
    # (is_option, position_type, quantity, market value in cents, …): MSFT unpriced, ELSE and OLD absent
    assert sorted((p[1], p[2], p[3]) for p in held[first]) == [("LONG", 5.0, None), ("LONG", 10.0, 200000.0)]
    assert [(p[1], p[2], p[3]) for p in held[second]] == [("SHORT", -20.0, -80000.0)]
