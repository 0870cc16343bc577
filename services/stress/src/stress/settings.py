"""Stress service settings (env prefix STRESS_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    """Settings of the stress service."""

    model_config = SettingsConfigDict(env_prefix="STRESS_", env_file=".env", extra="ignore", populate_by_name=True)

    # Default benchmark of GET /api/v1/portfolio/performance (api.md #23).
    default_benchmark: str = Field("SPY")
    # PDF reports (api.md #66): off → requesting `pdf` answers 422 UNSUPPORTED_FORMAT.
    reports_pdf_enabled: bool = Field(True)
