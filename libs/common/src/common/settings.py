"""Settings shared by every service (pydantic-settings); services extend BaseServiceSettings."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Mode = Literal["allinone", "distributed"]

# Distributed-mode default ports per service (overridable with <SVC>_PORT).
DEFAULT_PORTS: dict[str, int] = {
    "gateway": 8000,
    "ingest": 8001,
    "marketdata": 8002,
    "greeks": 8003,
    "factors": 8004,
    "stress": 8005,
}

SERVICES: tuple[str, ...] = ("gateway", "ingest", "marketdata", "greeks", "factors", "stress")
ENGINE_SERVICES: tuple[str, ...] = ("ingest", "marketdata", "greeks", "factors", "stress")


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class BaseServiceSettings(BaseSettings):
    """Settings every service reads. Unprefixed env names (DATABASE_URL, AMQP_URL, ...)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    mode: Mode = Field("allinone", validation_alias=_alias("SIGMASIGHT_MODE", "mode"))
    database_url: str | None = Field(None, validation_alias=_alias("DATABASE_URL", "database_url"))
    amqp_url: str | None = Field(None, validation_alias=_alias("AMQP_URL", "amqp_url"))
    log_level: str = Field("INFO", validation_alias=_alias("LOG_LEVEL", "log_level"))
    jwt_secret: str | None = Field(None, validation_alias=_alias("JWT_SECRET", "jwt_secret"))
    jwt_access_ttl_seconds: int = Field(
        86_400, validation_alias=_alias("JWT_ACCESS_TTL_SECONDS", "jwt_access_ttl_seconds")
    )
    bus_namespace: str = Field("", validation_alias=_alias("SIGMASIGHT_BUS_NAMESPACE", "bus_namespace"))
    data_dir: Path = Field(Path(".sigmasight"), validation_alias=_alias("SIGMASIGHT_DATA_DIR", "data_dir"))
    bus_prefetch: int = Field(8, validation_alias=_alias("SIGMASIGHT_BUS_PREFETCH", "bus_prefetch"))
    db_pool_size: int = Field(10, validation_alias=_alias("SIGMASIGHT_DB_POOL_SIZE", "db_pool_size"))
    # PostgreSQL workers per parallel query for this service's sessions (common.db explains the 0).
    db_parallel_workers: int = Field(
        0, ge=0, validation_alias=_alias("SIGMASIGHT_DB_PARALLEL_WORKERS", "db_parallel_workers")
    )

    def require_distributed(self) -> None:
        """Distributed mode needs both URLs and a JWT secret; fail fast with a clear message."""
        missing = [
            name
            for name, value in (
                ("DATABASE_URL", self.database_url),
                ("AMQP_URL", self.amqp_url),
                ("JWT_SECRET", self.jwt_secret),
            )
            if not value
        ]
        if missing:
            raise SystemExit(f"distributed mode needs {', '.join(missing)} to be set")

    def resolved_jwt_secret(self) -> str:
        """The JWT secret; in all-in-one mode a generated one is kept in the data dir (0600)."""
        if self.jwt_secret:
            return self.jwt_secret
        if self.mode == "distributed":
            raise SystemExit("JWT_SECRET must be set in distributed mode")
        path = self.data_dir / "jwt_secret"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        return value
