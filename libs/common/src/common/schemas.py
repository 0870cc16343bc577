"""OpenAPI models of the shared shapes: the error envelope (api.md §2.5), the Job (§3.5) and JobAccepted (§3.6)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. PORTFOLIO_NOT_FOUND")
    message: str = Field(description="For people")
    details: list[dict[str, Any]] = Field(description="Field problems: {field, issue, value}")
    retryable: bool = Field(description="Whether the identical request may succeed later")
    hint: str | None = Field(description="The next call to make, when there is one")


class ErrorMeta(BaseModel):
    request_id: str | None
    timestamp: str


class ErrorResponse(BaseModel):
    """Every error answer."""

    error: ErrorBody
    meta: ErrorMeta

    model_config = {
        "json_schema_extra": {
            "example": {
                "error": {
                    "code": "PORTFOLIO_NOT_FOUND",
                    "message": "Portfolio not found",
                    "details": [],
                    "retryable": False,
                    "hint": None,
                },
                "meta": {"request_id": "req_01JDX4K8Q7", "timestamp": "2026-11-25T14:03:22Z"},
            }
        }
    }


_DESCRIPTIONS = {
    400: "Unparseable JSON or multipart body",
    401: "Missing, malformed, badly signed or expired token",
    403: "Role too low (admin routes)",
    404: "Resource not found (also another user's), or analytics not calculated yet",
    409: "Resource state or workflow rule forbids the action",
    410: "Expired artefact",
    413: "Body over its limit",
    415: "Wrong Content-Type",
    422: "Validation error; `details` names each field",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries documenting error statuses with the error envelope."""
    return {status: {"model": ErrorResponse, "description": _DESCRIPTIONS.get(status, "Error")} for status in statuses}


# The 202 answer to a job-starting request (api.md §3.6); services extend it with their own ids. A comment, not a
# docstring: pydantic would give every subclass it as its OpenAPI description.
class JobAcceptedOut(BaseModel):
    job_id: str
    job_type: str
    status: str
    deduplicated: bool
    status_url: str
    result_url: str | None


def job_accepted_example(job_id: str, job_type: str, result_url: str | None) -> dict[str, Any]:
    """The OpenAPI example of a queued job's 202 envelope, status read at `/api/v1/jobs/<job_id>`."""
    return {
        "example": {
            "data": {
                "job_id": job_id,
                "job_type": job_type,
                "status": "queued",
                "deduplicated": False,
                "status_url": f"/api/v1/jobs/{job_id}",
                "result_url": result_url,
            },
            "meta": {"request_id": "req_01JDX4K8Q7", "timestamp": "2026-11-25T14:03:22Z"},
        }
    }


class JobProgress(BaseModel):
    pct: int = Field(ge=0, le=100)
    step: str
    message: str


class JobError(BaseModel):
    code: str
    message: str
    retryable: bool


class JobOut(BaseModel):
    """An async job (api.md §3.5)."""

    job_id: str = Field(description="`<svc>_<uuid>`: ing, mkt, grk, fac or str")
    job_type: str
    status: Literal["queued", "running", "completed", "partial", "failed", "cancelled"]
    progress: JobProgress
    scope: dict[str, Any]
    requested_by: str
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    result: dict[str, Any] | None
    result_url: str | None
    error: JobError | None
    steps: list[dict[str, Any]]


class JobResponse(BaseModel):
    data: JobOut
    meta: dict[str, Any]

    model_config = {
        "json_schema_extra": {
            "example": {
                "data": {
                    "job_id": "grk_5b1e0f3a-8c1d-4e0b-9a55-0c6a2f0e9d11",
                    "job_type": "greeks.calculate",
                    "status": "completed",
                    "progress": {"pct": 100, "step": "store", "message": ""},
                    "scope": {"portfolio_id": "…", "as_of_date": "2026-11-24"},
                    "requested_by": "…",
                    "created_at": "2026-11-25T14:03:22Z",
                    "started_at": "2026-11-25T14:03:22Z",
                    "finished_at": "2026-11-25T14:03:23Z",
                    "result": {"positions": 8},
                    "result_url": "/api/v1/risk/greeks?portfolio_id=…",
                    "error": None,
                    "steps": [],
                },
                "meta": {"request_id": "req_01JDX4K8Q7", "timestamp": "2026-11-25T14:03:23Z"},
            }
        }
    }
