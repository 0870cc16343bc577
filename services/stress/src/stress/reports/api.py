"""Report routes (api.md #66–#68, #75). Thin: validation and envelopes here, work in ReportService."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response

from common.api import check_limit, envelope, page_block, parse_enum_multi, parse_sort
from common.auth import Principal, current_principal
from common.errors import ValidationFailed
from common.jobs import prefer_wait_seconds
from common.schemas import error_responses
from stress.exports.api import as_utc, file_response
from stress.exports.tables import REPORT_FORMATS, REPORT_STATUSES, REPORT_TRIGGERS
from stress.reports import store
from stress.reports.present import list_item, status_url
from stress.reports.schemas import (
    GenerateRequest,
    ReportAcceptedResponse,
    ReportListResponse,
    ReportStatusResponse,
)
from stress.reports.service import ReportService

GENERATE_DESCRIPTION = (
    "Build a portfolio report (async: 202 with a `report.generate` job whose uuid is the `report_id`; "
    "`status_url` = #67). Body: `portfolio_id` (default: your default portfolio), `formats` (md, json, csv, pdf; "
    "default md, json, csv), `sections` (summary, exposures, positions, greeks, factors, correlations, stress, "
    "performance; default all — the Markdown always keeps the seven headings of users.md §4.5 and says when a "
    "section was not requested), `as_of_date` (a date with a stored snapshot; default the latest). Files: "
    "`<slug>_report_<date>.md` (narrative and tables, including what changed since the previous snapshot split "
    "into market moves Σ q_prev·Δu and position changes Σ Δq·u_today), `<slug>_data_<date>.json` (every "
    "number), `<slug>_positions_<date>.csv` (one row per position) and `<slug>_report_<date>.pdf` (the Markdown "
    "with charts). A report on fixture prices says so on its first line. Money is USD as 2-dp strings; ratios "
    "are fractions. `Prefer: wait=N` (N ≤ 10) answers 200 with the #67 body when the report is done in time. "
    "404 PORTFOLIO_NOT_FOUND, NOT_CALCULATED (no snapshot for the date); 422 UNSUPPORTED_FORMAT (pdf disabled)."
)


def create_report_router(reports: ReportService) -> APIRouter:
    """Routes #66–#68 and #75."""
    router = APIRouter(tags=["reports"])

    @router.post(
        "/api/v1/reports/generate",
        summary="Generate a portfolio report (#66)",
        description=GENERATE_DESCRIPTION,
        status_code=202,
        response_model=ReportAcceptedResponse,
        responses={200: {"model": ReportStatusResponse, "description": "Prefer: wait=N and the report finished"}}
        | error_responses(401, 404, 422),
    )
    async def generate(
        request: Request,
        body: GenerateRequest,
        prefer: str | None = Header(None, description="`wait=N` (N ≤ 10) to wait for the report"),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        job, report_id, deduplicated = await reports.accept(principal, body)
        wait = prefer_wait_seconds(prefer)
        if wait > 0 and await reports.plumbing.runner.wait(report_id, wait):
            data = await reports.status(principal, report_id)
            if data["status"] in ("completed", "failed"):
                return envelope(data, request=request)
        accepted = reports.plumbing.ledger.accepted(job, deduplicated, report_id=str(report_id))
        accepted["status_url"] = status_url(report_id)
        return envelope(
            accepted, request=request, status=202, headers={"Location": accepted["status_url"], "Retry-After": "2"}
        )

    @router.get(
        "/api/v1/reports/{report_id}/status",
        summary="Report status and files (#67)",
        description=(
            "`status` queued | running | completed | failed | expired (files are kept 30 days), progress, the "
            "files with name, media type, size, SHA-256 and download URL, and the error of a failed report. "
            "404 REPORT_NOT_FOUND (also for another user's report)."
        ),
        response_model=ReportStatusResponse,
        responses=error_responses(401, 404, 422),
    )
    async def report_status(
        request: Request, report_id: UUID, principal: Principal = Depends(current_principal)
    ) -> Response:
        return envelope(await reports.status(principal, report_id), request=request)

    @router.get(
        "/api/v1/reports/{report_id}/download",
        summary="Download a report file (#68)",
        description=(
            "The file (`text/markdown`, `application/json`, `text/csv` or `application/pdf`) with "
            "`Content-Disposition: attachment`. `format` is required when the report has several files. Each "
            "download is recorded in the export history (#70). 404 REPORT_NOT_FOUND (or a format not generated); "
            "409 REPORT_NOT_READY; 410 GONE after 30 days."
        ),
        responses={200: {"description": "The file", "content": {"text/markdown": {}, "application/pdf": {}}}}
        | error_responses(401, 404, 409, 410, 422),
    )
    async def download_report(
        report_id: UUID,
        format: str | None = Query(None, description="md | json | csv | pdf"),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        chosen = parse_enum_multi(format, REPORT_FORMATS, "format")
        if len(chosen) > 1:
            raise ValidationFailed.field("query.format", "give one format", format)
        return file_response(await reports.download(principal, report_id, chosen[0] if chosen else None))

    @router.get(
        "/api/v1/reports",
        summary="The caller's reports, newest first (#75)",
        description=(
            "On-demand (`trigger: api`) and daily (`trigger: batch`, made after each snapshot) reports of one "
            "portfolio (`portfolio_id`, 404 PORTFOLIO_NOT_FOUND when not yours) or of all your portfolios. "
            "Filters: `status` (multi), `trigger`, `as_of_date`, `since`/`until` on `created_at`. Sort: "
            "`created_at` (default `-created_at`) or `as_of_date`, `-` = descending; id breaks ties. Expired "
            "reports stay listed with `status: expired`."
        ),
        response_model=ReportListResponse,
        responses=error_responses(401, 404, 422),
    )
    async def list_reports(
        request: Request,
        portfolio_id: UUID | None = Query(None),
        status: str | None = Query(None, description="queued, running, completed, failed, expired (comma-separated)"),
        trigger: str | None = Query(None, description="api | batch"),
        as_of_date: date | None = Query(None),
        since: datetime | None = Query(None, description="created_at ≥ since (ISO 8601, UTC)"),
        until: datetime | None = Query(None, description="created_at ≤ until (ISO 8601, UTC)"),
        sort: str | None = Query(None, description="created_at | as_of_date, `-` = descending (default -created_at)"),
        limit: int = Query(50, description="1–500"),
        offset: int = Query(0, description="≥ 0"),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        limit, offset = check_limit(limit, offset)
        triggers = parse_enum_multi(trigger, REPORT_TRIGGERS, "trigger")
        if len(triggers) > 1:
            raise ValidationFailed.field("query.trigger", "give one trigger", trigger)
        start, end = as_utc(since), as_utc(until)
        if start is not None and end is not None and start > end:
            raise ValidationFailed.field("query.since", "must be on or before until", request.query_params["since"])
        query = store.ListQuery(
            portfolio_ids=await reports.portfolio_scope(principal, portfolio_id),
            statuses=parse_enum_multi(status, REPORT_STATUSES, "status"),
            trigger=triggers[0] if triggers else None,
            as_of_date=as_of_date,
            since=start,
            until=end,
            order=parse_sort(sort, ("created_at", "as_of_date"), "-created_at"),
            limit=limit,
            offset=offset,
        )
        rows, total = await reports.listing(query)
        return envelope([list_item(r) for r in rows], request=request, page=page_block(limit, offset, total))

    return router
