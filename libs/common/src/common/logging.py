"""JSON logs with request/run/event ids carried in context variables."""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

import orjson

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
run_id_var: ContextVar[str | None] = ContextVar("run_id", default=None)
event_id_var: ContextVar[str | None] = ContextVar("event_id", default=None)
user_id_var: ContextVar[str | None] = ContextVar("user_id", default=None)

_KNOWN_SERVICES = {"gateway", "ingest", "marketdata", "greeks", "factors", "stress", "common", "allinone"}
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_SECRET_KEYS = {"password", "authorization", "access_token", "refresh_token", "token", "api_key", "cookie"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, severity, service, logger, message + context ids."""

    def __init__(self, default_service: str) -> None:
        super().__init__()
        self.default_service = default_service
        self._second = -1
        self._prefix = ""

    def format(self, record: logging.LogRecord) -> str:
        created = record.created
        second = int(created)
        if second != self._second:
            # One strftime per second: the access log writes a line for every request.
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        top = record.name.split(".", 1)[0]
        payload: dict[str, Any] = {
            "timestamp": f"{self._prefix}.{int((created - second) * 1000):03d}Z",
            "severity": record.levelname,
            "service": top if top in _KNOWN_SERVICES and top != "common" else self.default_service,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id_var.get(),
            "run_id": run_id_var.get(),
            "event_id": event_id_var.get(),
        }
        extras = record.__dict__.keys() - _RESERVED
        for key in extras:
            if not key.startswith("_"):
                payload[key] = "[redacted]" if key.lower() in _SECRET_KEYS else record.__dict__[key]
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(payload, default=str).decode()


def configure(service: str, level: str = "INFO") -> None:
    """Route all logging to stdout as JSON lines for `service`."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "aio_pika", "aiormq", "yfinance", "asyncio", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
