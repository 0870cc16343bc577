"""rpc.stress.evaluate's pure parts: betas supplied for unregressed underlyings, position columns of the books."""

from __future__ import annotations

import uuid

import numpy as np

from stress.compute.scenarios import MODEL_FACTORS
from stress.evaluate import EvaluateRequest, SuppliedBetas, _columns, with_supplied
from stress.scenarios_inputs import BetaTable

MARKET, SIZE = MODEL_FACTORS.index("market"), MODEL_FACTORS.index("size")


def test_supplied_betas_fill_only_underlyings_without_a_stored_regression() -> None:
    stored = np.full((2, len(MODEL_FACTORS)), np.nan)
    stored[0] = 0.5
    table = BetaTable(["SPY", "IWM"], stored, np.array([True, False]))
    supplied = {
        "SPY": SuppliedBetas(betas={"market": 9.0}),
        "IWM": SuppliedBetas(betas={"market": 1.1, "size": 1.0}),
    }
    out = with_supplied(table, supplied)
    assert out.betas[0, MARKET] == 0.5, "a stored regression is never overridden"
    assert (out.betas[1, MARKET], out.betas[1, SIZE]) == (1.1, 1.0) and bool(out.regression[1])
    assert np.isnan(out.betas[1, MODEL_FACTORS.index("value")]), "a code not supplied stays unknown"
    default = with_supplied(table, {"IWM": SuppliedBetas(beta_source="default", betas={"market": 1.0})})
    assert not bool(default.regression[1]), "default betas stay flagged as default"


def test_columns_follow_the_books_in_order() -> None:
    request = EvaluateRequest.model_validate(
        {
            "books": [
                {
                    "key": "before",
                    "cash": 10,
                    "positions": [
                        {"symbol": "AAPL", "underlying_symbol": "AAPL", "market_value": 100, "dollar_exposure": 100}
                    ],
                },
                {
                    "key": "after",
                    "positions": [{"symbol": "SPY", "underlying_symbol": "SPY", "dollar_exposure": "5.5"}],
                },
            ]
        }
    )
    ids = [uuid.uuid4(), uuid.uuid4()]
    columns = _columns(request, ids)
    assert columns["portfolio_id"] == ids and columns["symbol"] == ["AAPL", "SPY"]
    assert columns["dollar_exposure"] == [100.0, 5.5] and columns["market_value"] == [100.0, None]
