"""Gateway settings (env prefix GATEWAY_; the shared ones such as DATABASE_URL are unprefixed)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from common.settings import DEFAULT_PORTS, ENGINE_SERVICES, BaseServiceSettings

# Providers whose prices are not the offline fixture (anything else named is treated as live too).
FIXTURE_PROVIDERS = frozenset({"", "fixture"})


class Settings(BaseServiceSettings):
    """Settings of the gateway: auth, CORS, rate limits, upstream URLs (distributed mode)."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=".env", extra="ignore", populate_by_name=True)

    port: int = DEFAULT_PORTS["gateway"]
    # Comma-separated origins allowed by CORS; "*" reflects any origin (credentials stay allowed).
    cors_origins: str = "http://localhost:3000,http://localhost:5173"
    # Per-user limit over a rolling window, counted in memory by each gateway process.
    rate_limit_per_minute: int = Field(100, ge=1)
    rate_limit_window_seconds: int = Field(60, ge=1)
    # POST /auth/login attempts per minute per client IP + email.
    login_attempts_per_minute: int = Field(10, ge=1)
    refresh_ttl_seconds: int = Field(30 * 86_400, ge=60)
    # bcrypt cost of new hashes (data-model §3.1: 12); verification uses the cost stored in the hash.
    bcrypt_rounds: int = Field(12, ge=4, le=16)
    # Bounded LRU of verified access tokens (verification results cached for the token lifetime).
    token_cache_size: int = Field(10_000, ge=1)
    # Upstream base URLs in distributed mode; empty = http://127.0.0.1:<default port>.
    ingest_url: str = ""
    marketdata_url: str = ""
    greeks_url: str = ""
    factors_url: str = ""
    stress_url: str = ""
    upstream_timeout_seconds: float = Field(30.0, gt=0)
    upstream_connect_timeout_seconds: float = Field(5.0, gt=0)
    # Reverse proxies in front of the gateway whose X-Forwarded-For entries are trusted (0 = none:
    # the client address is the TCP peer).
    forwarded_hops: int = Field(0, ge=0)
    health_budget_seconds: float = Field(2.0, gt=0)
    # Activity-log writer: rows are buffered in memory and written in batches.
    activity_flush_seconds: float = Field(1.0, gt=0)
    activity_batch_size: int = Field(500, ge=1)
    demo_admin_password: str | None = Field(
        None, validation_alias=AliasChoices("DEMO_ADMIN_PASSWORD", "demo_admin_password")
    )
    marketdata_provider: str = Field(
        "fixture", validation_alias=AliasChoices("MARKETDATA_PROVIDER", "marketdata_provider")
    )

    def cors_origin_list(self) -> list[str]:
        """Configured CORS origins, trimmed, without trailing slashes."""
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    def upstream_urls(self) -> dict[str, str]:
        """Base URL of every engine service (distributed mode)."""
        out: dict[str, str] = {}
        for name in ENGINE_SERVICES:
            configured: str = getattr(self, f"{name}_url")
            out[name] = (configured or f"http://127.0.0.1:{DEFAULT_PORTS[name]}").rstrip("/")
        return out

    def data_source(self) -> str:
        """`fixture` unless MARKETDATA_PROVIDER names a live provider."""
        return "fixture" if self.marketdata_provider.strip().lower() in FIXTURE_PROVIDERS else "live"
