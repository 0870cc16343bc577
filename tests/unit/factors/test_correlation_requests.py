"""#43 request body validation (api.md #43, #17: duration_days 30–252; unknown fields rejected)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from pydantic import ValidationError

from factors.correlation_compute import CorrelationFilters
from factors.correlation_schemas import CorrelationCalculateRequest

PID = str(uuid.uuid4())


def test_defaults_are_the_spec_defaults() -> None:
    body = CorrelationCalculateRequest.model_validate({"portfolio_id": PID})
    assert body.duration_days == 90 and body.force_recalculate is False
    assert body.position_filters.to_filters() == CorrelationFilters(
        min_position_value=Decimal("10000"), min_portfolio_weight=0.01, filter_mode="both", correlation_threshold=0.7
    )


@pytest.mark.parametrize("days", [29, 253, 0, -5])
def test_duration_outside_30_to_252_is_rejected_with_the_range(days: int) -> None:
    with pytest.raises(ValidationError) as info:
        CorrelationCalculateRequest.model_validate({"portfolio_id": PID, "duration_days": days})
    error = info.value.errors()[0]
    assert error["loc"] == ("duration_days",) and error["msg"] == "must be between 30 and 252"


@pytest.mark.parametrize("days", [30, 252])
def test_duration_bounds_are_inclusive(days: int) -> None:
    assert (
        CorrelationCalculateRequest.model_validate({"portfolio_id": PID, "duration_days": days}).duration_days == days
    )


@pytest.mark.parametrize(
    "body",
    [
        {"duration_days": 90},  # portfolio_id is required
        {"portfolio_id": PID, "window": 90},
        {"portfolio_id": PID, "position_filters": {"min_weight": 0.02}},
        {"portfolio_id": PID, "position_filters": {"filter_mode": "any"}},
        {"portfolio_id": PID, "position_filters": {"min_portfolio_weight": 1.5}},
        {"portfolio_id": PID, "position_filters": {"min_position_value": "-1"}},
        {"portfolio_id": PID, "position_filters": {"correlation_threshold": 1.01}},
    ],
)
def test_invalid_bodies_are_rejected(body: dict) -> None:
    with pytest.raises(ValidationError):
        CorrelationCalculateRequest.model_validate(body)


def test_money_filter_accepts_a_string_or_a_number() -> None:
    as_string = CorrelationCalculateRequest.model_validate(
        {"portfolio_id": PID, "position_filters": {"min_position_value": "25000.50", "filter_mode": "either"}}
    )
    as_number = CorrelationCalculateRequest.model_validate(
        {"portfolio_id": PID, "position_filters": {"min_position_value": 25000.5, "filter_mode": "either"}}
    )
    assert as_string.position_filters.min_position_value == Decimal("25000.50")
    assert as_number.position_filters.to_filters().min_position_value == Decimal("25000.5")
