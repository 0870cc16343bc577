"""Pure helpers: idempotency hashing, keys, body limits, activity naming, client addresses."""

from __future__ import annotations

import uuid

import pytest

from gateway.compute import (
    JSON_BODY_LIMIT,
    MULTIPART_BODY_LIMIT,
    PRICE_IMPORT_LIMIT,
    activity_action,
    body_limit,
    canonical_body,
    client_ip,
    is_internal_address,
    portfolio_id_of,
    request_hash,
    valid_idempotency_key,
)


def test_json_bodies_hash_the_same_whatever_key_order_and_spacing() -> None:
    a = request_hash("POST", "/api/v1/tags", b"", b'{"name": "Core", "color": "#fff"}', "application/json")
    b = request_hash("POST", "/api/v1/tags", b"", b'{ "color":"#fff","name":"Core" }', "application/json")
    assert a == b
    assert len(a) == 32


def test_any_difference_in_body_path_method_or_query_changes_the_hash() -> None:
    base = request_hash("POST", "/api/v1/tags", b"x=1", b'{"name": "Core"}', "application/json")
    assert base != request_hash("POST", "/api/v1/tags", b"x=1", b'{"name": "Core2"}', "application/json")
    assert base != request_hash("POST", "/api/v1/tagz", b"x=1", b'{"name": "Core"}', "application/json")
    assert base != request_hash("PUT", "/api/v1/tags", b"x=1", b'{"name": "Core"}', "application/json")
    assert base != request_hash("POST", "/api/v1/tags", b"x=2", b'{"name": "Core"}', "application/json")
    assert request_hash("POST", "/p", b"a=1&b=2", b"", "") == request_hash("POST", "/p", b"b=2&a=1", b"", "")


def test_multipart_boundaries_do_not_change_the_hash() -> None:
    def body(boundary: str) -> bytes:
        return (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
            f"symbol,quantity\r\nAAPL,1\r\n--{boundary}--\r\n"
        ).encode()

    first = request_hash("POST", "/u", b"", body("abc123"), "multipart/form-data; boundary=abc123")
    second = request_hash("POST", "/u", b"", body("zz9"), 'multipart/form-data; boundary="zz9"')
    assert first == second


def test_invalid_json_is_hashed_as_bytes() -> None:
    assert canonical_body(b"{not json", "application/json") == b"{not json"


@pytest.mark.parametrize("key", ["a", "A-b_9", "x" * 64, "5b1e0f3a-8c1d-4e0b-9a55-0c6a2f0e9d11"])
def test_valid_idempotency_keys(key: str) -> None:
    assert valid_idempotency_key(key)


@pytest.mark.parametrize("key", ["", "x" * 65, "has space", "slash/", "é"])
def test_invalid_idempotency_keys(key: str) -> None:
    assert not valid_idempotency_key(key)


def test_body_limits_by_route_and_content_type() -> None:
    assert body_limit("POST", "/api/v1/tags", "application/json") == JSON_BODY_LIMIT == 1024 * 1024
    assert body_limit("POST", "/api/v1/portfolio/upload", "multipart/form-data; boundary=x") == MULTIPART_BODY_LIMIT
    assert body_limit("POST", "/api/v1/market-data/prices/import", "multipart/form-data; b=1") == PRICE_IMPORT_LIMIT
    assert PRICE_IMPORT_LIMIT == 50 * 1024 * 1024
    assert MULTIPART_BODY_LIMIT == 10 * 1024 * 1024


@pytest.mark.parametrize(
    ("method", "template", "action"),
    [
        ("POST", "/api/v1/tags", "tag.create"),
        ("DELETE", "/api/v1/tags/{id}", "tag.delete"),
        ("POST", "/api/v1/portfolio/upload", "upload"),
        ("POST", "/api/v1/admin/batch/run-all", "batch.trigger"),
        ("POST", "/api/v1/admin/batch/greeks", "batch.trigger"),
        ("POST", "/api/v1/reports/generate", "reports.generate"),
        ("POST", "/api/v1/modeling/sessions/{id}/trades", "modeling.sessions.trades"),
        ("PUT", "/api/v1/things/{id}", "things.update"),
        ("PATCH", "/api/v1/portfolio", "portfolio.update"),
        ("POST", "/api/v1/export/trades", "export.trades"),
        ("POST", "/api/v1/auth/login", "login"),
        ("POST", "/api/v1/auth/logout", "logout"),
    ],
)
def test_activity_actions(method: str, template: str, action: str) -> None:
    assert activity_action(method, template) == action


def test_portfolio_id_from_path_onboarding_or_query() -> None:
    pid = uuid.uuid4()
    assert portfolio_id_of("/api/v1/factors/exposures/{portfolio_id}", {"portfolio_id": str(pid)}, b"") == pid
    assert portfolio_id_of("/api/v1/portfolio/onboarding/{id}/complete", {"id": str(pid)}, b"") == pid
    assert portfolio_id_of("/api/v1/positions", {}, f"limit=5&portfolio_id={pid}".encode()) == pid
    assert portfolio_id_of("/api/v1/tags/{id}", {"id": str(pid)}, b"") is None
    assert portfolio_id_of("/api/v1/positions", {}, b"portfolio_id=not-a-uuid") is None


def test_client_ip_trusts_only_the_configured_proxy_hops() -> None:
    assert client_ip("10.0.0.5", "1.2.3.4, 10.0.0.9", 0) == "10.0.0.5"
    assert client_ip("10.0.0.5", "1.2.3.4, 10.0.0.9", 1) == "10.0.0.9"
    assert client_ip("10.0.0.5", "1.2.3.4, 10.0.0.9", 2) == "1.2.3.4"
    assert client_ip("10.0.0.5", "1.2.3.4", 5) == "1.2.3.4"
    assert client_ip(None, None, 1) is None


@pytest.mark.parametrize(
    ("address", "internal"),
    [
        ("127.0.0.1", True),
        ("10.2.3.4", True),
        ("172.20.0.1", True),
        ("192.168.1.10", True),
        ("::1", True),
        ("fd00::1", True),
        ("::ffff:10.0.0.1", True),
        ("8.8.8.8", False),
        ("203.0.113.5", False),
        ("2001:4860::8888", False),
        ("testclient", False),
        (None, False),
    ],
)
def test_internal_addresses_for_metrics(address: str | None, internal: bool) -> None:
    assert is_internal_address(address) is internal
