"""Greeks service settings (env prefix GREEKS_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    """Settings of the greeks service."""

    model_config = SettingsConfigDict(env_prefix="GREEKS_", env_file=".env", extra="ignore", populate_by_name=True)

    # Threads for the closed-form kernel on large batches (numpy releases the GIL).
    compute_threads: int = Field(2, ge=1, le=16)
