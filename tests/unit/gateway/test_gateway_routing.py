"""Routing table of api.md §1.1 and route templates."""

from __future__ import annotations

import uuid

import pytest

from gateway.routing import LOCAL, Access, RouteTemplates, resolve, service_of


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("/api/v1/auth/login", LOCAL),
        ("/api/v1/auth/me", LOCAL),
        ("/api/v1/openapi.json", LOCAL),
        ("/health", LOCAL),
        ("/metrics", LOCAL),
        ("/api/v1/portfolio", "ingest"),
        ("/api/v1/portfolio/upload", "ingest"),
        ("/api/v1/portfolio/upload/123/status", "ingest"),
        ("/api/v1/portfolio/onboarding/abc/complete", "ingest"),
        ("/api/v1/portfolio/exposures", "stress"),
        ("/api/v1/portfolio/performance", "stress"),
        ("/api/v1/positions", "ingest"),
        ("/api/v1/positions/grouped", "ingest"),
        ("/api/v1/tags/bulk-assign", "ingest"),
        ("/api/v1/strategies", "ingest"),
        ("/api/v1/modeling/sessions/1/trades", "ingest"),
        ("/api/v1/admin/demo/reset", "ingest"),
        ("/api/v1/notifications", "ingest"),
        ("/api/v1/notifications/3f0c/read", "ingest"),
        ("/api/v1/admin/batch/run-all", "marketdata"),
        ("/api/v1/market-data/prices/AAPL", "marketdata"),
        ("/api/v1/securities/BRK-B", "marketdata"),
        ("/api/v1/risk/greeks", "greeks"),
        ("/api/v1/risk/greeks/calculate", "greeks"),
        ("/api/v1/risk/factors", "factors"),
        ("/api/v1/risk/factors/positions", "factors"),
        ("/api/v1/factors/definitions", "factors"),
        ("/api/v1/risk/correlations/factors/matrix", "factors"),
        ("/api/v1/risk/metrics", "stress"),
        ("/api/v1/risk/stress-testing/results/abc", "stress"),
        ("/api/v1/reports", "stress"),
        ("/api/v1/reports/abc/download", "stress"),
        ("/api/v1/export/trades", "stress"),
    ],
)
def test_longest_prefix_picks_the_owner(path: str, service: str) -> None:
    assert resolve(path).service == service


@pytest.mark.parametrize(
    ("prefix", "service"),
    [("ing", "ingest"), ("mkt", "marketdata"), ("grk", "greeks"), ("fac", "factors"), ("str", "stress")],
)
def test_jobs_route_by_id_prefix(prefix: str, service: str) -> None:
    target = resolve(f"/api/v1/jobs/{prefix}_{uuid.uuid4()}")
    assert target.service == service
    assert target.access is Access.PROTECTED
    assert target.label == "/api/v1/jobs/{job_id}"


@pytest.mark.parametrize("job_id", ["abc_123", "nounderscore", "ING_1", "_x"])
def test_jobs_with_unknown_prefix_are_job_not_found(job_id: str) -> None:
    assert resolve(f"/api/v1/jobs/{job_id}").access is Access.JOB_NOT_FOUND


@pytest.mark.parametrize(
    "path",
    ["/api/v1/unknown", "/api/v1", "/api/v1/", "/api/v1/jobs", "/api/v1/portfolios", "/api/v1/risk", "/", "/x"],
)
def test_paths_without_an_owner_are_not_found(path: str) -> None:
    assert resolve(path).access is Access.NOT_FOUND


def test_prefixes_match_whole_segments_only() -> None:
    assert resolve("/api/v1/tagsx").access is Access.NOT_FOUND
    assert resolve("/api/v1/reportsabc").access is Access.NOT_FOUND
    assert resolve("/api/v1/portfolio/exposuresx").service == "ingest"


def test_public_and_exempt_routes() -> None:
    for path in ("/health", "/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/openapi.json"):
        assert resolve(path).access is Access.PUBLIC
    assert resolve("/metrics").access is Access.METRICS
    assert resolve("/health").rate_limited is False
    assert resolve("/api/v1/auth/me").access is Access.PROTECTED
    assert resolve("/api/v1/positions").rate_limited is True


def test_fallback_labels_are_bounded_prefixes() -> None:
    assert resolve(f"/api/v1/positions/{uuid.uuid4()}").label == "/api/v1/positions/*"
    assert resolve("/api/v1/portfolio").label == "/api/v1/portfolio"


def test_service_of_openapi_paths() -> None:
    assert service_of("/api/v1/positions/{id}") == "ingest"
    assert service_of("/api/v1/jobs/{job_id}") == "jobs"
    assert service_of("/internal/debug") is None


def test_templates_prefer_literal_segments_and_capture_parameters() -> None:
    templates = RouteTemplates(
        [
            "/api/v1/positions/{id}",
            "/api/v1/positions/grouped",
            "/api/v1/positions/{id}/tags",
            "/api/v1/factors/exposures/{portfolio_id}/positions",
        ]
    )
    assert templates.match("/api/v1/positions/grouped") == ("/api/v1/positions/grouped", {})
    assert templates.match("/api/v1/positions/42") == ("/api/v1/positions/{id}", {"id": "42"})
    assert templates.match("/api/v1/positions/42/tags") == ("/api/v1/positions/{id}/tags", {"id": "42"})
    assert templates.match("/api/v1/factors/exposures/p1/positions") == (
        "/api/v1/factors/exposures/{portfolio_id}/positions",
        {"portfolio_id": "p1"},
    )
    assert templates.match("/api/v1/positions/42/other") is None
    assert templates.count == 4
