"""Bodies of the upload status (api.md #59) and results (#60) endpoints, from the stored upload."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from common.auth import Principal
from common.db import Database
from common.errors import NotFound
from common.formatting import iso_datetime
from ingest.models import POSITION_TYPES
from ingest.upload import report_store, store
from ingest.upload.urls import results_url, status_url


async def own_upload(db: Database, principal: Principal, upload_id: UUID) -> dict[str, Any]:
    """The caller's upload (admins: anyone's); 404 UPLOAD_NOT_FOUND otherwise."""
    up = await store.get_upload(db, upload_id)
    if up is None or (up["user_id"] != principal.user_id and not principal.is_admin):
        raise NotFound("UPLOAD")
    return up


def _error(up: dict[str, Any]) -> dict[str, Any] | None:
    """The `error` block of a failed upload (None otherwise)."""
    if up["status"] != "failed":
        return None
    return {
        "code": up["error_code"] or "INTERNAL_ERROR",
        "message": up["error_message"] or "",
        "retryable": bool(up["retryable"]),
    }


def _next_calls(up: dict[str, Any]) -> list[str]:
    """The calls that make sense now, by status (a new portfolio goes on to onboarding)."""
    uid: UUID = up["id"]
    pid = up["portfolio_id"]
    status = up["status"]
    if status in ("queued", "processing"):
        return [f"GET {status_url(uid)}"]
    if status == "completed" and up["mode"] == "new":
        return [
            f"GET {results_url(uid)}",
            f"GET /api/v1/portfolio/onboarding/{pid}/preview",
            f"POST /api/v1/portfolio/onboarding/{pid}/validate",
            f"POST /api/v1/portfolio/onboarding/{pid}/complete",
        ]
    if status == "completed":
        return [f"GET {results_url(uid)}", f"GET /api/v1/positions?portfolio_id={pid}"]
    if status == "rejected":
        return [f"GET {results_url(uid)}", "POST /api/v1/portfolio/upload"]
    return ["POST /api/v1/portfolio/upload"] if up.get("retryable") else [f"GET {results_url(uid)}"]


def status_body(up: dict[str, Any]) -> dict[str, Any]:
    """The #59 body."""
    pid = up["portfolio_id"]
    return {
        "upload_id": str(up["id"]),
        "status": up["status"],
        "phase": up["phase"],
        "progress": {"rows_total": up["rows_total"], "rows_processed": int(up["rows_processed"] or 0)},
        "portfolio_id": None if pid is None else str(pid),
        "mode": up["mode"],
        "file_name": up["file_name"],
        "created_at": iso_datetime(up["created_at"]),
        "finished_at": iso_datetime(up["finished_at"]),
        "error": _error(up),
        "next": _next_calls(up),
    }


async def results_body(
    db: Database, up: dict[str, Any], severity: str | None, limit: int, offset: int
) -> tuple[dict[str, Any], int]:
    """The #60 body and the total its page counts (errors, or the one severity asked for)."""
    uid: UUID = up["id"]
    errors: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    total = 0
    if severity in (None, "error"):
        errors, total = await report_store.issue_page(db, uid, "error", limit, offset)
    if severity in (None, "warning"):
        warnings, n_warnings = await report_store.issue_page(db, uid, "warning", limit, offset)
        if severity == "warning":
            total = n_warnings
    outcome = up.get("outcome") or {}
    completed = up["status"] == "completed"
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
        "error": _error(up),
    }
    return data, total


def _by_type(counts: dict[str, int] | None) -> dict[str, int] | None:
    """Counts in the order of api.md §3.1 (jsonb does not keep key order)."""
    if counts is None:
        return None
    return {t: int(counts.get(t, 0)) for t in POSITION_TYPES}
