"""Marketdata service settings (env prefix MARKETDATA_; provider API keys are read unprefixed).

Provider selection (v1): `MARKETDATA_PROVIDER=yfinance` uses the yfinance client; unset or
`fixture` uses the offline deterministic fixture of demo.md §7. `POLYGON_API_KEY`,
`FMP_API_KEY` and `FRED_API_KEY` are read so that the seed can mark those providers enabled and
the fixture disabled, but v1 ships no Polygon, FMP or FRED client: with only those keys set the
service still runs on the fixture and logs a warning at start-up.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import SettingsConfigDict

from common.settings import BaseServiceSettings

ProviderName = Literal["fixture", "yfinance"]

DEFAULT_FIXTURE_END_DATE = date(2026, 11, 24)


class Settings(BaseServiceSettings):
    """Settings of the marketdata service."""

    model_config = SettingsConfigDict(env_prefix="MARKETDATA_", env_file=".env", extra="ignore", populate_by_name=True)

    provider: ProviderName | None = None
    fixture_end_date: date = DEFAULT_FIXTURE_END_DATE
    polygon_api_key: str | None = Field(None, validation_alias=AliasChoices("POLYGON_API_KEY", "polygon_api_key"))
    fmp_api_key: str | None = Field(None, validation_alias=AliasChoices("FMP_API_KEY", "fmp_api_key"))
    fred_api_key: str | None = Field(None, validation_alias=AliasChoices("FRED_API_KEY", "fred_api_key"))
    # None = the mode default: on in all-in-one mode, off in distributed mode (a k8s CronJob fires there).
    scheduler_enabled: bool | None = None
    port: int = 8002
    # market_data step: the full back-fill (trading days) for symbols with fewer than min_history_rows closes.
    full_history_days: int = Field(756, ge=252, le=1260)
    min_history_rows: int = Field(300, ge=1)
    # Parallel provider requests in one market_data step.
    fetch_concurrency: int = Field(8, ge=1, le=64)
    # #76 file import limit.
    import_max_bytes: int = 50 * 1024 * 1024

    @field_validator("provider", mode="before")
    @classmethod
    def _blank_provider_is_default(cls, value: object) -> object:
        """`MARKETDATA_PROVIDER=` (empty) means the default, like leaving it unset."""
        if isinstance(value, str):
            value = value.strip().lower()
            return value or None
        return value

    @property
    def provider_name(self) -> ProviderName:
        """The provider actually used: yfinance when asked for, else the offline fixture."""
        return self.provider or "fixture"

    @property
    def live_keys(self) -> dict[str, bool]:
        """Which live-provider keys are configured (values never exposed)."""
        return {
            "polygon": bool(self.polygon_api_key),
            "fmp": bool(self.fmp_api_key),
            "fred": bool(self.fred_api_key),
        }

    @property
    def fixture_mode(self) -> bool:
        """True when prices come from the offline fixture."""
        return self.provider_name == "fixture"

    @property
    def scheduler_on(self) -> bool:
        """Whether the in-process scheduler runs (default: all-in-one yes, distributed no)."""
        if self.scheduler_enabled is not None:
            return self.scheduler_enabled
        return self.mode == "allinone"
