"""The stored sets the daily step writes (`ResultDocuments.sets`, documents filled straight into each
run's JSON arrays) are, byte for byte, the sets of the per-row view (`row_columns` → `result_sets`) and
of the per-row builder it replaced (`reference_rows`): the same JSON text of every document and flag
list, the same money, percentages, factors and counts — with and without a correlated part, and for
a book whose symbols need JSON escapes, are not ASCII or hold `%`.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from tests.integration.stress.result_rows import result_sets, row_columns, sets_from_rows
from tests.integration.stress.stress_dataset import AS_OF
from tests.integration.stress.test_stress_batch_equivalence import portfolios  # noqa: F401  (fixture)
from tests.integration.stress.test_stress_result_documents import presenters, reference_rows

from stress.result_documents import JSON_COLUMNS, ResultDocuments
from stress.scenarios_present import ScenarioPresenter

pytestmark = pytest.mark.integration

MONEY = {"direct_pnl", "direct_linear_pnl", "correlated_pnl", "correlated_linear_pnl", "correlation_effect"}


def assert_same_sets(expected: list[dict[str, Any]], got: list[dict[str, Any]]) -> None:
    assert len(got) == len(expected)
    for old, new in zip(expected, got, strict=True):
        assert list(new) == list(old)
        for key, value in old.items():
            if key in JSON_COLUMNS:
                assert type(new[key]) is type(value) and new[key] == value, key
            elif key in MONEY:  # text for numeric_in: the same cents
                assert [None if v is None else Decimal(v) for v in new[key]] == [
                    None if v is None else Decimal(v) for v in value
                ], key
            else:  # repr tells -0.0 from 0.0 and a float from an int
                assert repr(new[key]) == repr(value), key


def with_awkward_symbols(pr: ScenarioPresenter) -> ScenarioPresenter:
    awkward = ['Q"1', "back\\slash", "ctl\x01", "é€", "100%", "%s"]
    symbols = [awkward[i % len(awkward)] + s for i, s in enumerate(pr.a.symbols)]
    return ScenarioPresenter(replace(pr.a, symbols=symbols), pr.meta, pr.c)


async def test_stored_sets_are_the_per_row_sets(stress_db, portfolios) -> None:  # noqa: F811
    ids = sorted(portfolios[:4])  # two Example 7 books, one without positions, one option-only
    run_ids: list[uuid.UUID | None] = [uuid.uuid4(), None, uuid.uuid4(), uuid.uuid4()]
    correlated, direct_only = await presenters(stress_db, ids)
    for pr in (correlated, direct_only, with_awkward_symbols(correlated), with_awkward_symbols(direct_only)):
        stored = pr.result_sets(run_ids, AS_OF)
        documents = ResultDocuments(pr, run_ids)
        portfolio_ids = [pr.a.portfolio_ids[p] for p in documents.ports]
        from_columns = result_sets(row_columns(documents), documents.run_ids, portfolio_ids, pr.meta.ids, AS_OF)
        assert_same_sets(from_columns, stored)
        assert_same_sets(sets_from_rows(reference_rows(pr, run_ids)), stored)
        assert len(stored) == 3 and all(len(s["direct_pnl"]) == len(pr.meta.ids) for s in stored)
        assert any('"symbol":' in s["top_positions"] for s in stored)  # not only empty documents
