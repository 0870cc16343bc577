"""GET /health (#5): the gateway alone, or database + broker + every service within a 2 s budget."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any

from common.bus import Bus
from common.db import Database
from common.formatting import iso_datetime, utcnow
from gateway.upstream import Upstreams

log = logging.getLogger(__name__)

OK_VALUES = ("ok", "in_process")


class HealthChecker:
    """Runs the checks concurrently; results of `scope=all` are shared for `cache_seconds` so a
    burst of unauthenticated health calls costs one round of probes."""

    def __init__(
        self,
        db: Database,
        bus: Bus,
        upstreams: Upstreams,
        *,
        version: str,
        data_source: str,
        budget: float = 2.0,
        cache_seconds: float = 1.0,
    ) -> None:
        self.db = db
        self.bus = bus
        self.upstreams = upstreams
        self.version = version
        self.data_source = data_source
        self.budget = budget
        self.cache_seconds = cache_seconds
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._inflight: asyncio.Task[dict[str, Any]] | None = None

    def _body(self, checks: dict[str, Any]) -> dict[str, Any]:
        flat = [v for k, v in checks.items() if k != "services"] + list((checks.get("services") or {}).values())
        return {
            "status": "ok" if all(v in OK_VALUES for v in flat) else "error",
            "version": self.version,
            "data_source": self.data_source,
            "checks": checks,
            "checked_at": iso_datetime(utcnow()),
        }

    def gateway_only(self) -> dict[str, Any]:
        """Liveness of the gateway process (no I/O)."""
        return self._body({"gateway": "ok"})

    async def all(self) -> dict[str, Any]:
        """Every check, cached briefly and computed once for concurrent callers."""
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self.cache_seconds:
            return self._cached[1]
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.create_task(self._run())
        body = await asyncio.shield(self._inflight)
        self._cached = (time.monotonic(), body)
        return body

    async def _broker(self) -> str:
        if self.bus.kind == "in_process":
            return "in_process"
        return "ok" if await self.bus.ping() else "error"

    async def _bool(self, check: Awaitable[bool]) -> str:
        return "ok" if await check else "error"

    async def _run(self) -> dict[str, Any]:
        probes: dict[str, asyncio.Task[str]] = {
            "database": asyncio.create_task(self._bool(self.db.ping())),
            "broker": asyncio.create_task(self._broker()),
        }
        for service in self.upstreams.services:
            probes[f"service:{service}"] = asyncio.create_task(self._bool(self.upstreams.ready(service)))
        done, pending = await asyncio.wait(probes.values(), timeout=self.budget)
        for task in pending:
            task.cancel()
        results: dict[str, str] = {}
        for name, task in probes.items():
            if task in done and not task.cancelled() and task.exception() is None:
                results[name] = task.result()
            else:
                if task in done and task.exception() is not None:
                    log.warning("health check %s failed: %s", name, task.exception())
                results[name] = "error"
        checks: dict[str, Any] = {
            "database": results["database"],
            "broker": results["broker"],
            "services": {s: results[f"service:{s}"] for s in self.upstreams.services},
        }
        return self._body(checks)
