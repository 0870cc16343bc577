"""docker-compose.yml: valid against the Compose Specification's JSON Schema (the copy check-jsonschema
vendors from compose-spec/compose-spec), and its services, dependencies and health checks agree."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import jsonschema
import pytest
from tests.deploy.deploy_support import DEFAULT_PORTS, ROOT, SERVICES, load_yaml

INFRA = ("postgres", "rabbitmq")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(load_yaml(ROOT / "docker-compose.yml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Validator:
    text = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    schema = json.loads(text)
    return jsonschema.Draft202012Validator(schema)


def test_compose_file_validates_against_the_compose_spec(compose: dict[str, Any], validator: Any) -> None:
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


def test_compose_schema_rejects_a_misspelt_key(compose: dict[str, Any], validator: Any) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["gateway"]["healthcheks"] = broken["services"]["gateway"].pop("healthcheck")
    assert list(validator.iter_errors(broken))


def test_every_service_runs_distributed_behind_healthy_infrastructure(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(SERVICES) | set(INFRA) | {"migrate", "prometheus"} <= set(services)
    for name in SERVICES:
        svc = services[name]
        assert svc["build"]["dockerfile"] == f"services/{name}/Dockerfile"
        assert (ROOT / svc["build"]["dockerfile"]).is_file()
        env = svc["environment"]
        assert env["SIGMASIGHT_MODE"] == "distributed"
        assert {"DATABASE_URL", "AMQP_URL", "JWT_SECRET"} <= set(env)
        deps = svc["depends_on"]
        assert deps["postgres"]["condition"] == deps["rabbitmq"]["condition"] == "service_healthy"
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert svc["read_only"] is True and "/tmp" in svc["tmpfs"]
        probe = " ".join(svc["healthcheck"]["test"])
        assert f"http://127.0.0.1:{DEFAULT_PORTS[name]}/readyz" in probe
        if name != "gateway":
            assert env[f"GATEWAY_{name.upper()}_URL"] == f"http://{name}:{DEFAULT_PORTS[name]}"


def test_every_dependency_exists_and_waits_for_a_health_check_it_has(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, svc in services.items():
        for dep, condition in svc.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}, which has no healthcheck"
    assert services["migrate"]["command"] == ["seed"]
    assert services["migrate"]["restart"] == "no"


def test_secrets_have_no_defaults(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for variable in ("JWT_SECRET", "DEMO_ADMIN_PASSWORD", "POSTGRES_PASSWORD", "RABBITMQ_PASSWORD"):
        assert f"${{{variable}:?" in text, f"{variable} must be required, not defaulted"
        assert f"${{{variable}:-" not in text


def test_prometheus_scrapes_every_service_and_loads_the_alerts(compose: dict[str, Any]) -> None:
    volumes = compose["services"]["prometheus"]["volumes"]
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in volumes
    config = load_yaml(ROOT / "deploy" / "compose" / "prometheus.yml")
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    for name in SERVICES:
        assert targets[name] == [f"{name}:{DEFAULT_PORTS[name]}"]
