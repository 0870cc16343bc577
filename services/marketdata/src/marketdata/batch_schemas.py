"""OpenAPI response schemas of the admin batch endpoints (documentation only: routes return dicts)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from common.schemas import JobAcceptedOut
from marketdata.batch_compute import PIPELINE_STEPS


class BatchMeta(BaseModel):
    request_id: str | None = None
    timestamp: str
    as_of: str | None = None


class BatchPageBlock(BaseModel):
    limit: int
    offset: int
    total: int
    has_more: bool


class BatchRunAccepted(JobAcceptedOut):
    """JobAccepted (api.md §3.6) plus the run id and the planned steps."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "job_id": "mkt_7d1c2f0e-8c1d-4e0b-9a55-0c6a2f0e9d11",
                "job_type": "batch.run_all",
                "status": "queued",
                "deduplicated": False,
                "status_url": "/api/v1/jobs/mkt_7d1c2f0e-8c1d-4e0b-9a55-0c6a2f0e9d11",
                "result_url": "/api/v1/admin/batch/status?run_id=7d1c2f0e-8c1d-4e0b-9a55-0c6a2f0e9d11",
                "run_id": "7d1c2f0e-8c1d-4e0b-9a55-0c6a2f0e9d11",
                "steps": list(PIPELINE_STEPS),
            }
        }
    )
    run_id: str
    steps: list[str]


class BatchRunAcceptedResponse(BaseModel):
    data: BatchRunAccepted
    meta: BatchMeta


class BatchStepError(BaseModel):
    code: str
    message: str
    portfolio_id: str | None = None


class BatchStepStatus(BaseModel):
    job: str = Field(description="Step name")
    service: str
    status: str = Field(description="queued | running | completed | partial | failed | skipped")
    portfolios_total: int | None = Field(description="Portfolios in scope; null for market-wide steps")
    portfolios_completed: int | None
    portfolios_failed: int | None
    records_processed: int | None
    started_at: str | None
    finished_at: str | None
    duration_ms: int | None = Field(description="Milliseconds from the first start to the last finish")
    error: BatchStepError | None


class BatchRunStatus(BaseModel):
    run_id: str
    job_id: str
    job_name: str
    trigger: str
    as_of_date: str
    status: str = Field(description="queued | running | completed | partial | failed | cancelled")
    cascade: bool
    force: bool
    params: dict[str, Any]
    portfolios: int
    portfolio_ids: list[str]
    portfolios_failed: list[str]
    requested_by: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    duration_ms: int | None
    progress_pct: int
    error_summary: str | None
    steps: list[BatchStepStatus]


class BatchSchedulerState(BaseModel):
    state: str = Field(description="enabled | disabled")
    next_run_at: str | None


class BatchRunningJob(BaseModel):
    run_id: str
    job_id: str
    job: str
    service: str
    status: str
    trigger: str
    as_of_date: str
    portfolios_total: int | None
    portfolios_completed: int | None
    portfolios_failed: int | None
    started_at: str | None


class BatchStatus(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "scheduler": {"state": "enabled", "next_run_at": "2026-11-25T21:30:00Z"},
                "run": {
                    "run_id": "7d1c2f0e-8c1d-4e0b-9a55-0c6a2f0e9d11",
                    "job_id": "mkt_7d1c2f0e-8c1d-4e0b-9a55-0c6a2f0e9d11",
                    "job_name": "run_all",
                    "trigger": "schedule",
                    "as_of_date": "2026-11-24",
                    "status": "completed",
                    "cascade": True,
                    "force": False,
                    "params": {"include_correlations": True},
                    "portfolios": 3,
                    "portfolio_ids": [],
                    "portfolios_failed": [],
                    "requested_by": "00000000-0000-4000-8000-000000000001",
                    "created_at": "2026-11-24T21:30:00Z",
                    "started_at": "2026-11-24T21:30:02Z",
                    "finished_at": "2026-11-24T21:31:50Z",
                    "duration_ms": 108412,
                    "progress_pct": 100,
                    "error_summary": None,
                    "steps": [
                        {
                            "job": "market_data",
                            "service": "marketdata",
                            "status": "completed",
                            "portfolios_total": None,
                            "portfolios_completed": None,
                            "portfolios_failed": None,
                            "records_processed": 412,
                            "started_at": "2026-11-24T21:30:02Z",
                            "finished_at": "2026-11-24T21:30:41Z",
                            "duration_ms": 39021,
                            "error": None,
                        }
                    ],
                },
                "running_jobs": [],
                "last_completed": {"market_data": "2026-11-24T21:30:41Z", "greeks": "2026-11-24T21:31:02Z"},
            }
        }
    )
    scheduler: BatchSchedulerState
    run: BatchRunStatus | None
    running_jobs: list[BatchRunningJob]
    last_completed: dict[str, str | None]


class BatchStatusResponse(BaseModel):
    data: BatchStatus
    meta: BatchMeta


class BatchHistoryError(BaseModel):
    code: str
    message: str


class BatchHistoryItem(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "job_run_id": "5b1e0f3a-8c1d-4e0b-9a55-0c6a2f0e9d11",
                "run_id": "7d1c2f0e-8c1d-4e0b-9a55-0c6a2f0e9d11",
                "job_id": "mkt_7d1c2f0e-8c1d-4e0b-9a55-0c6a2f0e9d11",
                "job": "greeks",
                "service": "greeks",
                "portfolio_id": "3f0c2f0e-8c1d-4e0b-9a55-0c6a2f0e9d11",
                "status": "completed",
                "trigger": "schedule",
                "attempt": 1,
                "as_of_date": "2026-11-24",
                "started_at": "2026-11-24T21:30:42Z",
                "finished_at": "2026-11-24T21:30:44Z",
                "duration_ms": 1830,
                "records_processed": 8,
                "error": None,
                "details": None,
            }
        }
    )
    job_run_id: str
    run_id: str
    job_id: str
    job: str
    service: str
    portfolio_id: str | None = Field(description="Null for market-wide steps (market_data)")
    status: str = Field(description="queued | running | completed | failed | skipped | cancelled")
    trigger: str | None
    attempt: int
    as_of_date: str
    started_at: str | None
    finished_at: str | None
    duration_ms: int | None = Field(description="Milliseconds")
    records_processed: int | None
    error: BatchHistoryError | None
    details: dict[str, Any] | None


class BatchHistoryMeta(BatchMeta):
    summary: dict[str, Any] | None = Field(
        None, description="With include_summary: {total, by_status, success_rate (fraction), avg_duration_ms_by_job}"
    )


class BatchHistoryResponse(BaseModel):
    data: list[BatchHistoryItem]
    meta: BatchHistoryMeta
    page: BatchPageBlock


class BatchScheduleItem(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "name": "daily_run",
                "description": "Daily batch run for every active portfolio …",
                "job_name": "run_all",
                "cron": "30 16 * * 1-5",
                "timezone": "America/New_York",
                "trading_days_only": True,
                "enabled": True,
                "params": {},
                "next_run_at": "2026-11-25T21:30:00Z",
                "last_run_at": "2026-11-24T21:30:00Z",
                "last_run_id": "7d1c2f0e-8c1d-4e0b-9a55-0c6a2f0e9d11",
                "last_status": "completed",
            }
        }
    )
    name: str
    description: str | None
    job_name: str
    cron: str = Field(description="5-field cron, evaluated in `timezone`")
    timezone: str
    trading_days_only: bool
    enabled: bool
    params: dict[str, Any]
    next_run_at: str | None = Field(description="UTC; null when disabled")
    last_run_at: str | None
    last_run_id: str | None
    last_status: str | None


class BatchScheduleResponse(BaseModel):
    data: list[BatchScheduleItem]
    meta: BatchMeta
    page: BatchPageBlock
