"""The merged OpenAPI 3.1 document (#8): the gateway's own routes plus every service's public paths.

Paths are taken only where the gateway routes them to that service (§1.1); component definitions
with the same name and different content are renamed `<service>__<Name>` and references rewritten.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from gateway.routing import JOBS_TEMPLATE, LOCAL, service_of
from gateway.upstream import Upstreams

log = logging.getLogger(__name__)

REF_PREFIX = "#/components/"
BEARER_SCHEME = "bearerAuth"
# Operations that need no token (api.md §2.2).
PUBLIC_OPERATIONS = {
    ("/api/v1/auth/login", "post"),
    ("/api/v1/auth/refresh", "post"),
    ("/health", "get"),
    ("/api/v1/openapi.json", "get"),
}
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

INFO_DESCRIPTION = """SigmaSight risk API for long/short equity and options portfolios.

* Authenticate with `POST /api/v1/auth/login`; send `Authorization: Bearer <access_token>`.
* Money, prices and quantities are decimal strings (money 2 dp, signed); statistics and ratios are
  JSON numbers, ratios as fractions (0.0639 = 6.39 %); timestamps are UTC with `Z`.
* Every response has `X-Request-ID`; authenticated responses carry `X-RateLimit-Limit`,
  `X-RateLimit-Remaining` and `X-RateLimit-Reset` (100 requests per rolling 60 s per user).
* Errors use one envelope: `{"error": {code, message, details, retryable, hint}, "meta": {...}}`.
* Long operations answer 202 with a job; poll `GET /api/v1/jobs/{job_id}` or send `Prefer: wait=N`.
* POSTs that create something or start work accept `Idempotency-Key` (replays carry
  `Idempotent-Replayed: true`).
"""

METRICS_PATH: dict[str, Any] = {
    "get": {
        "tags": ["platform"],
        "summary": "Prometheus metrics",
        "description": (
            "Prometheus text exposition (not JSON). Reachable without a token from loopback and private "
            "networks when no reverse proxy forwarded the request; otherwise an admin bearer token is "
            "required. Names follow `sigmasight_<svc>_<what>_<unit>`; durations are in seconds."
        ),
        "operationId": "metrics",
        "responses": {
            "200": {
                "description": "Metrics in Prometheus text format",
                "content": {
                    "text/plain": {
                        "schema": {"type": "string"},
                        "example": (
                            "sigmasight_gateway_http_requests_total"
                            '{route="/api/v1/portfolio",method="GET",status="200"} 42.0\n'
                        ),
                    }
                },
            }
        },
    }
}

JOBS_OPERATION_DESCRIPTION = (
    "Status of any async job. The gateway routes by the job-id prefix: `ing_` ingest, `mkt_` marketdata, "
    "`grk_` greeks, `fac_` factors, `str_` stress. Unknown prefix, unknown id or another user's job → "
    "404 `JOB_NOT_FOUND`. `progress.pct` is 0–100; timestamps are UTC."
)


def _rewrite_refs(node: Any, renames: Mapping[str, str]) -> Any:
    """Copy of `node` with `$ref`s to renamed components rewritten."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value in renames:
                out[key] = renames[value]
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, renames) for v in node]
    return node


def merge_openapi(
    gateway_doc: Mapping[str, Any],
    service_docs: Mapping[str, Mapping[str, Any] | None],
    *,
    version: str,
) -> dict[str, Any]:
    """One OpenAPI 3.1 document from the gateway's and the services' documents (None = unavailable)."""
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "SigmaSight API", "version": version, "description": INFO_DESCRIPTION},
        "servers": [{"url": "/"}],
        "paths": {},
        "components": {
            "securitySchemes": {
                BEARER_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "Access token from POST /api/v1/auth/login (HS256, 24 h).",
                }
            }
        },
        "security": [{BEARER_SCHEME: []}],
        "tags": [],
    }
    seen_tags: set[str] = set()
    unavailable: list[str] = []
    sources: list[tuple[str, Mapping[str, Any]]] = [(LOCAL, gateway_doc)]
    for name, doc in service_docs.items():
        if doc is None:
            unavailable.append(name)
        else:
            sources.append((name, doc))

    for service, doc in sources:
        components = doc.get("components") or {}
        renames: dict[str, str] = {}
        staged: list[tuple[str, str, Any]] = []
        for kind, entries in components.items():
            if kind == "securitySchemes":
                continue
            target = merged["components"].setdefault(kind, {})
            for name, definition in entries.items():
                new_name = name
                if name in target and target[name] != definition:
                    new_name = f"{service}__{name}"
                    renames[f"{REF_PREFIX}{kind}/{name}"] = f"{REF_PREFIX}{kind}/{new_name}"
                staged.append((kind, new_name, definition))
        for kind, name, definition in staged:
            merged["components"][kind].setdefault(name, _rewrite_refs(definition, renames))
        for path, item in (doc.get("paths") or {}).items():
            owner = service_of(path)
            if owner is None or (owner not in (service, "jobs")):
                continue
            if path in merged["paths"]:
                continue  # the jobs route is mounted by every service; one copy describes it
            merged["paths"][path] = _rewrite_refs(copy.deepcopy(dict(item)), renames)
        for tag in doc.get("tags") or []:
            if tag.get("name") not in seen_tags:
                seen_tags.add(tag["name"])
                merged["tags"].append(tag)

    merged["paths"].setdefault("/metrics", METRICS_PATH)
    jobs = merged["paths"].get(JOBS_TEMPLATE)
    if jobs and "get" in jobs:
        jobs["get"]["description"] = JOBS_OPERATION_DESCRIPTION
    for path, item in merged["paths"].items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is not None and (path, method) in PUBLIC_OPERATIONS:
                operation["security"] = []
    merged["paths"] = dict(sorted(merged["paths"].items()))
    if unavailable:
        merged["info"]["x-unavailable-services"] = sorted(unavailable)
    return merged


class OpenApiDocument:
    """The merged document, cached: for good in process (routes do not change at run time), for
    `ttl` seconds over HTTP, and only briefly while a service is unavailable."""

    def __init__(
        self,
        build_gateway_doc: Callable[[], dict[str, Any]],
        upstreams: Upstreams,
        *,
        version: str,
        ttl: float = 300.0,
        retry_after: float = 10.0,
    ) -> None:
        self.build_gateway_doc = build_gateway_doc
        self.upstreams = upstreams
        self.version = version
        self.ttl = ttl
        self.retry_after = retry_after
        self._cached: bytes | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def render(self) -> bytes:
        """The merged document as JSON bytes."""
        if self._cached is not None and time.monotonic() < self._expires:
            return self._cached
        async with self._lock:
            if self._cached is not None and time.monotonic() < self._expires:
                return self._cached
            return await self._rebuild()

    async def _rebuild(self) -> bytes:
        services = self.upstreams.services
        docs = await asyncio.gather(*(self.upstreams.openapi(s) for s in services))
        merged = merge_openapi(self.build_gateway_doc(), dict(zip(services, docs, strict=True)), version=self.version)
        self._cached = orjson.dumps(merged)
        complete = all(doc is not None for doc in docs)
        if not complete:
            lifetime = self.retry_after
        elif self.upstreams.kind == "in_process":
            lifetime = math.inf
        else:
            lifetime = self.ttl
        self._expires = time.monotonic() + lifetime
        return self._cached

    async def refresh_forever(self) -> None:
        """Background loop (distributed mode): keep the document and the proxy's route templates fresh."""
        while True:
            try:
                async with self._lock:
                    await self._rebuild()
            except Exception as exc:
                log.warning("could not rebuild the merged OpenAPI document: %s", exc)
            await asyncio.sleep(self.retry_after if self._expires - time.monotonic() <= self.retry_after else self.ttl)
