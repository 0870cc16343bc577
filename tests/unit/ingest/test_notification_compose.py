"""Notification drafts from events and outcomes, and the SMTP pieces (pure, no I/O)."""

from __future__ import annotations

import smtplib
import uuid
from datetime import UTC, date, datetime

import pytest

from common.events import FactorsComputed, GreeksComputed, SnapshotCreated, StepError, StepInfo, StressComputed
from ingest.notifications.compose import (
    FailedStep,
    Owner,
    UploadOutcome,
    failed_steps,
    onboarding_completed_draft,
    onboarding_stalled_draft,
    run_failure_drafts,
    stored_snapshots,
    unique,
    upload_outcome_draft,
)
from ingest.notifications.mailer import mail_body
from ingest.notifications.smtp import Mail, SmtpConfig, SmtpUrlError, build_message, is_permanent

AS_OF = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)
RUN = uuid.uuid4()
PID = uuid.uuid4()
USER = uuid.uuid4()
OWNER = Owner(PID, USER, "Growth book")


def step(name: str, status: str, error: str | None = None) -> StepInfo:
    return StepInfo(
        name=name,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        started_at=NOW,
        finished_at=NOW,
        error=StepError(code="BOOM", message=error) if error else None,
    )


def test_only_failed_steps_are_collected_including_extra_steps() -> None:
    events = [
        GreeksComputed(as_of=AS_OF, run_id=RUN, portfolio_id=PID, step=step("greeks", "completed")),
        FactorsComputed(
            as_of=AS_OF,
            run_id=RUN,
            portfolio_id=PID,
            step=step("factors", "partial"),
            extra_steps=[step("correlations", "failed", "no prices")],
        ),
        StressComputed(as_of=AS_OF, run_id=RUN, portfolio_id=PID, step=step("stress_tests", "failed", "matrix")),
        SnapshotCreated(as_of=AS_OF, portfolio_id=PID, snapshot_date=AS_OF),  # no step block
    ]
    failures = failed_steps(events)
    assert [(f.step.name, f.portfolio_id, f.run_id) for f in failures] == [
        ("correlations", PID, RUN),
        ("stress_tests", PID, RUN),
    ]


def test_run_failure_draft_names_step_reason_and_is_keyed_by_portfolio_run_and_step() -> None:
    failure = FailedStep(PID, RUN, AS_OF, step("greeks", "failed", "no volatility for 3 options"))
    (draft,) = run_failure_drafts([failure, failure], {PID: OWNER})  # duplicates fold into one
    assert draft.kind == "run_failed" and draft.severity == "error" and draft.user_id == USER
    assert draft.subject == f"{PID}/{RUN}/greeks"
    assert draft.title == "Greeks failed for Growth book"
    assert "no volatility for 3 options" in draft.message and "2026-11-24" in draft.message
    assert draft.details == {
        "run_id": str(RUN),
        "as_of": "2026-11-24",
        "step": "greeks",
        "error": {"code": "BOOM", "message": "no volatility for 3 options"},
    }
    assert draft.link == f"/api/v1/portfolio?portfolio_id={PID}"


def test_run_failure_without_run_id_is_keyed_by_date_and_unknown_portfolios_are_skipped() -> None:
    gone = uuid.uuid4()
    failures = [
        FailedStep(PID, None, AS_OF, step("aggregations", "failed")),
        FailedStep(gone, None, AS_OF, step("aggregations", "failed")),
    ]
    (draft,) = run_failure_drafts(failures, {PID: OWNER})
    assert draft.subject == f"{PID}/2026-11-24/aggregations"
    assert "no reason was reported" in draft.message and draft.details["error"] is None


def test_long_error_texts_are_clipped() -> None:
    failure = FailedStep(PID, RUN, AS_OF, step("factors", "failed", "x" * 2000))
    (draft,) = run_failure_drafts([failure], {PID: OWNER})
    assert len(draft.details["error"]["message"]) == 500 and draft.details["error"]["message"].endswith("…")


def test_stored_snapshots_skip_failed_snapshot_steps_and_keep_the_earliest_date() -> None:
    other = uuid.uuid4()
    events = [
        SnapshotCreated(as_of=AS_OF, portfolio_id=PID, snapshot_date=AS_OF),
        SnapshotCreated(as_of=AS_OF, portfolio_id=PID, snapshot_date=date(2026, 11, 23)),
        SnapshotCreated(as_of=AS_OF, portfolio_id=other, snapshot_date=AS_OF, step=step("snapshots", "failed")),
    ]
    assert stored_snapshots(events) == {PID: date(2026, 11, 23)}


def test_onboarding_drafts_share_the_portfolio_subject_but_not_the_kind() -> None:
    done = onboarding_completed_draft(OWNER, AS_OF)
    stalled = onboarding_stalled_draft(OWNER, {"message": "the initial run failed", "run_id": str(RUN)})
    assert (done.kind, done.subject, done.severity) == ("onboarding_completed", str(PID), "info")
    assert done.details == {"first_snapshot_date": "2026-11-24"} and "2026-11-24" in done.message
    assert (stalled.kind, stalled.subject, stalled.severity) == ("onboarding_failed", str(PID), "warning")
    assert "the initial run failed" in stalled.message and stalled.details["run_id"] == str(RUN)
    assert len(unique([done, stalled, done])) == 2


def outcome(**overrides: object) -> UploadOutcome:
    values: dict[str, object] = {
        "upload_id": uuid.uuid4(),
        "user_id": USER,
        "mode": "new",
        "status": "rejected",
        "file_name": "positions.csv",
        "portfolio_id": None,
        "portfolio_name": None,
        "error_count": 3,
        "error_code": None,
        "error_message": None,
        "retryable": None,
    }
    values.update(overrides)
    return UploadOutcome(**values)  # type: ignore[arg-type]


def test_a_rejected_new_upload_is_a_failed_onboarding_pointing_at_the_results() -> None:
    up = outcome()
    draft = upload_outcome_draft(up)
    assert draft is not None
    assert (draft.kind, draft.subject, draft.portfolio_id) == ("onboarding_failed", f"upload/{up.upload_id}", None)
    assert draft.title == "Upload of positions.csv was rejected" and "3 error(s)" in draft.message
    assert draft.link == f"/api/v1/portfolio/upload/{up.upload_id}/results"


def test_a_failed_upload_into_an_existing_portfolio_is_an_upload_failure() -> None:
    up = outcome(
        mode="append",
        status="failed",
        portfolio_id=PID,
        portfolio_name="Growth book",
        error_code="MARKET_DATA_UNAVAILABLE",
        error_message="market data could not be reached",
        retryable=True,
    )
    draft = upload_outcome_draft(up)
    assert draft is not None
    assert (draft.kind, draft.portfolio_id) == ("upload_failed", PID)
    assert "into Growth book" in draft.message and "submit the file again" in draft.message
    assert draft.details["error_code"] == "MARKET_DATA_UNAVAILABLE"


@pytest.mark.parametrize("status", ["completed", "queued", "processing"])
def test_other_upload_statuses_make_no_notification(status: str) -> None:
    assert upload_outcome_draft(outcome(status=status)) is None


# ------------------------------------------------------------------------------------ SMTP


def test_smtp_url_forms() -> None:
    plain = SmtpConfig.from_url("smtp://mailer:s%40cret@mail.example:2525")
    assert (plain.host, plain.port, plain.username, plain.password) == ("mail.example", 2525, "mailer", "s@cret")
    assert not plain.implicit_tls and not plain.starttls
    assert SmtpConfig.from_url("smtp://relay?starttls=true").starttls
    submission = SmtpConfig.from_url("smtp+starttls://u:p@relay")
    assert submission.starttls and submission.port == 587
    tls = SmtpConfig.from_url("smtps://relay")
    assert tls.implicit_tls and tls.port == 465 and tls.username is None


@pytest.mark.parametrize("url", ["http://relay", "smtp://", "smtp://relay:notaport"])
def test_unusable_smtp_urls_are_refused(url: str) -> None:
    with pytest.raises(SmtpUrlError):
        SmtpConfig.from_url(url)


def test_message_headers_identify_the_notification() -> None:
    ident = uuid.uuid4()
    mail = Mail(ident, "ann@example.com", "Ann Lee", "[SigmaSight] Greeks failed", "body\n", NOW)
    msg = build_message(mail, "SigmaSight <n@example.com>")
    assert msg["To"] == "Ann Lee <ann@example.com>" and msg["From"] == "SigmaSight <n@example.com>"
    assert str(ident) in msg["Message-ID"] and msg["X-SigmaSight-Notification-Id"] == str(ident)
    assert msg["Auto-Submitted"] == "auto-generated" and msg.get_content() == "body\n"


def test_mail_body_points_at_the_details_and_the_list() -> None:
    body = mail_body("Greeks failed.", "/api/v1/portfolio?portfolio_id=x")
    assert body.startswith("Greeks failed.\n") and "GET /api/v1/portfolio?portfolio_id=x" in body
    assert "GET /api/v1/notifications" in body


def test_5xx_answers_are_permanent_and_4xx_or_connection_errors_are_not() -> None:
    assert is_permanent(smtplib.SMTPRecipientsRefused({"a@b": (550, b"no such user")}))
    assert not is_permanent(smtplib.SMTPRecipientsRefused({"a@b": (451, b"try later")}))
    assert is_permanent(smtplib.SMTPDataError(554, b"rejected"))
    assert not is_permanent(smtplib.SMTPDataError(421, b"busy"))
    assert not is_permanent(ConnectionRefusedError())
