"""deploy/k8s: both overlays render with kustomize, every object validates against the Kubernetes 1.30
schemas (custom resources against schemas written from their upstream CRDs), and the objects agree
with each other and with the services (ports, probes, queues, selectors, secrets)."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
from kubernetes_validate import utils as kubernetes_validate
from tests.deploy.crd_schemas import CRD_SCHEMAS
from tests.deploy.deploy_support import (
    DEFAULT_PORTS,
    K8S,
    KUBERNETES_VERSION,
    OVERLAYS,
    QUEUE_SCALED,
    SERVICES,
    declared_queues,
    load_yaml,
    objects,
    pod_spec,
    rendered,
)


def validate(doc: dict[str, Any]) -> None:
    """Kubernetes' own schema (strict: unknown fields fail) or the CRD's structural schema."""
    schema = CRD_SCHEMAS.get(doc["kind"])
    if schema is not None:
        jsonschema.Draft202012Validator(schema).validate(doc)
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_validates_against_kubernetes_1_30(overlay: str) -> None:
    docs = rendered(overlay)
    assert len(docs) > 30
    for doc in docs:
        try:
            validate(doc)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            pytest.fail(f"{overlay}: {doc['kind']}/{doc['metadata']['name']} is invalid: {exc}")


def test_validation_rejects_unknown_fields_and_bad_values() -> None:
    deployment = copy.deepcopy(objects("prod", "Deployment")["gateway"])
    deployment["spec"]["replicass"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    scaled = copy.deepcopy(objects("prod", "ScaledObject")["greeks"])
    scaled["spec"]["triggers"][0]["metdata"] = scaled["spec"]["triggers"][0].pop("metadata")
    with pytest.raises(jsonschema.ValidationError):
        validate(scaled)
    rule = copy.deepcopy(objects("prod", "PrometheusRule")["sigmasight"])
    rule["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    with pytest.raises(jsonschema.ValidationError):
        validate(rule)
    monitor = copy.deepcopy(objects("prod", "ServiceMonitor")["sigmasight"])
    del monitor["spec"]["selector"]
    with pytest.raises(jsonschema.ValidationError):
        validate(monitor)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_runs_hardened_with_probes_resources_and_its_port(overlay: str) -> None:
    deployments, services = objects(overlay, "Deployment"), objects(overlay, "Service")
    assert set(deployments) == set(SERVICES) == set(services)
    for name in SERVICES:
        spec = pod_spec(deployments[name])
        (container,) = spec["containers"]
        port = DEFAULT_PORTS[name]
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert container["args"] == ["--port", str(port)]
        assert container["image"].startswith(f"sigmasight/{name}:")
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]) & set(container["resources"]["limits"])
        assert_hardened(spec)
        assert services[name]["spec"]["ports"][0]["port"] == port
        assert services[name]["spec"]["selector"] == deployments[name]["spec"]["selector"]["matchLabels"]


def assert_hardened(spec: dict[str, Any]) -> None:
    """Non-root, read-only root filesystem with an emptyDir at /tmp, no privilege escalation, no
    service links (they would inject <SERVICE>_PORT=tcp://..., a SigmaSight setting)."""
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["enableServiceLinks"] is False
    assert spec["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in spec["volumes"]}
    for container in spec["containers"]:
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert "emptyDir" in volumes[tmp["name"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_daily_cycle_cronjob_is_safe_and_idempotent_per_as_of_date(overlay: str) -> None:
    cron = objects(overlay, "CronJob")["sigmasight-daily-cycle"]["spec"]
    assert cron["concurrencyPolicy"] == "Forbid"
    assert cron["timeZone"] == "America/New_York"
    assert cron["schedule"] == "30 16 * * 1-5"
    assert 0 < cron["startingDeadlineSeconds"] <= 3600
    job = cron["jobTemplate"]["spec"]
    assert job["backoffLimit"] >= 1
    assert job["activeDeadlineSeconds"] > 3600  # longer than the 60-minute run limit
    spec = pod_spec(objects(overlay, "CronJob")["sigmasight-daily-cycle"])
    (container,) = spec["containers"]
    # No --force and no fixed --date: the default as-of date, deduplicated when already completed.
    assert container["args"] == ["cycle", "run", "--wait"]
    assert container["image"].startswith("sigmasight/allinone:")
    assert_hardened(spec)
    config = objects(overlay, "ConfigMap")["sigmasight-config"]["data"]
    assert config["SIGMASIGHT_URL"] == f"http://gateway:{DEFAULT_PORTS['gateway']}"
    assert config["MARKETDATA_SCHEDULER_ENABLED"] == "false"  # the CronJob is the only trigger


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migration_job_migrates_and_seeds_idempotently(overlay: str) -> None:
    job = objects(overlay, "Job")["sigmasight-migrate"]
    assert job["spec"]["backoffLimit"] >= 1
    spec = pod_spec(job)
    assert spec["containers"][0]["args"] == ["seed"]
    assert spec["restartPolicy"] == "Never"
    assert_hardened(spec)


def test_prod_scales_queue_consumers_with_keda_on_their_own_queues() -> None:
    scaled, deployments = objects("prod", "ScaledObject"), objects("prod", "Deployment")
    assert set(scaled) == set(QUEUE_SCALED)
    assert not objects("prod", "HorizontalPodAutoscaler")
    auths = objects("prod", "TriggerAuthentication")
    for name, obj in scaled.items():
        assert obj["spec"]["scaleTargetRef"]["name"] in deployments
        assert "replicas" not in deployments[name]["spec"]  # the autoscaler owns the count
        queues = {t["metadata"]["queueName"] for t in obj["spec"]["triggers"]}
        assert queues == declared_queues(name), (
            f"{name}: the ScaledObject's triggers (deploy/k8s/overlays/prod/keda.yaml) must list exactly the "
            f"queues the service consumes: add {sorted(declared_queues(name) - queues)}, "
            f"remove {sorted(queues - declared_queues(name))}"
        )
        for trigger in obj["spec"]["triggers"]:
            assert trigger["type"] == "rabbitmq"
            assert trigger["metadata"]["mode"] == "QueueLength"
            assert trigger["authenticationRef"]["name"] in auths
    (auth,) = auths.values()
    assert auth["spec"]["secretTargetRef"] == [{"parameter": "host", "name": "sigmasight-secrets", "key": "AMQP_URL"}]


def test_dev_scales_queue_consumers_on_cpu_without_keda() -> None:
    hpas = objects("dev", "HorizontalPodAutoscaler")
    assert set(hpas) == set(QUEUE_SCALED)
    assert not objects("dev", "ScaledObject")
    for name, hpa in hpas.items():
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_a_disruption_budget(overlay: str) -> None:
    budgets = objects(overlay, "PodDisruptionBudget")
    deployments = objects(overlay, "Deployment")
    assert set(budgets) == set(SERVICES)
    for name, pdb in budgets.items():
        assert pdb["spec"]["selector"]["matchLabels"] == deployments[name]["spec"]["selector"]["matchLabels"]
        assert pdb["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_expose_only_the_gateway(overlay: str) -> None:
    policies = list(objects(overlay, "NetworkPolicy").values())
    assert any(p["spec"]["podSelector"] == {} and "ingress" not in p["spec"] for p in policies), "default deny"
    open_to_all = [p for p in policies for rule in p["spec"].get("ingress", []) if "from" not in rule]
    assert [p["spec"]["podSelector"] for p in open_to_all] == [{"matchLabels": {"app.kubernetes.io/name": "gateway"}}]
    for name, deployment in objects(overlay, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "sigmasight", name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_monitor_scrapes_every_service_with_the_job_label_the_alerts_use(overlay: str) -> None:
    (monitor,) = objects(overlay, "ServiceMonitor").values()
    selector = monitor["spec"]["selector"]["matchLabels"]
    selected = [s for s in objects(overlay, "Service").values() if selector.items() <= s["metadata"]["labels"].items()]
    assert sorted(s["metadata"]["name"] for s in selected) == sorted(SERVICES)
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"
    ports = {p["name"] for s in selected for p in s["spec"]["ports"]}
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["http"] and ports == {"http"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_points_the_gateway_at_each_service(overlay: str) -> None:
    data = objects(overlay, "ConfigMap")["sigmasight-config"]["data"]
    assert data["SIGMASIGHT_MODE"] == "distributed"
    for name in SERVICES:
        if name != "gateway":
            assert data[f"GATEWAY_{name.upper()}_URL"] == f"http://{name}:{DEFAULT_PORTS[name]}"


def test_secrets_come_from_one_secret_whose_template_holds_placeholders_only() -> None:
    template = load_yaml(K8S / "secret.template.yaml")
    kubernetes_validate.validate(template, KUBERNETES_VERSION, strict=True)
    values = template["stringData"]
    assert {"JWT_SECRET", "DEMO_ADMIN_PASSWORD", "DATABASE_URL", "AMQP_URL"} <= set(values)
    assert all("<" in value for value in values.values()), "the template must not hold real values"
    for overlay in OVERLAYS:
        assert not objects(overlay, "Secret"), "secrets are never rendered from the repository"
        for kind in ("Deployment", "Job", "CronJob"):
            for obj in objects(overlay, kind).values():
                for container in pod_spec(obj)["containers"]:
                    refs = [e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e]
                    keys = [e["valueFrom"]["secretKeyRef"] for e in container.get("env", []) if "valueFrom" in e]
                    assert set(refs) | {k["name"] for k in keys} == {"sigmasight-secrets"}
                    assert {k["key"] for k in keys} <= set(values)
