"""Run scope hashes: identical requests collide (deduplication), different ones never do."""

from __future__ import annotations

import uuid
from datetime import date

from marketdata.batch_compute import job_type_for, planned_steps, scope_hash

A = uuid.UUID("11111111-1111-4111-8111-111111111111")
B = uuid.UUID("22222222-2222-4222-8222-222222222222")
D = date(2026, 11, 24)
STEPS = planned_steps("run_all", cascade=True)


def test_scope_hash_ignores_portfolio_order_and_param_key_order() -> None:
    h1 = scope_hash("run_all", D, [A, B], {"include_correlations": True, "x": 1}, STEPS)
    h2 = scope_hash("run_all", D, [B, A], {"x": 1, "include_correlations": True}, STEPS)
    assert h1 == h2
    assert len(h1) == 32  # sha256


def test_scope_hash_differs_by_date_scope_params_job_and_steps() -> None:
    base = scope_hash("run_all", D, [A], {}, STEPS)
    assert scope_hash("run_all", date(2026, 11, 23), [A], {}, STEPS) != base
    assert scope_hash("run_all", D, [A, B], {}, STEPS) != base
    assert scope_hash("run_all", D, [A], {"include_correlations": False}, STEPS) != base
    assert scope_hash("greeks", D, [A], {}, STEPS) != base
    single = scope_hash("greeks", D, [A], {}, planned_steps("greeks", cascade=False))
    cascading = scope_hash("greeks", D, [A], {}, planned_steps("greeks", cascade=True))
    assert single != cascading


def test_job_types_follow_the_job_catalogue() -> None:
    assert job_type_for("run_all") == "batch.run_all"
    assert job_type_for("market_data") == "batch.market_data"
