"""What a notification says: drafts built from events and stored state. Pure (no I/O).

A draft's natural key is (user_id, kind, subject); storing is idempotent on it, so the same event
delivered twice, or a resumed job, never makes a second notification.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, TypeAlias
from uuid import UUID

from common.events import FactorsComputed, GreeksComputed, PortfolioUpdated, SnapshotCreated, StepInfo, StressComputed
from ingest.onboarding.jobs import portfolio_url
from ingest.upload.urls import results_url

Kind = Literal["onboarding_completed", "onboarding_failed", "upload_failed", "run_failed"]
Severity = Literal["info", "warning", "error"]
StepEvent: TypeAlias = GreeksComputed | PortfolioUpdated | FactorsComputed | StressComputed | SnapshotCreated

MAX_ERROR_TEXT = 500
STEP_LABELS = {
    "market_data": "Market data",
    "greeks": "Greeks",
    "aggregations": "Valuation",
    "factors": "Factor exposures",
    "correlations": "Position correlations",
    "risk_scenarios": "Market-risk scenarios",
    "stress_tests": "Stress tests",
    "snapshots": "Daily snapshot",
}


@dataclass(frozen=True)
class Draft:
    """A notification about to be stored."""

    user_id: UUID
    kind: Kind
    subject: str
    severity: Severity
    title: str
    message: str
    portfolio_id: UUID | None = None
    link: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[UUID, str, str]:
        return (self.user_id, self.kind, self.subject)


@dataclass(frozen=True)
class Owner:
    """A live portfolio and its user."""

    portfolio_id: UUID
    user_id: UUID
    name: str


@dataclass(frozen=True)
class FailedStep:
    """One step of a run that failed for one portfolio."""

    portfolio_id: UUID
    run_id: UUID | None
    as_of: date
    step: StepInfo


@dataclass(frozen=True)
class UploadOutcome:
    """The columns of a finished upload a notification needs."""

    upload_id: UUID
    user_id: UUID
    mode: str
    status: str
    file_name: str
    portfolio_id: UUID | None
    portfolio_name: str | None
    error_count: int | None
    error_code: str | None
    error_message: str | None
    retryable: bool | None


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "…"


def unique(drafts: Iterable[Draft]) -> list[Draft]:
    """Drafts with distinct natural keys (the first wins), in order."""
    seen: dict[tuple[UUID, str, str], Draft] = {}
    for draft in drafts:
        seen.setdefault(draft.key, draft)
    return list(seen.values())


# ---------------------------------------------------------------------------------- run failures


def failed_steps(events: Sequence[StepEvent]) -> list[FailedStep]:
    """Every step reported `failed` for a portfolio (`step` and the additive `extra_steps`)."""
    out: list[FailedStep] = []
    for event in events:
        steps = [event.step] if event.step is not None else []
        steps.extend(getattr(event, "extra_steps", ()))
        out.extend(FailedStep(event.portfolio_id, event.run_id, event.as_of, s) for s in steps if s.status == "failed")
    return out


def run_failure_drafts(failures: Sequence[FailedStep], owners: Mapping[UUID, Owner]) -> list[Draft]:
    """One `run_failed` notification per (portfolio, run, step); portfolios no longer live are skipped."""
    drafts = []
    for failure in failures:
        owner = owners.get(failure.portfolio_id)
        if owner is None:
            continue
        step = failure.step
        label = STEP_LABELS.get(step.name, step.name)
        run = str(failure.run_id) if failure.run_id is not None else failure.as_of.isoformat()
        reason = _clip(step.error.message) if step.error is not None else "no reason was reported"
        drafts.append(
            Draft(
                user_id=owner.user_id,
                kind="run_failed",
                subject=f"{owner.portfolio_id}/{run}/{step.name}",
                severity="error",
                title=f"{label} failed for {owner.name}",
                message=(
                    f"The {label.lower()} step of the {failure.as_of.isoformat()} run failed for {owner.name}: "
                    f"{reason}. Later steps used the data already stored and mark their results partial; "
                    "the next run tries again."
                ),
                portfolio_id=owner.portfolio_id,
                link=portfolio_url(owner.portfolio_id),
                details={
                    "run_id": None if failure.run_id is None else str(failure.run_id),
                    "as_of": failure.as_of.isoformat(),
                    "step": step.name,
                    "error": None if step.error is None else {"code": step.error.code, "message": reason},
                },
            )
        )
    return unique(drafts)


# ---------------------------------------------------------------------------------- onboarding


def stored_snapshots(events: Sequence[SnapshotCreated]) -> dict[UUID, date]:
    """Earliest stored snapshot date per portfolio in a batch (a failed snapshot step stored nothing)."""
    out: dict[UUID, date] = {}
    for event in events:
        if event.step is not None and event.step.status == "failed":
            continue
        known = out.get(event.portfolio_id)
        out[event.portfolio_id] = event.snapshot_date if known is None else min(known, event.snapshot_date)
    return out


def onboarding_completed_draft(owner: Owner, snapshot_date: date) -> Draft:
    """The first snapshot of an onboarded portfolio is stored: onboarding is complete."""
    return Draft(
        user_id=owner.user_id,
        kind="onboarding_completed",
        subject=str(owner.portfolio_id),
        severity="info",
        title=f"{owner.name} is onboarded",
        message=(
            f"Onboarding of {owner.name} is complete: its first snapshot ({snapshot_date.isoformat()}) is stored "
            "and the portfolio is part of the daily run."
        ),
        portfolio_id=owner.portfolio_id,
        link=portfolio_url(owner.portfolio_id),
        details={"first_snapshot_date": snapshot_date.isoformat()},
    )


def onboarding_stalled_draft(owner: Owner, result: Mapping[str, Any]) -> Draft:
    """The onboarding.complete job ended without a first snapshot (initial run failed or too slow)."""
    reason = str(result.get("message") or "the initial run did not produce a snapshot")
    return Draft(
        user_id=owner.user_id,
        kind="onboarding_failed",
        subject=str(owner.portfolio_id),
        severity="warning",
        title=f"Onboarding of {owner.name} finished without analytics",
        message=f"{owner.name} is active, but its first analytics are not ready: {_clip(reason)}.",
        portfolio_id=owner.portfolio_id,
        link=portfolio_url(owner.portfolio_id),
        details={"run_id": result.get("run_id"), "run_status": result.get("run_status")},
    )


def upload_outcome_draft(upload: UploadOutcome) -> Draft | None:
    """A rejected or failed upload; None for any other status. A `new` upload was an onboarding."""
    if upload.status not in ("rejected", "failed"):
        return None
    onboarding = upload.mode == "new"
    target = "" if onboarding or not upload.portfolio_name else f" into {upload.portfolio_name}"
    if upload.status == "rejected":
        errors = upload.error_count or 0
        title = f"Upload of {upload.file_name} was rejected"
        message = (
            f"{errors} error(s) in {upload.file_name}: nothing was imported{target}. The results list every "
            "problem by row and column; fix them and upload the file again."
        )
    else:
        title = f"Upload of {upload.file_name} failed"
        again = "submit the file again" if upload.retryable else "contact support if it keeps failing"
        reason = _clip(upload.error_message or "a system error")
        message = f"The upload of {upload.file_name}{target} could not be processed ({reason}); {again}."
    return Draft(
        user_id=upload.user_id,
        kind="onboarding_failed" if onboarding else "upload_failed",
        subject=f"upload/{upload.upload_id}",
        severity="error",
        title=title,
        message=message,
        portfolio_id=None if onboarding else upload.portfolio_id,
        link=results_url(upload.upload_id),
        details={
            "upload_id": str(upload.upload_id),
            "status": upload.status,
            "mode": upload.mode,
            "errors": upload.error_count,
            "error_code": upload.error_code,
        },
    )
