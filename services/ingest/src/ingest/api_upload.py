"""Routes of the CSV upload (api.md #24, #59, #60, #65) plus the onboarding router (#61-#64).

`create_upload_router(ctx)` is included by `ingest.main`; it also registers the job resumers
(an upload or onboarding job interrupted by a restart is picked up again) and the purge loop.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from common.api import check_limit, envelope, page_block
from common.auth import Principal, current_principal
from common.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from common.formatting import iso_datetime
from common.jobs import prefer_wait_seconds
from common.logging import request_id_var
from ingest import upload_repository as repo
from ingest import upload_templates as templates
from ingest.context import IngestContext
from ingest.models_upload import MAX_UPLOAD_BYTES
from ingest.onboarding_api import create_onboarding_router
from ingest.onboarding_service import COMPLETE_JOB, RETRY_JOB, OnboardingService
from ingest.upload_schemas import (
    JobAcceptedResponse,
    TemplateListResponse,
    UploadResultsResponse,
    UploadStatusResponse,
)
from ingest.upload_service import (
    JOB_TYPE,
    UploadRequest,
    UploadService,
    eastern_today,
    results_url,
    status_url,
)

FORM_FIELDS = {"file", "portfolio_id", "portfolio_name", "mode", "cash_balance", "auto_complete"}
CSV_CONTENT_TYPES = {
    "",
    "text/csv",
    "text/plain",
    "text/x-csv",
    "text/comma-separated-values",
    "application/csv",
    "application/x-csv",
    "application/vnd.ms-excel",  # what Windows browsers send for .csv files
    "application/octet-stream",
}
MULTIPART_SLACK = 1024 * 1024  # form fields and boundaries around a 10 MiB file
MAX_ISSUE_PAGE = 1000
_MONEY = re.compile(r"^\+?(\d+(\.\d{0,2})?|\.\d{1,2})$")

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
        req = await _parse_upload(request)
        job, upload_id = await uploads.accept(principal, req)
        wait = prefer_wait_seconds(request.headers.get("prefer"))
        if wait > 0 and await runner.wait(upload_id, wait):
            up = await repo.get_upload(ctx.db, upload_id)
            if up is not None and up["status"] not in ("queued", "processing"):
                data, total = await _results(ctx, up, None, 50, 0)
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
        up = await _own_upload(ctx, principal, upload_id)
        return envelope(_status(up), request=request)

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
        up = await _own_upload(ctx, principal, upload_id)
        if up["status"] in ("queued", "processing"):
            raise Conflict(
                f"Upload is still {up['status']}; results are available once it finishes",
                details={"upload_id": str(upload_id), "status": up["status"]},
                hint=f"GET {status_url(upload_id)}",
                retryable=True,
            )
        data, total = await _results(ctx, up, severity.lower() if severity else None, limit, offset)
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
                templates.render(key, eastern_today()),
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


# ------------------------------------------------------------------------------------- helpers


async def _own_upload(ctx: IngestContext, principal: Principal, upload_id: UUID) -> dict[str, Any]:
    up = await repo.get_upload(ctx.db, upload_id)
    if up is None or (up["user_id"] != principal.user_id and not principal.is_admin):
        raise NotFound("UPLOAD")
    return up


def _status(up: dict[str, Any]) -> dict[str, Any]:
    uid: UUID = up["id"]
    pid = up["portfolio_id"]
    status = up["status"]
    nxt: list[str]
    if status in ("queued", "processing"):
        nxt = [f"GET {status_url(uid)}"]
    elif status == "completed" and up["mode"] == "new":
        nxt = [
            f"GET {results_url(uid)}",
            f"GET /api/v1/portfolio/onboarding/{pid}/preview",
            f"POST /api/v1/portfolio/onboarding/{pid}/validate",
            f"POST /api/v1/portfolio/onboarding/{pid}/complete",
        ]
    elif status == "completed":
        nxt = [f"GET {results_url(uid)}", f"GET /api/v1/positions?portfolio_id={pid}"]
    elif status == "rejected":
        nxt = [f"GET {results_url(uid)}", "POST /api/v1/portfolio/upload"]
    else:
        nxt = ["POST /api/v1/portfolio/upload"] if up.get("retryable") else [f"GET {results_url(uid)}"]
    error = None
    if status == "failed":
        error = {
            "code": up["error_code"] or "INTERNAL_ERROR",
            "message": up["error_message"] or "",
            "retryable": bool(up["retryable"]),
        }
    return {
        "upload_id": str(uid),
        "status": status,
        "phase": up["phase"],
        "progress": {"rows_total": up["rows_total"], "rows_processed": int(up["rows_processed"] or 0)},
        "portfolio_id": None if pid is None else str(pid),
        "mode": up["mode"],
        "file_name": up["file_name"],
        "created_at": iso_datetime(up["created_at"]),
        "finished_at": iso_datetime(up["finished_at"]),
        "error": error,
        "next": nxt,
    }


async def _results(
    ctx: IngestContext, up: dict[str, Any], severity: str | None, limit: int, offset: int
) -> tuple[dict[str, Any], int]:
    """The #60 body and the total its page counts."""
    uid: UUID = up["id"]
    errors: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    total = 0
    if severity in (None, "error"):
        errors, total = await repo.issue_page(ctx.db, uid, "error", limit, offset)
    if severity in (None, "warning"):
        warnings, n_warnings = await repo.issue_page(ctx.db, uid, "warning", limit, offset)
        if severity == "warning":
            total = n_warnings
    outcome = up.get("outcome") or {}
    completed = up["status"] == "completed"
    error = None
    if up["status"] == "failed":
        error = {
            "code": up["error_code"] or "INTERNAL_ERROR",
            "message": up["error_message"] or "",
            "retryable": bool(up["retryable"]),
        }
    data = {
        "upload_id": str(uid),
        "status": up["status"],
        "portfolio_id": None if up["portfolio_id"] is None else str(up["portfolio_id"]),
        "file_name": up["file_name"],
        "summary": {
            "rows_total": up["rows_total"] or 0,
            "rows_valid": up["rows_valid"] or 0,
            "rows_invalid": up["rows_invalid"] or 0,
            "errors": up["error_count"] or 0,
            "warnings": up["warning_count"] or 0,
            "positions_created": up["positions_created"] or 0,
            "positions_closed": up["positions_closed"] or 0,
        },
        "errors": errors,
        "warnings": warnings,
        "positions_by_type": _by_type(outcome.get("positions_by_type")) if completed else None,
        "tags": outcome.get("tags") if completed else None,
        "securities": outcome.get("securities") if completed else None,
        "onboarding": outcome.get("onboarding") if completed else None,
        "error": error,
    }
    return data, total


def _by_type(counts: dict[str, int] | None) -> dict[str, int] | None:
    """Counts in the order of api.md §3.1 (jsonb does not keep key order)."""
    if counts is None:
        return None
    return {t: int(counts.get(t, 0)) for t in ("LONG", "SHORT", "LC", "LP", "SC", "SP")}


def _text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationFailed.field(f"body.{field}", "must be a text field", None)
    value = value.strip()
    return value or None


def _file_name(raw: str | None) -> str:
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:255]


async def _parse_upload(request: Request) -> UploadRequest:
    """Validate the multipart form of #24 (400/413/415/422 as api.md lists them)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedMediaType("Uploads are multipart/form-data with a `file` part")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_UPLOAD_BYTES + MULTIPART_SLACK:
        raise PayloadTooLarge(f"The file is larger than {MAX_UPLOAD_BYTES} bytes (10 MiB)")
    try:
        form = await request.form(max_files=4, max_fields=32)
    except Exception as exc:  # malformed multipart
        raise BadRequest("The multipart body could not be parsed") from exc
    try:
        files = form.getlist("file")
        if not files:
            raise BadRequest("A `file` part with the CSV is required")
        if len(files) > 1:
            raise BadRequest("Send exactly one `file` part")
        part = files[0]
        if not isinstance(part, UploadFile):
            raise BadRequest("The `file` part must be a file (with a filename), not a text field")
        content = await part.read(MAX_UPLOAD_BYTES + 1)
        if len(content) > MAX_UPLOAD_BYTES:
            raise PayloadTooLarge(f"The file is larger than {MAX_UPLOAD_BYTES} bytes (10 MiB)")
        file_name = _file_name(part.filename)
        media = (part.content_type or "").split(";")[0].strip().lower()
        if not file_name.lower().endswith(".csv") or media not in CSV_CONTENT_TYPES:
            raise UnsupportedMediaType(
                "The file must be a .csv file (text/csv)",
                details=[{"field": "body.file", "issue": "expected a .csv file", "value": f"{file_name} ({media})"}],
            )
        details: list[dict[str, Any]] = [
            {"field": f"body.{key}", "issue": "unknown field", "value": None}
            for key in dict.fromkeys(form.keys())
            if key not in FORM_FIELDS
        ]
        for key in FORM_FIELDS - {"file"}:
            if len(form.getlist(key)) > 1:
                details.append({"field": f"body.{key}", "issue": "given more than once", "value": None})
        portfolio_id: UUID | None = None
        raw_pid = _text(form.get("portfolio_id"), "portfolio_id")
        if raw_pid is not None:
            try:
                portfolio_id = UUID(raw_pid)
            except ValueError:
                details.append({"field": "body.portfolio_id", "issue": "must be a UUID", "value": raw_pid})
        name = _text(form.get("portfolio_name"), "portfolio_name")
        if name is not None and len(name) > 255:
            details.append({"field": "body.portfolio_name", "issue": "must be 1-255 characters", "value": name[:50]})
        if name is not None and raw_pid is not None:
            details.append(
                {
                    "field": "body.portfolio_name",
                    "issue": "only used when creating a portfolio (without portfolio_id)",
                    "value": name,
                }
            )
        mode = _text(form.get("mode"), "mode")
        if mode is not None:
            mode = mode.lower()
            if raw_pid is None:
                details.append(
                    {"field": "body.mode", "issue": "only allowed with portfolio_id (new portfolios)", "value": mode}
                )
            elif mode not in ("append", "replace"):
                details.append({"field": "body.mode", "issue": "must be append or replace", "value": mode})
        cash: Decimal | None = None
        raw_cash = _text(form.get("cash_balance"), "cash_balance")
        if raw_cash is not None:
            try:
                if _MONEY.match(raw_cash) is None:
                    raise InvalidOperation
                cash = Decimal(raw_cash)
                if cash >= Decimal("1e18"):
                    raise InvalidOperation
            except InvalidOperation:
                details.append(
                    {
                        "field": "body.cash_balance",
                        "issue": "must be a decimal amount >= 0 with at most 2 decimals",
                        "value": raw_cash,
                    }
                )
        auto = False
        raw_auto = _text(form.get("auto_complete"), "auto_complete")
        if raw_auto is not None:
            if raw_auto.lower() in ("true", "1", "yes", "on"):
                auto = True
            elif raw_auto.lower() not in ("false", "0", "no", "off"):
                details.append({"field": "body.auto_complete", "issue": "must be true or false", "value": raw_auto})
            if auto and raw_pid is not None:
                details.append(
                    {
                        "field": "body.auto_complete",
                        "issue": "only for new portfolios (without portfolio_id)",
                        "value": True,
                    }
                )
        if details:
            raise ValidationFailed("Upload form failed validation", details=details)
        return UploadRequest(
            file_name=file_name,
            content=content,
            portfolio_id=portfolio_id,
            portfolio_name=name,
            mode=mode,
            cash_balance=cash,
            auto_complete=auto,
            correlation_id=request_id_var.get() or request.headers.get("x-request-id"),
        )
    finally:
        await form.close()
