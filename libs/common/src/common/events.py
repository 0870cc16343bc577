"""Versioned event contracts (api.md §5). Only additive changes; a breaking change gets a new key.

Every event carries the envelope (event_id, run_id, occurred_at, as_of, correlation_id, producer,
cascade) plus its payload. `step` blocks let marketdata build batch status and history.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field

STEP_NAMES = (
    "market_data",
    "greeks",
    "aggregations",
    "factors",
    "correlations",
    "risk_scenarios",
    "stress_tests",
    "snapshots",
)
StepName = Literal[
    "market_data",
    "greeks",
    "aggregations",
    "factors",
    "correlations",
    "risk_scenarios",
    "stress_tests",
    "snapshots",
]
Trigger = Literal["schedule", "manual", "api", "onboarding", "demo_reset"]


def _now() -> datetime:
    return datetime.now(UTC)


class StepError(BaseModel):
    """Why a step failed."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    code: str
    message: str


class StepInfo(BaseModel):
    """Outcome of one pipeline step (for one portfolio, or market-wide)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    name: StepName
    status: Literal["completed", "partial", "failed"]
    started_at: datetime
    finished_at: datetime
    records_processed: int | None = None
    error: StepError | None = None


class Event(BaseModel):
    """Envelope shared by every event."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    routing_key: ClassVar[str] = ""

    event_id: UUID = Field(default_factory=uuid4)
    run_id: UUID | None = None
    occurred_at: datetime = Field(default_factory=_now)
    as_of: date
    correlation_id: str | None = None
    producer: str = ""
    cascade: bool = True


class CycleStarted(Event):
    """A run was created; the owner of `steps[0]` starts on it."""

    routing_key: ClassVar[str] = "cycle.started"
    trigger: Trigger
    steps: list[StepName]
    portfolio_ids: list[UUID] | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class PricesUpdated(Event):
    """Prices for `as_of` are stored. `portfolio_ids`/`trigger` (additive) carry the run scope."""

    routing_key: ClassVar[str] = "prices.updated"
    symbols: list[str] = Field(default_factory=list)
    symbols_failed: list[str] = Field(default_factory=list)
    step: StepInfo | None = None
    portfolio_ids: list[UUID] | None = None
    trigger: Trigger | None = None


class GreeksComputed(Event):
    """Greeks for one portfolio are stored (published also for books without options)."""

    routing_key: ClassVar[str] = "greeks.computed"
    portfolio_id: UUID
    ok: int = 0
    failed: int = 0
    step: StepInfo | None = None


class PortfolioUpdated(Event):
    """A portfolio changed: valued, positions, tags, onboarded, archived or removed."""

    routing_key: ClassVar[str] = "portfolio.updated"
    portfolio_id: UUID
    change: Literal["valued", "positions", "tags", "onboarded", "archived", "removed"]
    symbols: list[str] = Field(default_factory=list)
    step: StepInfo | None = None
    # Additive: why the change happened, so marketdata labels the run it starts (api, onboarding, demo_reset).
    trigger: Trigger | None = None


class FactorsComputed(Event):
    """Factor exposures (and position correlations) for one portfolio are stored."""

    routing_key: ClassVar[str] = "factors.computed"
    portfolio_id: UUID
    matrix_id: UUID | None = None
    correlation_calculation_id: UUID | None = None
    coverage: dict[str, Any] = Field(default_factory=dict)
    step: StepInfo | None = None
    # Additive: further steps this event reports (the `correlations` step rides on factors.computed).
    extra_steps: list[StepInfo] = Field(default_factory=list)


class StressComputed(Event):
    """Market-risk scenarios, stress tests and risk metrics for one portfolio are stored."""

    routing_key: ClassVar[str] = "stress.computed"
    portfolio_id: UUID
    stress_run_id: UUID | None = None
    partial: bool = False
    step: StepInfo | None = None
    # Additive: further steps this event reports (`risk_scenarios` next to `stress_tests`).
    extra_steps: list[StepInfo] = Field(default_factory=list)


class SnapshotCreated(Event):
    """The daily snapshot of one portfolio is stored."""

    routing_key: ClassVar[str] = "snapshot.created"
    portfolio_id: UUID
    snapshot_date: date
    step: StepInfo | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    cls.routing_key: cls
    for cls in (
        CycleStarted,
        PricesUpdated,
        GreeksComputed,
        PortfolioUpdated,
        FactorsComputed,
        StressComputed,
        SnapshotCreated,
    )
}


def encode(event: Event) -> bytes:
    """JSON body of an event."""
    return event.model_dump_json().encode()


def decode(routing_key: str, body: bytes) -> Event:
    """Parse a body published under `routing_key` into its event class."""
    cls = EVENT_TYPES.get(routing_key)
    if cls is None:
        raise ValueError(f"unknown routing key {routing_key!r}")
    return cls.model_validate_json(body)
