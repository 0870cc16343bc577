"""Report rows as API bodies (#67 status, #75 list items)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from common.formatting import iso_date, iso_datetime


def status_url(report_id: UUID) -> str:
    """#67 URL."""
    return f"/api/v1/reports/{report_id}/status"


def download_url(report_id: UUID, fmt: str) -> str:
    """#68 URL of one format."""
    return f"/api/v1/reports/{report_id}/download?format={fmt}"


def report_body(row: dict[str, Any], attached: list[dict[str, Any]], job_id: str) -> dict[str, Any]:
    """The #67 body (`visible_status` from store.get: expired once past its expiry, before any purge)."""
    status = row["visible_status"]
    error = None
    if row["error_code"]:
        error = {"code": row["error_code"], "message": row["error_message"] or ""}
    return {
        "report_id": str(row["id"]),
        "portfolio_id": str(row["portfolio_id"]),
        "trigger": row["trigger"],
        "status": status,
        "progress": {"pct": int(row["progress_pct"] or 0), "step": row["progress_step"] or status},
        "as_of_date": iso_date(row["as_of_date"]),
        "formats": list(row["formats"]),
        "sections": list(row["sections"]),
        "data_source": row["data_source"],
        "files": [
            {
                "format": f["format"],
                "file_name": f["file_name"],
                "content_type": f["content_type"],
                "size_bytes": f["size_bytes"],
                "sha256": bytes(f["sha256"]).hex(),
                "download_url": download_url(row["id"], f["format"]) if status == "completed" else None,
            }
            for f in attached
        ],
        "created_at": iso_datetime(row["created_at"]),
        "completed_at": iso_datetime(row["completed_at"]),
        "expires_at": iso_datetime(row["expires_at"]),
        "error": error,
        "job_id": job_id if row["trigger"] == "api" else None,
    }


def list_item(row: dict[str, Any]) -> dict[str, Any]:
    """A #75 item."""
    return {
        "report_id": str(row["id"]),
        "portfolio_id": str(row["portfolio_id"]),
        "trigger": row["trigger"],
        "status": row["visible_status"],
        "as_of_date": iso_date(row["as_of_date"]),
        "formats": list(row["formats"]),
        "created_at": iso_datetime(row["created_at"]),
        "completed_at": iso_datetime(row["completed_at"]),
        "expires_at": iso_datetime(row["expires_at"]),
        "status_url": status_url(row["id"]),
    }
