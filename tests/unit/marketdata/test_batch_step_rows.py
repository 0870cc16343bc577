"""The bookkeeping fast paths equal the per-item code they replace, on generated data.

* `step_row` (one event's step block → a batch_job_run row tuple) equals
  `job_run_values(run, report_from_step(...))` but for the run's id, as-of date and trigger;
* `step_reports` (reads the event's fields) equals the getattr-based reading;
* `aggregate_steps` (rows grouped by step once, the first failure by `min`) equals the former
  per-step scans with a sorted search.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from common.events import (
    Event,
    FactorsComputed,
    GreeksComputed,
    PortfolioUpdated,
    PricesUpdated,
    SnapshotCreated,
    StepError,
    StepInfo,
    StressComputed,
)
from marketdata.batch_bookkeeping import job_run_values, report_from_step, step_row
from marketdata.batch_compute import (
    FINAL_JOB_RUN_STATUSES,
    JOB_RUN_STATUSES,
    MARKET_WIDE_STEPS,
    PIPELINE_STEPS,
    STEP_SERVICE,
    StepRow,
    _duration_ms,
    _latest_per_key,
    aggregate_steps,
    step_order,
)
from marketdata.batch_handlers import step_reports
from marketdata.batch_repository import STEP_ROW_KEYS

AS_OF = date(2026, 11, 24)
T0 = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)
RUN = {"id": uuid.uuid4(), "as_of_date": AS_OF, "trigger": "schedule"}


def step_info(rng: random.Random, name: str) -> StepInfo:
    status = rng.choice(["completed", "partial", "failed"])
    started = T0 + timedelta(milliseconds=rng.randint(0, 10**6))
    # finished before started happens with skewed clocks: the duration is floored at 0.
    finished = started + timedelta(microseconds=rng.randint(-2_000_000, 90_000_000))
    error = None
    if status == "failed" or rng.random() < 0.2:
        error = StepError(code=rng.choice(["BOOM", "NO_PRICES"]), message="x" * rng.choice([0, 5, 999, 1000, 1500]))
    return StepInfo(
        name=name,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        started_at=started,
        finished_at=finished,
        records_processed=rng.choice([None, 0, 7, 20_000]),
        error=error,
    )


@pytest.mark.parametrize("seed", range(5))
def test_step_row_equals_the_report_and_values_it_replaces(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(400):
        name = rng.choice(PIPELINE_STEPS)
        step = step_info(rng, name)
        pid = rng.choice([None, uuid.uuid4()])
        producer = rng.choice(["", "greeks", "stress"])
        event_id = rng.choice([None, uuid.uuid4()])
        expected = job_run_values(RUN, report_from_step(step, pid, producer), event_id=event_id)
        # run_id, as_of_date and trigger are not sent: the statement takes them from the locked run row
        assert step_row(step, pid, producer, event_id) == tuple(expected[k] for k in STEP_ROW_KEYS)


def test_step_row_edge_cases() -> None:
    same = StepInfo(name="market_data", status="partial", started_at=T0, finished_at=T0, records_processed=None)
    row = dict(zip(STEP_ROW_KEYS, step_row(same, uuid.uuid4(), "", None), strict=True))
    assert row["portfolio_id"] is None  # market-wide
    assert row["status"] == "completed" and row["details"] == {"partial": True} and row["duration_ms"] == 0
    assert row["service"] == STEP_SERVICE["market_data"]


def getattr_step_reports(evt: Event) -> list[tuple[StepInfo, uuid.UUID | None]]:
    """The former reading of an event's step blocks (getattr with defaults)."""
    portfolio_id: uuid.UUID | None = getattr(evt, "portfolio_id", None)
    if isinstance(evt, PricesUpdated):
        portfolio_id = None
    steps: list[StepInfo] = []
    step = getattr(evt, "step", None)
    if step is not None:
        steps.append(step)
    steps.extend(getattr(evt, "extra_steps", []) or [])
    return [(s, portfolio_id) for s in steps]


def test_step_reports_equal_the_getattr_reading() -> None:
    rng = random.Random(7)
    pid, run = uuid.uuid4(), uuid.uuid4()
    common: dict[str, Any] = {"run_id": run, "as_of": AS_OF}
    events: list[Event] = [
        PricesUpdated(**common, step=step_info(rng, "market_data"), portfolio_ids=[pid]),
        PricesUpdated(**common),
        GreeksComputed(**common, portfolio_id=pid, step=step_info(rng, "greeks")),
        GreeksComputed(**common, portfolio_id=pid),
        PortfolioUpdated(**common, portfolio_id=pid, change="valued", step=step_info(rng, "aggregations")),
        FactorsComputed(
            **common, portfolio_id=pid, step=step_info(rng, "factors"), extra_steps=[step_info(rng, "correlations")]
        ),
        FactorsComputed(**common, portfolio_id=pid, extra_steps=[step_info(rng, "correlations")]),
        StressComputed(
            **common,
            portfolio_id=pid,
            step=step_info(rng, "stress_tests"),
            extra_steps=[step_info(rng, "risk_scenarios")],
        ),
        StressComputed(**common, portfolio_id=pid),
        SnapshotCreated(**common, portfolio_id=pid, snapshot_date=AS_OF, step=step_info(rng, "snapshots")),
    ]
    for evt in events:
        assert step_reports(evt) == getattr_step_reports(evt)


def former_aggregate_steps(
    steps: Sequence[str],
    portfolio_ids: Sequence[uuid.UUID],
    rows: Sequence[StepRow],
    *,
    run_finished: bool,
    only_portfolio: uuid.UUID | None = None,
) -> list[dict[str, Any]]:
    """`aggregate_steps` as it was: every step scans every row; the first failure by a sorted search."""
    scope = [only_portfolio] if only_portfolio is not None else list(dict.fromkeys(portfolio_ids))
    in_scope = set(scope)
    rows = _latest_per_key(rows)
    names = list(steps) + sorted({r.job for r in rows} - set(steps), key=step_order)
    out: list[dict[str, Any]] = []
    for step in names:
        market_wide = step in MARKET_WIDE_STEPS
        if market_wide:
            mine = [r for r in rows if r.job == step and r.portfolio_id is None]
        else:
            mine = [r for r in rows if r.job == step and r.portfolio_id is not None and r.portfolio_id in in_scope]
        final = [r for r in mine if r.status in FINAL_JOB_RUN_STATUSES]
        completed = sum(1 for r in final if r.status == "completed")
        failed = sum(1 for r in final if r.status == "failed")
        expected = 1 if market_wide else len(scope)
        if expected and len(final) >= expected:
            if failed == 0:
                status = "completed" if completed else "skipped"
            else:
                status = "failed" if completed == 0 else "partial"
        elif mine and not run_finished:
            status = "running"
        elif mine:
            status = "partial" if completed else "failed"
        else:
            status = "skipped" if run_finished else "queued"
        starts = [r.started_at for r in mine if r.started_at is not None]
        ends = [r.finished_at for r in final if r.finished_at is not None]
        started_at = min(starts) if starts else None
        finished_at = max(ends) if ends and status not in ("running", "queued") else None
        records = [r.records_processed for r in mine if r.records_processed is not None]
        first_error = next(
            (r for r in sorted(mine, key=lambda r: str(r.portfolio_id or "")) if r.status == "failed"), None
        )
        error = None
        if first_error is not None:
            error = {
                "code": first_error.error_code or "FAILED",
                "message": first_error.error_message or "",
                "portfolio_id": str(first_error.portfolio_id) if first_error.portfolio_id else None,
            }
        out.append(
            {
                "job": step,
                "service": STEP_SERVICE.get(step, "unknown"),
                "status": status,
                "portfolios_total": None if market_wide else expected,
                "portfolios_completed": None if market_wide else completed,
                "portfolios_failed": None if market_wide else failed,
                "records_processed": sum(records) if records else None,
                "started_at": started_at,
                "finished_at": finished_at,
                "duration_ms": _duration_ms(started_at, finished_at),
                "error": error,
            }
        )
    return out


def generated_rows(rng: random.Random, scope: list[uuid.UUID], count: int) -> list[StepRow]:
    """Rows of any step and status, for portfolios in and out of scope, market-wide rows with and
    without a portfolio, repeated keys, missing times and records."""
    outsiders = [uuid.uuid4() for _ in range(2)]
    rows = []
    for _ in range(count):
        job = rng.choice(PIPELINE_STEPS)
        pid = rng.choice([None, *scope, *outsiders]) if scope else rng.choice([None, *outsiders])
        status = rng.choice(JOB_RUN_STATUSES)
        start = T0 + timedelta(seconds=rng.randint(0, 600)) if rng.random() < 0.9 else None
        end = start + timedelta(seconds=rng.randint(0, 60)) if start is not None and rng.random() < 0.8 else None
        rows.append(
            StepRow(
                job=job,
                portfolio_id=pid,
                status=status,
                started_at=start,
                finished_at=end,
                records_processed=rng.choice([None, 0, 3]),
                error_code=rng.choice([None, "BOOM"]),
                error_message=rng.choice([None, "", "no vol"]),
            )
        )
    return rows


@pytest.mark.parametrize("seed", range(40))
def test_aggregate_steps_equals_the_former_per_step_scans(seed: int) -> None:
    rng = random.Random(seed)
    scope = [uuid.uuid4() for _ in range(rng.choice([0, 1, 2, 5, 30]))]
    scope += scope[: rng.randint(0, 2)]  # a repeated id in the scope
    steps = list(PIPELINE_STEPS[rng.randint(0, 3) :]) if rng.random() < 0.8 else ["greeks"]
    rows = generated_rows(rng, scope, rng.choice([0, 1, 10, 200]))
    for run_finished in (False, True):
        only = rng.choice([None, *scope]) if scope else None
        for only_portfolio in {None, only}:
            assert aggregate_steps(
                steps, scope, rows, run_finished=run_finished, only_portfolio=only_portfolio
            ) == former_aggregate_steps(steps, scope, rows, run_finished=run_finished, only_portfolio=only_portfolio)
