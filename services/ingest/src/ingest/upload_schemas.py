"""Request bodies and OpenAPI response schemas of the upload and onboarding routes (api.md §4.9).

Responses are built as dicts and rendered by `common.api.envelope`; these models document them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from common.schemas import JobAcceptedOut

CollectionStep = Literal["security_master", "current_prices", "price_history", "option_inputs"]


class Meta(BaseModel):
    request_id: str | None = None
    timestamp: str | None = None
    as_of: str | None = None
    data_source: Literal["live", "fixture"] | None = None


class Page(BaseModel):
    limit: int
    offset: int
    total: int
    has_more: bool


class JobAccepted(JobAcceptedOut):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "job_id": "ing_9a41c7de-3b0f-4c55-9f43-1f0e6a2b7c10",
                "job_type": "upload.process",
                "status": "queued",
                "deduplicated": False,
                "status_url": "/api/v1/portfolio/upload/9a41c7de-3b0f-4c55-9f43-1f0e6a2b7c10/status",
                "result_url": "/api/v1/portfolio/upload/9a41c7de-3b0f-4c55-9f43-1f0e6a2b7c10/results",
                "upload_id": "9a41c7de-3b0f-4c55-9f43-1f0e6a2b7c10",
            }
        }
    )
    upload_id: str | None = None


class JobAcceptedResponse(BaseModel):
    data: JobAccepted
    meta: Meta


class UploadError(BaseModel):
    code: str
    message: str
    retryable: bool


class UploadProgress(BaseModel):
    rows_total: int | None
    rows_processed: int


class UploadStatus(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "upload_id": "9a41c7de-3b0f-4c55-9f43-1f0e6a2b7c10",
                "status": "completed",
                "phase": None,
                "progress": {"rows_total": 16, "rows_processed": 16},
                "portfolio_id": "4f7a0d8e-5c1b-4a3e-8d2f-6b9c0e1a2f34",
                "mode": "new",
                "file_name": "demo-individual.csv",
                "created_at": "2026-11-25T14:03:22Z",
                "finished_at": "2026-11-25T14:03:23Z",
                "error": None,
                "next": [
                    "GET /api/v1/portfolio/upload/9a41c7de-3b0f-4c55-9f43-1f0e6a2b7c10/results",
                    "GET /api/v1/portfolio/onboarding/4f7a0d8e-5c1b-4a3e-8d2f-6b9c0e1a2f34/preview",
                ],
            }
        }
    )
    upload_id: str
    status: Literal["queued", "processing", "completed", "rejected", "failed"]
    phase: Literal["parsing", "verifying_symbols", "committing"] | None
    progress: UploadProgress
    portfolio_id: str | None
    mode: Literal["new", "append", "replace"]
    file_name: str
    created_at: str
    finished_at: str | None
    error: UploadError | None
    next: list[str]


class UploadStatusResponse(BaseModel):
    data: UploadStatus
    meta: Meta


class Issue(BaseModel):
    row: int = Field(description="File line number; the header (and the file as a whole) is row 1")
    column: str | None = Field(description="Canonical column, the normalised header of an ignored column, or null")
    code: str
    message: str
    value: str | None = Field(description="The offending cell as written (quotes removed), at most 100 characters")


class UploadSummary(BaseModel):
    rows_total: int
    rows_valid: int
    rows_invalid: int
    errors: int
    warnings: int
    positions_created: int
    positions_closed: int


class UploadResults(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "upload_id": "9a41c7de-3b0f-4c55-9f43-1f0e6a2b7c10",
                "status": "rejected",
                "portfolio_id": None,
                "file_name": "positions.csv",
                "summary": {
                    "rows_total": 18,
                    "rows_valid": 2,
                    "rows_invalid": 16,
                    "errors": 18,
                    "warnings": 1,
                    "positions_created": 0,
                    "positions_closed": 0,
                },
                "errors": [
                    {
                        "row": 4,
                        "column": "quantity",
                        "code": "ZERO_QUANTITY",
                        "message": "quantity must not be zero",
                        "value": "0",
                    }
                ],
                "warnings": [
                    {
                        "row": 1,
                        "column": "notes",
                        "code": "IGNORED_COLUMN",
                        "message": "column 'Notes' is not used and was ignored",
                        "value": None,
                    }
                ],
                "positions_by_type": None,
                "tags": None,
                "securities": None,
                "error": None,
            }
        }
    )
    upload_id: str
    status: str
    portfolio_id: str | None
    file_name: str
    summary: UploadSummary
    errors: list[Issue]
    warnings: list[Issue]
    positions_by_type: dict[str, int] | None
    tags: dict[str, list[str]] | None
    securities: dict[str, Any] | None
    error: UploadError | None = None


class UploadResultsResponse(BaseModel):
    data: UploadResults
    meta: Meta
    page: Page


class TemplateInfo(BaseModel):
    name: Literal["basic", "options", "long_short"]
    description: str
    columns: list[str]
    download_url: str
    file_name: str


class TemplateListResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "data": [
                    {
                        "name": "basic",
                        "description": "Long stocks, ETFs and mutual funds with regular tags",
                        "columns": ["ticker", "quantity", "entry_price", "entry_date", "tags"],
                        "download_url": "/api/v1/portfolio/templates?name=basic",
                        "file_name": "sigmasight_basic_template.csv",
                    }
                ],
                "meta": {"request_id": "req_01JDX4K8Q7", "timestamp": "2026-11-25T14:03:22Z"},
                "page": {"limit": 3, "offset": 0, "total": 3, "has_more": False},
            }
        }
    )
    data: list[TemplateInfo]
    meta: Meta
    page: Page


class Check(BaseModel):
    check: Literal[
        "positions",
        "security_master",
        "classification",
        "current_prices",
        "price_history",
        "option_inputs",
        "factor_definitions",
    ]
    status: Literal["pass", "warn", "fail", "skip", "pending"]
    blocking: bool
    detail: str
    symbols: list[str] | None = None


class Validation(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "portfolio_id": "4f7a0d8e-5c1b-4a3e-8d2f-6b9c0e1a2f34",
                "ready": True,
                "checked_at": "2026-11-25T14:05:10Z",
                "as_of": "2026-11-25",
                "checks": [
                    {"check": "positions", "status": "pass", "blocking": True, "detail": "16 open positions"},
                    {"check": "security_master", "status": "pass", "blocking": True, "detail": "16/16 symbols known"},
                    {
                        "check": "classification",
                        "status": "pass",
                        "blocking": False,
                        "detail": "16/16 symbols classified",
                        "symbols": [],
                    },
                    {
                        "check": "current_prices",
                        "status": "pass",
                        "blocking": True,
                        "detail": "close within 5 trading days for 16/16",
                    },
                    {
                        "check": "price_history",
                        "status": "pass",
                        "blocking": False,
                        "detail": ">= 60 trading days for 16/16",
                    },
                    {"check": "option_inputs", "status": "skip", "blocking": False, "detail": "no option positions"},
                    {
                        "check": "factor_definitions",
                        "status": "pass",
                        "blocking": True,
                        "detail": "7 active factors + interest rate, proxies priced >= 60 days",
                    },
                ],
            }
        }
    )
    portfolio_id: str
    ready: bool
    checked_at: str
    as_of: str | None
    checks: list[Check]


class ValidationResponse(BaseModel):
    data: Validation
    meta: Meta


class CollectionState(BaseModel):
    step: CollectionStep
    status: Literal["pending", "running", "completed", "failed", "skipped"]
    attempts: int
    last_error: str | None


class MarketValueViews(BaseModel):
    long: str
    short: str
    gross: str
    net: str


class PreviewTotals(BaseModel):
    positions: int
    by_type: dict[str, int]
    market_value: MarketValueViews
    cost_basis: str
    priced_with_entry: int


class Preview(BaseModel):
    portfolio_id: str
    name: str
    status: Literal["onboarding"]
    upload_id: str | None
    as_of: str | None
    collection: list[CollectionState]
    totals: PreviewTotals
    tags: dict[str, list[str]]
    positions: list[dict[str, Any]] = Field(
        description="Position (api.md §3.1) plus `priced_with` ('close' | 'entry') and `issues` [{code, message}]"
    )


class PreviewResponse(BaseModel):
    data: Preview
    meta: Meta
    page: Page


class RetryRequest(BaseModel):
    """Body of #64 (optional): which failed collection steps to re-check, for which symbols."""

    model_config = ConfigDict(extra="forbid")

    steps: list[CollectionStep] | None = Field(None, min_length=1, description="Default: every failed step")
    symbols: list[str] | None = Field(
        None, min_length=1, max_length=10_000, description="Default: every affected symbol"
    )
