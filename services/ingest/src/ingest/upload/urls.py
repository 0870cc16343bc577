"""The upload job's type and the URLs the upload responses point to (api.md #59, #60)."""

from __future__ import annotations

from uuid import UUID

JOB_TYPE = "upload.process"


def status_url(upload_id: UUID) -> str:
    return f"/api/v1/portfolio/upload/{upload_id}/status"


def results_url(upload_id: UUID) -> str:
    return f"/api/v1/portfolio/upload/{upload_id}/results"
