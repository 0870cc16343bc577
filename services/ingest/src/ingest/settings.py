"""Settings of the ingest service (env prefix `INGEST_`, plus the shared unprefixed names)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from common.settings import DEFAULT_PORTS, BaseServiceSettings


class Settings(BaseServiceSettings):
    """Ingest configuration."""

    model_config = SettingsConfigDict(env_prefix="INGEST_", env_file=".env", extra="ignore", populate_by_name=True)

    port: int = DEFAULT_PORTS["ingest"]
    # Trading days a close may lag `as_of` and still value a position (calculations.md §0.6).
    stale_price_max_days: int = Field(5, ge=0, le=30)
    # Limits of data-model.md §4.1-4.5 and api.md §4.7.
    max_tags_per_user: int = 100
    max_tags_per_position: int = 20
    max_portfolios_per_user: int = 10
    max_open_positions_per_portfolio: int = 10_000
    # Soft-deleted tags are purged after this many days (data-model.md §11).
    tag_retention_days: int = 30
    # Valuation history returned by GET /positions/{id}?include=history (trading days).
    history_trading_days: int = 90
    # Notification e-mail (unprefixed names): unset SMTP_URL = notifications are only listed, never mailed.
    smtp_url: str | None = Field(None, validation_alias=AliasChoices("SMTP_URL", "smtp_url"))
    smtp_from: str = Field(
        "SigmaSight <notifications@sigmasight.local>", validation_alias=AliasChoices("SMTP_FROM", "smtp_from")
    )
    notification_retention_days: int = Field(180, ge=1)
