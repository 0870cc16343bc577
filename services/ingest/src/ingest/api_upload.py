"""Routes of the CSV upload (api.md #24, #59, #60, #65) plus the onboarding router (#61-#64).

`create_upload_router(ctx)` is included by `ingest.main` (this module path is part of that
contract, see `ingest.context`); it also registers the job resumers (an upload or onboarding job
interrupted by a restart is picked up again) and the purge loop. The work behind the routes lives
in `ingest.upload` and `ingest.onboarding`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from common.api import check_limit, envelope, page_block
from common.auth import Principal, current_principal
from common.errors import Conflict, NotFound, ValidationFailed
from common.jobs import prefer_wait_seconds
from ingest import upload_templates as templates
from ingest.context import IngestContext
from ingest.onboarding.jobs import COMPLETE_JOB, RETRY_JOB
from ingest.onboarding.service import OnboardingService
from ingest.onboarding_api import create_onboarding_router
from ingest.upload import clock, store
from ingest.upload.form import parse_upload_form
from ingest.upload.responses import own_upload, results_body, status_body
from ingest.upload.service import UploadService
from ingest.upload.urls import JOB_TYPE, results_url, status_url
from ingest.upload_schemas import (
    JobAcceptedResponse,
    TemplateListResponse,
    UploadResultsResponse,
    UploadStatusResponse,
)

MAX_ISSUE_PAGE = 1000

UPLOAD_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": ".csv, UTF-8, <= 10 MiB"},
                        "portfolio_id": {
                            "type": "string",
                            "format": "uuid",
                            "description": "Target portfolio; absent → a new portfolio in onboarding",
                        },
                        "portfolio_name": {
                            "type": "string",
                            "maxLength": 255,
                            "description": "New portfolios only; default 'Uploaded portfolio <YYYY-MM-DD>'",
                        },
                        "mode": {"type": "string", "enum": ["append", "replace"], "default": "append"},
                        "cash_balance": {"type": "string", "description": "USD, >= 0, up to 2 decimals"},
                        "auto_complete": {"type": "boolean", "default": False},
                    },
                }
            }
        },
    }
}


def create_upload_router(ctx: IngestContext) -> APIRouter:
    """Upload + onboarding routes sharing one UploadService/OnboardingService."""
    onboarding = OnboardingService(ctx)
    uploads = UploadService(ctx, onboarding)
    runner = ctx.plumbing.runner
    runner.resumers[JOB_TYPE] = uploads.resumer
    runner.resumers[COMPLETE_JOB] = lambda job: onboarding.run_completion
    runner.resumers[RETRY_JOB] = lambda job: onboarding.run_retry
    ctx.background.append(uploads.purge_loop)

    router = APIRouter(tags=["upload"])

    @router.post(
        "/api/v1/portfolio/upload",
        summary="Upload a CSV of positions (async)",
        description=(
            "Multipart upload of a positions file (format: csv-format.md). Answers 202 with a job and the "
            "`upload_id`; poll `status_url`, then read `result_url`. All or nothing: any row error rejects the "
            "file and nothing is written; row problems are not HTTP errors but appear in the results. "
            "Without `portfolio_id` a new portfolio is created in `onboarding`; with it the rows are appended "
            "(`mode=append`) or replace every open position (`mode=replace`). Quantities are signed "
            "(negative = short / written), entry prices are positive USD per share (options: premium per "
            "share). `cash_balance` is USD >= 0. `Prefer: wait=N` (N <= 10) answers 200 with the results when "
            "processing finishes in time."
        ),
        status_code=202,
        response_model=JobAcceptedResponse,
        responses={200: {"model": UploadResultsResponse, "description": "Finished within Prefer: wait"}},
        openapi_extra=UPLOAD_REQUEST_BODY,
    )
    async def upload(request: Request, principal: Principal = Depends(current_principal)) -> Response:
        req = await parse_upload_form(request)
        job, upload_id = await uploads.accept(principal, req)
        wait = prefer_wait_seconds(request.headers.get("prefer"))
        if wait > 0 and await runner.wait(upload_id, wait):
            up = await store.get_upload(ctx.db, upload_id)
            if up is not None and up["status"] not in ("queued", "processing"):
                data, total = await results_body(ctx.db, up, None, 50, 0)
                return envelope(data, request=request, page=page_block(50, 0, total))
        body = ctx.plumbing.ledger.accepted(job, False, upload_id=str(upload_id))
        body["status_url"] = status_url(upload_id)
        body["result_url"] = results_url(upload_id)
        return envelope(
            body, request=request, status=202, headers={"Location": status_url(upload_id), "Retry-After": "2"}
        )

    @router.get(
        "/api/v1/portfolio/upload/{upload_id}/status",
        summary="Status of an upload",
        description=(
            "Lifecycle `queued` → `processing` (phases `parsing`, `verifying_symbols`, `committing`) → "
            "`completed` | `rejected` (row errors, nothing written) | `failed` (system error; `error.retryable` "
            "says whether submitting the file again may succeed). `progress` counts file data rows; `next` "
            "lists the calls that make sense now."
        ),
        response_model=UploadStatusResponse,
    )
    async def upload_status(
        upload_id: UUID, request: Request, principal: Principal = Depends(current_principal)
    ) -> Response:
        up = await own_upload(ctx.db, principal, upload_id)
        return envelope(status_body(up), request=request)

    @router.get(
        "/api/v1/portfolio/upload/{upload_id}/results",
        summary="Validation report and outcome of an upload",
        description=(
            "Summary counts, then the issues (codes and messages of csv-format.md §6) sorted by row and column "
            "order. `limit` (1-1,000, default 50) / `offset` page the errors; `severity=error|warning` selects "
            "one list (the page then applies to it and the other list is empty); without `severity` warnings "
            "are paged with the same limit/offset and `page.total` counts errors. `positions_by_type`, `tags` "
            "{created, reused} and `securities` {verified, classified, unknown_classification} are filled for "
            "`completed` uploads. 409 INVALID_STATE while the upload is queued or processing."
        ),
        response_model=UploadResultsResponse,
    )
    async def upload_results(
        upload_id: UUID,
        request: Request,
        limit: int = Query(50),
        offset: int = Query(0),
        severity: str | None = Query(None, description="error | warning"),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        check_limit(limit, offset, max_limit=MAX_ISSUE_PAGE)
        if severity is not None and severity.lower() not in ("error", "warning"):
            raise ValidationFailed.field("query.severity", "must be error or warning", severity)
        up = await own_upload(ctx.db, principal, upload_id)
        if up["status"] in ("queued", "processing"):
            raise Conflict(
                f"Upload is still {up['status']}; results are available once it finishes",
                details={"upload_id": str(upload_id), "status": up["status"]},
                hint=f"GET {status_url(upload_id)}",
                retryable=True,
            )
        data, total = await results_body(ctx.db, up, severity.lower() if severity else None, limit, offset)
        return envelope(data, request=request, page=page_block(limit, offset, total))

    @router.get(
        "/api/v1/portfolio/templates",
        summary="CSV upload templates",
        description=(
            "Without `name`: the available templates. With `name` (basic | options | long_short): a `text/csv` "
            "file `sigmasight_<name>_template.csv` with the header `ticker,quantity,entry_price,entry_date,tags` "
            "and example rows that pass validation on the day they are downloaded (signed quantities; entry "
            "prices in USD per share, option premiums per share)."
        ),
        response_model=TemplateListResponse,
        responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
    )
    async def list_templates(
        request: Request,
        name: str | None = Query(None, description="basic | options | long_short"),
        principal: Principal = Depends(current_principal),
    ) -> Response:
        if name is not None:
            key = name.strip().lower()
            if key not in templates.TEMPLATES:
                raise NotFound("TEMPLATE", f"No template named '{name}' (basic, options, long_short)")
            return Response(
                templates.render(key, clock.eastern_today()),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{templates.file_name(key)}"'},
            )
        data = [
            {
                "name": t.name,
                "description": t.description,
                "columns": list(templates.COLUMNS),
                "download_url": f"/api/v1/portfolio/templates?name={t.name}",
                "file_name": templates.file_name(t.name),
            }
            for t in templates.TEMPLATES.values()
        ]
        return envelope(data, request=request, page=page_block(len(data), 0, len(data)))

    router.include_router(create_onboarding_router(ctx, onboarding))
    return router
