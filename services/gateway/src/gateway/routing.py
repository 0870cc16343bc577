"""Routing (api.md §1.1): longest matching path prefix → owning service, jobs by id prefix.

Both lookups are precompiled into dicts, so resolving a path costs a few dict probes. Route templates
(`/api/v1/positions/{id}`) for logs, metrics and the activity log come from the upstream app's
matched route in process, or from a segment trie built from the OpenAPI paths when proxying.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

from common.ids import PREFIX_SERVICES

LOCAL = "gateway"
API_PREFIX = "/api/v1"
JOBS_PREFIX = "/api/v1/jobs/"
JOBS_TEMPLATE = "/api/v1/jobs/{job_id}"


class Access(Enum):
    """How the edge treats a route before dispatching it."""

    PUBLIC = "public"  # no token needed, rate-limit exempt or limited by its own handler
    PROTECTED = "protected"  # bearer token + per-user rate limit
    METRICS = "metrics"  # internal network, or an admin token
    JOB_NOT_FOUND = "job_not_found"  # /jobs/{id} with an unknown prefix (404 after authentication)
    NOT_FOUND = "not_found"  # no owner: 404 ROUTE_NOT_FOUND


@dataclass(frozen=True, slots=True)
class Target:
    """Where a path goes: `service` (LOCAL for the gateway) and the label used when no template is known."""

    service: str
    access: Access
    label: str
    rate_limited: bool = True


# Longest matching prefix wins; a prefix matches the path itself and anything below it ("/a" covers
# "/a" and "/a/b", not "/ab").
PREFIX_TABLE: dict[str, str] = {
    "/api/v1/auth": LOCAL,
    "/api/v1/portfolio/exposures": "stress",
    "/api/v1/portfolio/performance": "stress",
    "/api/v1/portfolio": "ingest",
    "/api/v1/positions": "ingest",
    "/api/v1/tags": "ingest",
    "/api/v1/strategies": "ingest",
    "/api/v1/modeling": "ingest",
    "/api/v1/admin/demo": "ingest",
    "/api/v1/notifications": "ingest",
    "/api/v1/admin/batch": "marketdata",
    "/api/v1/market-data": "marketdata",
    "/api/v1/securities": "marketdata",
    "/api/v1/risk/greeks": "greeks",
    "/api/v1/risk/factors": "factors",
    "/api/v1/factors": "factors",
    "/api/v1/risk/correlations": "factors",
    "/api/v1/risk/metrics": "stress",
    "/api/v1/risk/stress-testing": "stress",
    "/api/v1/reports": "stress",
    "/api/v1/export": "stress",
}

# Exact local paths that need no token. /health, /healthz, /readyz and /metrics are rate-limit exempt;
# login and refresh are throttled by their handlers (per IP + email, and per user).
PUBLIC_PATHS: dict[str, Target] = {
    "/health": Target(LOCAL, Access.PUBLIC, "/health", rate_limited=False),
    "/healthz": Target(LOCAL, Access.PUBLIC, "/healthz", rate_limited=False),
    "/readyz": Target(LOCAL, Access.PUBLIC, "/readyz", rate_limited=False),
    "/docs": Target(LOCAL, Access.PUBLIC, "/docs", rate_limited=False),
    "/api/v1/openapi.json": Target(LOCAL, Access.PUBLIC, "/api/v1/openapi.json", rate_limited=False),
    "/api/v1/auth/login": Target(LOCAL, Access.PUBLIC, "/api/v1/auth/login", rate_limited=False),
    "/api/v1/auth/refresh": Target(LOCAL, Access.PUBLIC, "/api/v1/auth/refresh", rate_limited=False),
    "/metrics": Target(LOCAL, Access.METRICS, "/metrics", rate_limited=False),
}

NOT_FOUND = Target(LOCAL, Access.NOT_FOUND, "unmatched", rate_limited=False)
JOB_NOT_FOUND = Target(LOCAL, Access.JOB_NOT_FOUND, JOBS_TEMPLATE)
_JOB_TARGETS = {prefix: Target(svc, Access.PROTECTED, JOBS_TEMPLATE) for prefix, svc in PREFIX_SERVICES.items()}
_PREFIX_TARGETS = {prefix: Target(svc, Access.PROTECTED, f"{prefix}/*") for prefix, svc in PREFIX_TABLE.items()}
_EXACT_TARGETS = {prefix: Target(svc, Access.PROTECTED, prefix) for prefix, svc in PREFIX_TABLE.items()}


@lru_cache(maxsize=8192)
def resolve(path: str) -> Target:
    """The target of a request path (api.md §1.1)."""
    public = PUBLIC_PATHS.get(path)
    if public is not None:
        return public
    if not path.startswith(API_PREFIX):
        return NOT_FOUND
    exact = _EXACT_TARGETS.get(path)
    if exact is not None:
        return exact
    if path.startswith(JOBS_PREFIX):
        job_id = path[len(JOBS_PREFIX) :].split("/", 1)[0]
        prefix, sep, _ = job_id.partition("_")
        if not sep:
            return JOB_NOT_FOUND
        return _JOB_TARGETS.get(prefix, JOB_NOT_FOUND)
    candidate = path
    while True:
        cut = candidate.rfind("/")
        if cut <= len(API_PREFIX):
            return NOT_FOUND
        candidate = candidate[:cut]
        target = _PREFIX_TARGETS.get(candidate)
        if target is not None:
            return target


def service_of(path_template: str) -> str | None:
    """Owner of an OpenAPI path template (used when merging documents), None when unrouted."""
    if path_template == JOBS_TEMPLATE:
        return "jobs"
    target = resolve(path_template)
    if target.access in (Access.NOT_FOUND, Access.JOB_NOT_FOUND):
        return None
    return target.service


class _Node:
    __slots__ = ("literal", "param", "param_name", "template")

    def __init__(self) -> None:
        self.literal: dict[str, _Node] = {}
        self.param: _Node | None = None
        self.param_name: str | None = None
        self.template: str | None = None


class RouteTemplates:
    """Segment trie of path templates: `/api/v1/positions/3f0c…` → (`/api/v1/positions/{id}`, {id: …}).

    Literal segments win over parameters (`/positions/grouped` before `/positions/{id}`).
    """

    def __init__(self, templates: Iterable[str] = ()) -> None:
        self._root = _Node()
        self.count = 0
        for template in templates:
            self.add(template)

    def add(self, template: str) -> None:
        """Register one template such as `/api/v1/tags/{id}`."""
        node = self._root
        for segment in template.strip("/").split("/"):
            if segment.startswith("{") and segment.endswith("}"):
                if node.param is None:
                    node.param = _Node()
                    node.param_name = segment[1:-1]
                node = node.param
            else:
                node = node.literal.setdefault(segment, _Node())
        if node.template is None:
            self.count += 1
        node.template = template

    def match(self, path: str) -> tuple[str, dict[str, str]] | None:
        """The template matching `path` and its parameters, or None."""
        segments = path.strip("/").split("/")
        return self._match(self._root, segments, 0, {})

    def _match(
        self, node: _Node, segments: list[str], i: int, params: dict[str, str]
    ) -> tuple[str, dict[str, str]] | None:
        if i == len(segments):
            return (node.template, params) if node.template is not None else None
        segment = segments[i]
        child = node.literal.get(segment)
        if child is not None:
            found = self._match(child, segments, i + 1, params)
            if found is not None:
                return found
        if node.param is not None and segment:
            found = self._match(node.param, segments, i + 1, {**params, str(node.param_name): segment})
            if found is not None:
                return found
        return None
