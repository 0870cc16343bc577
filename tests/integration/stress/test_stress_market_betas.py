"""`risk_repository.market_betas` returns the stored market beta of exactly the symbols asked for.

The query is a semi-join on the unnested symbol list (so its generic plan stays hashed); it is run
more than five times on one connection so PostgreSQL's switch to the generic plan is covered too.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from tests.integration.stress.stress_dataset import AS_OF
from tests.integration.stress.test_stress_batch_equivalence import portfolios  # noqa: F401  (fixture)

from stress import risk_repository

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
