"""The batch run state machine: completion, partial/failed outcomes, terminal step, idempotency."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from marketdata.batch_compute import (
    PIPELINE_STEPS,
    StepRow,
    aggregate_steps,
    evaluate_run,
    planned_steps,
)

P1 = uuid.UUID("00000000-0000-0000-0000-000000000001")
P2 = uuid.UUID("00000000-0000-0000-0000-000000000002")
T0 = datetime(2026, 11, 24, 21, 30, tzinfo=UTC)


def row(job: str, pid: uuid.UUID | None, status: str = "completed", minute: int = 0, **kw) -> StepRow:
    return StepRow(
        job=job,
        portfolio_id=pid,
        status=status,
        started_at=T0 + timedelta(minutes=minute),
        finished_at=T0 + timedelta(minutes=minute, seconds=30) if status != "running" else None,
        records_processed=kw.pop("records", 1),
        **kw,
    )


def full_run(status_for: dict[tuple[str, uuid.UUID | None], str] | None = None) -> list[StepRow]:
    status_for = status_for or {}
    rows = [row("market_data", None, status_for.get(("market_data", None), "completed"), records=400)]
    for minute, step in enumerate(PIPELINE_STEPS[1:], start=1):
        for pid in (P1, P2):
            rows.append(row(step, pid, status_for.get((step, pid), "completed"), minute))
    return rows


def test_run_all_with_every_step_reported_for_every_portfolio_is_completed() -> None:
    outcome = evaluate_run(PIPELINE_STEPS, [P1, P2], full_run())
    assert outcome.done
    assert outcome.status == "completed"
    assert outcome.portfolios_failed == []
    assert outcome.error_summary is None
    assert outcome.progress_pct == 100


def test_run_is_not_finished_until_terminal_step_reported_for_every_portfolio() -> None:
    rows = [r for r in full_run() if not (r.job == "snapshots" and r.portfolio_id == P2)]
    outcome = evaluate_run(PIPELINE_STEPS, [P1, P2], rows)
    assert not outcome.done
    assert outcome.status == "running"
    assert outcome.current_step == "snapshots"
    # 14 of the 15 expected step rows (1 market-wide + 7 steps × 2 portfolios) are final.
    assert outcome.progress_pct == int(100 * 14 / 15)


def test_failed_step_for_one_portfolio_makes_run_partial_once_later_steps_report() -> None:
    rows = full_run({("greeks", P1): "failed"})
    rows = [
        r if r.status != "failed" else StepRow(**{**r.__dict__, "error_code": "BSM_FAILED", "error_message": "no vol"})
        for r in rows
    ]
    outcome = evaluate_run(PIPELINE_STEPS, [P1, P2], rows)
    assert outcome.done
    assert outcome.status == "partial"
    assert outcome.portfolios_failed == [P1]
    assert outcome.error_summary is not None
    assert "greeks failed" in outcome.error_summary and "BSM_FAILED" in outcome.error_summary


def test_failed_upstream_step_alone_does_not_finish_the_run_before_terminal_reports() -> None:
    rows = [row("market_data", None), row("greeks", P1, "failed", 1), row("greeks", P2, "completed", 1)]
    outcome = evaluate_run(PIPELINE_STEPS, [P1, P2], rows)
    assert not outcome.done
    assert outcome.current_step == "aggregations"


def test_run_fails_when_terminal_step_failed_for_every_portfolio() -> None:
    rows = full_run({("snapshots", P1): "failed", ("snapshots", P2): "failed"})
    outcome = evaluate_run(PIPELINE_STEPS, [P1, P2], rows)
    assert outcome.done
    assert outcome.status == "failed"
    assert outcome.portfolios_failed == [P1, P2]


def test_market_data_failure_with_downstream_success_is_partial() -> None:
    outcome = evaluate_run(PIPELINE_STEPS, [P1, P2], full_run({("market_data", None): "failed"}))
    assert outcome.done
    assert outcome.status == "partial"
    assert outcome.portfolios_failed == []


def test_single_step_market_data_run_finishes_on_its_market_wide_row() -> None:
    steps = planned_steps("market_data", cascade=False)
    assert steps == ["market_data"]
    assert not evaluate_run(steps, [P1, P2], []).done
    assert not evaluate_run(steps, [P1, P2], [row("market_data", None, "running")]).done
    done = evaluate_run(steps, [P1, P2], [row("market_data", None)])
    assert done.done and done.status == "completed"
    failed = evaluate_run(steps, [P1, P2], [row("market_data", None, "failed")])
    assert failed.done and failed.status == "failed"


def test_terminal_step_is_the_last_planned_step_of_a_single_step_run() -> None:
    steps = planned_steps("greeks", cascade=False)
    rows = [row("greeks", P1), row("greeks", P2)]
    outcome = evaluate_run(steps, [P1, P2], rows)
    assert outcome.done and outcome.status == "completed"
    # With cascade the same rows leave the run waiting for every downstream step.
    cascading = planned_steps("greeks", cascade=True)
    assert cascading == list(PIPELINE_STEPS[1:])
    assert not evaluate_run(cascading, [P1, P2], rows).done


def test_duplicate_step_rows_change_nothing() -> None:
    rows = full_run({("greeks", P2): "failed"})
    once = evaluate_run(PIPELINE_STEPS, [P1, P2], rows)
    twice = evaluate_run(PIPELINE_STEPS, [P1, P2], rows + rows)
    assert once == twice
    assert aggregate_steps(PIPELINE_STEPS, [P1, P2], rows, run_finished=True) == aggregate_steps(
        PIPELINE_STEPS, [P1, P2], rows + rows, run_finished=True
    )


def test_empty_scope_run_all_waits_only_for_market_data() -> None:
    assert not evaluate_run(PIPELINE_STEPS, [], []).done
    outcome = evaluate_run(PIPELINE_STEPS, [], [row("market_data", None)])
    assert outcome.done and outcome.status == "completed"


def test_empty_scope_single_step_run_is_finished_at_once() -> None:
    outcome = evaluate_run(["snapshots"], [], [])
    assert outcome.done and outcome.status == "completed"


def test_skipped_portfolio_counts_as_neither_success_nor_failure() -> None:
    rows = full_run()
    rows = [r for r in rows if r.portfolio_id != P2] + [row(s, P2, "skipped", 5) for s in PIPELINE_STEPS[1:]]
    outcome = evaluate_run(PIPELINE_STEPS, [P1, P2], rows)
    assert outcome.done and outcome.status == "completed"


def test_aggregated_steps_count_portfolios_and_sum_records() -> None:
    rows = full_run({("greeks", P2): "failed"})
    agg = {s["job"]: s for s in aggregate_steps(PIPELINE_STEPS, [P1, P2], rows, run_finished=True)}
    assert list(agg) == list(PIPELINE_STEPS)
    md = agg["market_data"]
    assert md["service"] == "marketdata"
    assert md["status"] == "completed"
    assert md["portfolios_completed"] is None and md["portfolios_failed"] is None
    assert md["records_processed"] == 400
    assert md["duration_ms"] == 30_000
    greeks = agg["greeks"]
    assert greeks["status"] == "partial"
    assert (greeks["portfolios_total"], greeks["portfolios_completed"], greeks["portfolios_failed"]) == (2, 1, 1)
    assert greeks["error"]["portfolio_id"] == str(P2)
    assert agg["snapshots"]["status"] == "completed"
    assert agg["snapshots"]["records_processed"] == 2


def test_aggregated_steps_of_a_running_run_are_queued_then_skipped_when_finished() -> None:
    rows = [row("market_data", None), row("greeks", P1, minute=1)]
    running = {s["job"]: s["status"] for s in aggregate_steps(PIPELINE_STEPS, [P1, P2], rows, run_finished=False)}
    later = dict.fromkeys(PIPELINE_STEPS[2:], "queued")
    assert running == {"market_data": "completed", "greeks": "running", **later}
    ended = {s["job"]: s["status"] for s in aggregate_steps(PIPELINE_STEPS, [P1, P2], rows, run_finished=True)}
    assert ended == {"market_data": "completed", "greeks": "partial", **dict.fromkeys(PIPELINE_STEPS[2:], "skipped")}


def test_aggregated_steps_for_one_portfolio_count_only_that_portfolio() -> None:
    rows = full_run({("greeks", P2): "failed"})
    agg = {s["job"]: s for s in aggregate_steps(PIPELINE_STEPS, [P1, P2], rows, run_finished=True, only_portfolio=P1)}
    assert agg["greeks"]["status"] == "completed"
    assert agg["greeks"]["portfolios_total"] == 1


def test_planned_steps_follow_the_single_pipeline_constant() -> None:
    assert planned_steps("run_all", cascade=False) == list(PIPELINE_STEPS)
    assert planned_steps("aggregations", cascade=True) == [
        "aggregations",
        "factors",
        "correlations",
        "risk_scenarios",
        "stress_tests",
        "snapshots",
    ]
    assert planned_steps("stress_tests", cascade=True) == ["stress_tests", "snapshots"]
    assert planned_steps("correlations", cascade=True, include_correlations=False)[0] == "correlations"
    assert planned_steps("snapshots", cascade=True) == ["snapshots"]
    with_corr = ("market_data", "greeks", "aggregations", "factors", "correlations", "snapshots")
    assert "correlations" not in planned_steps("run_all", cascade=True, include_correlations=False, pipeline=with_corr)
    assert planned_steps("correlations", cascade=False, include_correlations=False, pipeline=with_corr) == [
        "correlations"
    ]
    with pytest.raises(ValueError):
        planned_steps("valuation", cascade=False)


def test_terminal_report_overtaking_an_earlier_failure_waits_for_it() -> None:
    # snapshot.created of P1 was processed before the greeks failure report of P1 arrived.
    rows = [r for r in full_run({("greeks", P1): "failed"}) if not (r.job == "greeks" and r.portfolio_id == P1)]
    early = evaluate_run(PIPELINE_STEPS, [P1, P2], rows)
    assert not early.done and early.terminal_reported and early.current_step == "greeks"
    late = evaluate_run(PIPELINE_STEPS, [P1, P2], full_run({("greeks", P1): "failed"}))
    assert late.done and late.status == "partial"
    # A report that never comes does not keep the run open once the caller allows it.
    forced = evaluate_run(PIPELINE_STEPS, [P1, P2], rows, allow_missing=True)
    assert forced.done and forced.status == "completed"
