"""Request and response models of the report routes (api.md #66–#68, #75)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stress.exports.tables import REPORT_SECTIONS

Format = Literal["md", "json", "csv", "pdf"]
Section = Literal["summary", "exposures", "positions", "greeks", "factors", "correlations", "stress", "performance"]
_META: dict[str, Any] = {"request_id": "req_01JDX4K8Q7", "timestamp": "2026-11-25T14:03:22Z"}
_RID = "5b1e0f3a-8c1d-4e0b-9a55-0c6a2f0e9d11"


def _default_formats() -> list[Format]:
    return ["md", "json", "csv"]


def _all_sections() -> list[Section]:
    return ["summary", "exposures", "positions", "greeks", "factors", "correlations", "stress", "performance"]


def _lower_items(value: Any) -> Any:
    return [v.strip().lower() if isinstance(v, str) else v for v in value] if isinstance(value, list) else value


class GenerateRequest(BaseModel):
    """#66 body."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"formats": ["md", "json", "csv"]}, {"formats": ["pdf"], "sections": ["summary"]}]
        },
    )

    portfolio_id: UUID | None = Field(None, description="Default: your default portfolio")
    formats: list[Format] = Field(default_factory=_default_formats, min_length=1, max_length=4)
    sections: list[Section] = Field(default_factory=_all_sections, min_length=1, max_length=8)
    as_of_date: date | None = Field(None, description="A date with a stored snapshot; default: the latest snapshot")

    _lower = field_validator("formats", "sections", mode="before")(_lower_items)

    @staticmethod
    def section_order(name: str) -> int:
        """Canonical order of the sections (as in users.md §4.5)."""
        return REPORT_SECTIONS.index(name)


class ReportAccepted(BaseModel):
    job_id: str
    job_type: Literal["report.generate"]
    status: str
    deduplicated: bool
    status_url: str = Field(description="#67 of the report")
    result_url: str | None
    report_id: str


class ReportAcceptedResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "data": {
                    "job_id": f"str_{_RID}",
                    "job_type": "report.generate",
                    "status": "queued",
                    "deduplicated": False,
                    "status_url": f"/api/v1/reports/{_RID}/status",
                    "result_url": f"/api/v1/reports/{_RID}/status",
                    "report_id": _RID,
                },
                "meta": _META,
            }
        }
    )
    data: ReportAccepted
    meta: dict[str, Any]


class ReportFileOut(BaseModel):
    format: Format
    file_name: str = Field(
        description="`<portfolio-slug>_report_<date>.md`, `_data_<date>.json`, `_positions_<date>.csv`"
    )
    content_type: str
    size_bytes: int
    sha256: str = Field(description="Hex digest of the file")
    download_url: str | None = Field(description="null unless the report is completed and not expired")


class ReportStatusOut(BaseModel):
    report_id: str
    portfolio_id: str
    trigger: Literal["api", "batch"]
    status: Literal["queued", "running", "completed", "failed", "expired"]
    progress: dict[str, Any]
    as_of_date: str
    formats: list[Format]
    sections: list[Section]
    data_source: Literal["live", "fixture"] | None
    files: list[ReportFileOut]
    created_at: str
    completed_at: str | None
    expires_at: str | None = Field(description="completed_at + 30 days")
    error: dict[str, Any] | None
    job_id: str | None = Field(description="The report.generate job (on-demand reports)")


class ReportStatusResponse(BaseModel):
    data: ReportStatusOut
    meta: dict[str, Any]


class ReportListItem(BaseModel):
    report_id: str
    portfolio_id: str
    trigger: Literal["api", "batch"]
    status: Literal["queued", "running", "completed", "failed", "expired"]
    as_of_date: str
    formats: list[Format]
    created_at: str
    completed_at: str | None
    expires_at: str | None
    status_url: str


class ReportListResponse(BaseModel):
    data: list[ReportListItem]
    meta: dict[str, Any]
    page: dict[str, Any]
