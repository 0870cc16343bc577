"""Factors service settings (env prefix FACTORS_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from common.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    """Settings of the factors service."""

    model_config = SettingsConfigDict(env_prefix="FACTORS_", env_file=".env", extra="ignore", populate_by_name=True)
