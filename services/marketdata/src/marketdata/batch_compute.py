"""Pure batch logic: planned steps, scope hashes, the run state machine and schedule maths.

No I/O and no wall clock: callers pass rows, dates and `now` explicitly. The step list is the
single constant `PIPELINE_STEPS` (api.md §4.1, §5.2).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import orjson
from croniter import croniter

from common.events import STEP_NAMES
from common.formatting import json_default

# The daily run, in execution order (api.md §5.2, calculations.md §0.7). correlations rides on
# factors.computed; risk_scenarios and stress_tests both report on stress.computed.
PIPELINE_STEPS: tuple[str, ...] = STEP_NAMES

# Which service owns each step (api.md §4.1).
STEP_SERVICE: dict[str, str] = {
    "market_data": "marketdata",
    "greeks": "greeks",
    "aggregations": "ingest",
    "factors": "factors",
    "correlations": "factors",
    "risk_scenarios": "stress",
    "stress_tests": "stress",
    "snapshots": "stress",
}

# Steps that report once for the whole market (portfolio_id NULL) instead of once per portfolio.
MARKET_WIDE_STEPS: frozenset[str] = frozenset({"market_data"})

RUN_JOB_NAMES: tuple[str, ...] = ("run_all", *STEP_NAMES)
TRIGGERS: tuple[str, ...] = ("schedule", "manual", "api", "onboarding", "demo_reset")
RUN_STATUSES: tuple[str, ...] = ("queued", "running", "completed", "partial", "failed", "cancelled")
ACTIVE_RUN_STATUSES: tuple[str, ...] = ("queued", "running")
TERMINAL_RUN_STATUSES: frozenset[str] = frozenset({"completed", "partial", "failed", "cancelled"})
JOB_RUN_STATUSES: tuple[str, ...] = ("queued", "running", "completed", "failed", "skipped", "cancelled")
FINAL_JOB_RUN_STATUSES: frozenset[str] = frozenset({"completed", "failed", "skipped", "cancelled"})

# api.md §2.9: a batch run may take at most 60 minutes.
RUN_TIME_LIMIT_SECONDS = 60 * 60
# How long a run whose terminal step reported everywhere waits for earlier steps' late reports.
STRAGGLER_GRACE_SECONDS = 120


def step_order(step: str) -> int:
    """Position of a step in the full pipeline (unknown names sort last)."""
    return STEP_NAMES.index(step) if step in STEP_NAMES else len(STEP_NAMES)


def job_type_for(job_name: str) -> str:
    """Job type of the run's job row (api.md §3.5): `batch.run_all` or `batch.<step>`."""
    return f"batch.{job_name}"


def planned_steps(
    job_name: str,
    *,
    cascade: bool,
    include_correlations: bool = True,
    pipeline: Sequence[str] = PIPELINE_STEPS,
) -> list[str]:
    """Steps a run will execute: the whole pipeline, one step, or one step and its downstream steps."""
    if job_name == "run_all":
        steps = list(pipeline)
    elif job_name in pipeline:
        start = list(pipeline).index(job_name)
        steps = list(pipeline[start:]) if cascade else [job_name]
    else:
        raise ValueError(f"step {job_name!r} is not part of this release's pipeline {list(pipeline)}")
    if not include_correlations:
        steps = [s for i, s in enumerate(steps) if s != "correlations" or i == 0]
    return steps


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON (sorted keys) used for hashing."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=json_default)


def scope_hash(
    job_name: str,
    as_of: date,
    portfolio_ids: Iterable[UUID],
    params: Mapping[str, Any],
    steps: Sequence[str],
) -> bytes:
    """sha256 of (job_name, as_of_date, sorted portfolio ids, params, planned steps).

    The planned steps are part of the scope so that a cascading trigger is never answered with a
    non-cascading run of the same step.
    """
    payload = {
        "job_name": job_name,
        "as_of_date": as_of.isoformat(),
        "portfolio_ids": sorted(str(p) for p in portfolio_ids),
        "params": dict(params),
        "steps": list(steps),
    }
    return hashlib.sha256(canonical_json(payload)).digest()


@dataclass(frozen=True)
class StepRow:
    """One batch_job_run row as the state machine sees it (`repo.step_rows` fills it by position)."""

    job: str
    portfolio_id: UUID | None
    status: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    records_processed: int | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class RunOutcome:
    """Where a run stands: finished or not, the status it has (or would have), and why."""

    done: bool
    status: str
    portfolios_failed: list[UUID] = field(default_factory=list)
    error_summary: str | None = None
    progress_pct: int = 0
    current_step: str | None = None
    terminal_reported: bool = False


def _expected_keys(steps: Sequence[str], portfolio_ids: Sequence[UUID]) -> list[tuple[str, UUID | None]]:
    keys: list[tuple[str, UUID | None]] = []
    for step in steps:
        if step in MARKET_WIDE_STEPS:
            keys.append((step, None))
        else:
            keys.extend((step, pid) for pid in portfolio_ids)
    return keys


def expected_row_count(steps: Sequence[str], portfolio_ids: Sequence[UUID]) -> int:
    """How many final step rows a run needs before it can be finished (one per step and portfolio,
    one per market-wide step)."""
    scope = len(set(portfolio_ids))
    return sum(1 if step in MARKET_WIDE_STEPS else scope for step in steps)


def _summarise_failures(rows: Sequence[StepRow], limit: int = 1000) -> str | None:
    failed = sorted(
        (r for r in rows if r.status == "failed"),
        key=lambda r: (step_order(r.job), str(r.portfolio_id or "")),
    )
    if not failed:
        return None
    parts = []
    for r in failed:
        where = f"portfolio {r.portfolio_id}" if r.portfolio_id else "market-wide"
        code = r.error_code or "FAILED"
        message = f": {r.error_message}" if r.error_message else ""
        parts.append(f"{r.job} failed ({where}) {code}{message}")
    text = "; ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _latest_per_key(rows: Sequence[StepRow]) -> list[StepRow]:
    """One row per (step, portfolio): the database holds one; repeated reports keep the last."""
    by_key: dict[tuple[str, UUID | None], StepRow] = {}
    for row in rows:
        by_key[(row.job, row.portfolio_id)] = row
    return list(by_key.values())


def evaluate_run(
    steps: Sequence[str],
    portfolio_ids: Sequence[UUID],
    rows: Sequence[StepRow],
    *,
    allow_missing: bool = False,
) -> RunOutcome:
    """The run state machine (api.md §2.9, §5.2, users.md OPS-03).

    * The terminal step is the last planned step. The run is finished when every portfolio in
      scope has a final row of that step (or, for a market-wide terminal step, its one row).
      With an empty scope only market-wide steps are awaited.
    * Events of different steps travel on different queues, so a terminal report may overtake
      an earlier step's report (e.g. a greeks failure). The run therefore also waits for every
      earlier planned step's row, unless `allow_missing` (the caller saw no report for a grace
      period: a lost report must not keep the run open until the 60-minute limit).
    * A step that failed for a portfolio does not stop it: the later steps still report and count.
    * Finished status: `completed` when no row failed, `failed` when every terminal outcome
      failed, `partial` otherwise. Skipped rows (portfolio removed mid-run) count as neither.
    """
    if not steps:
        return RunOutcome(done=True, status="completed", progress_pct=100, terminal_reported=True)
    scope = list(dict.fromkeys(portfolio_ids))
    rows = _latest_per_key(rows)
    by_key = {(row.job, row.portfolio_id): row for row in rows}
    terminal = steps[-1]
    awaited: list[tuple[str, UUID | None]]
    if terminal in MARKET_WIDE_STEPS or not scope:
        awaited = [(s, None) for s in steps if s in MARKET_WIDE_STEPS] if not scope else [(terminal, None)]
    else:
        awaited = [(terminal, pid) for pid in scope]
    terminal_reported = all(key in by_key and by_key[key].status in FINAL_JOB_RUN_STATUSES for key in awaited)
    expected = _expected_keys(steps, scope)
    final = sum(1 for key in expected if key in by_key and by_key[key].status in FINAL_JOB_RUN_STATUSES)
    done = terminal_reported and (allow_missing or final == len(expected))
    pct = 100 if done else (int(100 * final / len(expected)) if expected else 0)
    current = None
    if not done:
        for step in steps:
            keys = [k for k in expected if k[0] == step]
            if not all(k in by_key and by_key[k].status in FINAL_JOB_RUN_STATUSES for k in keys):
                current = step
                break

    # A set: `in` on the scope list made this O(rows × portfolios), ~0.3 s at the end of a 1,000-portfolio run.
    in_scope = set(scope)
    relevant = [r for r in rows if r.portfolio_id is None or r.portfolio_id in in_scope or not scope]
    failed_pids = sorted({r.portfolio_id for r in relevant if r.status == "failed" and r.portfolio_id}, key=str)
    any_failed = any(r.status == "failed" for r in relevant)
    if not any_failed:
        status = "completed"
    else:
        outcomes = [by_key[k].status for k in awaited if k in by_key and by_key[k].status != "skipped"]
        status = "failed" if outcomes and all(s == "failed" for s in outcomes) else "partial"
    if not done:
        status = "running"
    return RunOutcome(
        done=done,
        status=status,
        portfolios_failed=failed_pids,
        error_summary=_summarise_failures(relevant),
        progress_pct=pct,
        current_step=current,
        terminal_reported=terminal_reported,
    )


def _duration_ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds() * 1000))


def aggregate_steps(
    steps: Sequence[str],
    portfolio_ids: Sequence[UUID],
    rows: Sequence[StepRow],
    *,
    run_finished: bool,
    only_portfolio: UUID | None = None,
) -> list[dict[str, Any]]:
    """Per-step view of a run across portfolios (api.md #18 `run.steps`), datetimes left as objects.

    Planned steps come first in pipeline order; steps that reported without being planned (a
    cascade beyond the plan) follow. A planned step with no report in a finished run is `skipped`.
    """
    scope = [only_portfolio] if only_portfolio is not None else list(dict.fromkeys(portfolio_ids))
    in_scope = set(scope)  # membership per row (a list made it O(rows × portfolios))
    rows = _latest_per_key(rows)
    names = list(steps) + sorted({r.job for r in rows} - set(steps), key=step_order)
    by_job: dict[str, list[StepRow]] = {}  # each step's rows in row order (one pass, not one per step)
    for r in rows:
        by_job.setdefault(r.job, []).append(r)
    out: list[dict[str, Any]] = []
    for step in names:
        market_wide = step in MARKET_WIDE_STEPS
        if market_wide:
            mine = [r for r in by_job.get(step, ()) if r.portfolio_id is None]
        else:
            mine = [r for r in by_job.get(step, ()) if r.portfolio_id is not None and r.portfolio_id in in_scope]
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
        elif mine:  # the run ended (time limit) before every portfolio reported
            status = "partial" if completed else "failed"
        else:
            status = "skipped" if run_finished else "queued"
        starts = [r.started_at for r in mine if r.started_at is not None]
        ends = [r.finished_at for r in final if r.finished_at is not None]
        started_at = min(starts) if starts else None
        finished_at = max(ends) if ends and status not in ("running", "queued") else None
        records = [r.records_processed for r in mine if r.records_processed is not None]
        # The failed row first in portfolio-id text order (min keeps the earliest of equal keys, as
        # the first failed row of a stable sort would; only failed rows are rendered as text).
        first_error = min(
            (r for r in mine if r.status == "failed"), key=lambda r: str(r.portfolio_id or ""), default=None
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


# --- schedules -------------------------------------------------------------------------------

MAX_CRON_LOOKAHEAD = 1000


def validate_cron(expression: str) -> None:
    """Raise ValueError unless `expression` is a valid 5-field cron expression."""
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise ValueError(f"invalid 5-field cron expression {expression!r}")


def next_fire(
    cron: str,
    timezone: str,
    after: datetime,
    *,
    trading_days_only: bool,
    is_trading_day: Callable[[date], bool],
) -> datetime:
    """Next firing strictly after `after` (UTC), evaluating `cron` in local time of `timezone`.

    DST is handled by evaluating in the zone (16:30 New York is 21:30Z in winter, 20:30Z in
    summer); with `trading_days_only` firings on non-trading local dates (weekends, NYSE holidays)
    are skipped.
    """
    validate_cron(cron)
    tz = ZoneInfo(timezone)
    if after.tzinfo is None:
        after = after.replace(tzinfo=UTC)
    itr = croniter(cron, after.astimezone(tz))
    for _ in range(MAX_CRON_LOOKAHEAD):
        candidate: datetime = itr.get_next(datetime)
        local = candidate.astimezone(tz)
        if not trading_days_only or is_trading_day(local.date()):
            return candidate.astimezone(UTC)
    raise ValueError(f"cron {cron!r} has no trading-day firing in {MAX_CRON_LOOKAHEAD} candidates")
