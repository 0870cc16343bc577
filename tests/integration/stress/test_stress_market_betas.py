"""`risk_repository.market_betas` returns the stored market beta of exactly the symbols asked for.

The query is a semi-join on the unnested symbol list (so its generic plan stays hashed); it is run
more than five times on one connection so PostgreSQL's switch to the generic plan is covered too.
Within a run, the close panel keeps the betas found, so later batches ask only for the others.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import sqlalchemy as sa
from tests.integration.stress.stress_dataset import AS_OF
from tests.integration.stress.test_stress_batch_equivalence import portfolios  # noqa: F401  (fixture)

from stress import risk_repository
from stress.risk_service import RiskMetricsEngine

pytestmark = pytest.mark.integration

PRESENT = {"factors.api_underlying_beta"}


async def test_market_betas_are_the_stored_market_betas_of_the_symbols_asked(
    stress_db,
    portfolios,  # noqa: F811  (the imported fixture)
) -> None:
    async with stress_db.transaction() as s:
        stored = {
            r.symbol: float(r.beta)
            for r in await s.execute(
                sa.text(
                    "SELECT symbol, beta FROM factors.api_underlying_beta"
                    " WHERE calculation_date = :d AND factor_code = 'market' AND beta IS NOT NULL"
                ),
                {"d": AS_OF},
            )
        }
        assert len(stored) >= 2
        symbols = sorted(stored)
        for _ in range(7):  # past the 5 custom plans of a prepared statement
            assert await risk_repository.market_betas(s, AS_OF, [*symbols, "NO-SUCH"], PRESENT) == stored
            first = symbols[:1]
            assert await risk_repository.market_betas(s, AS_OF, first, PRESENT) == {first[0]: stored[first[0]]}
        assert await risk_repository.market_betas(s, AS_OF, ["NO-SUCH"], PRESENT) == {}
        assert await risk_repository.market_betas(s, AS_OF, symbols, set()) == {}


async def test_a_runs_panel_keeps_found_betas_and_asks_again_for_missing_ones(
    stress_db,
    portfolios,  # noqa: F811  (the imported fixture)
    monkeypatch,
) -> None:
    engine = RiskMetricsEngine()
    asked: list[list[str]] = []
    real = risk_repository.market_betas

    async def spy(session, as_of, symbols, present):  # type: ignore[no-untyped-def]
        asked.append(list(symbols))
        return await real(session, as_of, symbols, present)

    monkeypatch.setattr(risk_repository, "market_betas", spy)
    async with stress_db.transaction() as s:
        stored = {
            r.symbol
            for r in await s.execute(
                sa.text(
                    "SELECT symbol FROM factors.api_underlying_beta"
                    " WHERE calculation_date = :d AND factor_code = 'market' AND beta IS NOT NULL"
                ),
                {"d": AS_OF},
            )
        }
        run_id = uuid.uuid4()
        panel = await engine.close_panel(s, AS_OF, run_id)
        first = await engine.market_window(s, AS_OF, panel, set(stored) | {"NO-SUCH"}, PRESENT)
        second = await engine.market_window(s, AS_OF, await engine.close_panel(s, AS_OF, run_id), set(stored), PRESENT)
        fresh = await engine.market_window(s, AS_OF, risk_repository.ClosePanel(panel.days), set(stored), PRESENT)
    # the second batch of the run asks only for symbols without a stored beta; a fresh panel asks for all
    wanted = stored | {risk_repository.MARKET_SYMBOL}
    assert asked[1] == sorted(wanted - stored) and set(asked[2]) == wanted  # (SPY has no beta of its own)
    assert panel.betas.keys() == stored
    # the cached betas give the very window a fresh read gives
    assert second.symbols == fresh.symbols and "NO-SUCH" in first.symbols
    for name in ("returns", "observed", "proxied", "beta", "reason"):
        assert np.array_equal(getattr(second.panel, name), getattr(fresh.panel, name)), name
    assert np.array_equal(second.market, fresh.market, equal_nan=True)
