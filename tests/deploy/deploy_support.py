"""Helpers of the deployment tests: rendered kustomize overlays, YAML loading, tool lookup."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.settings import DEFAULT_PORTS, SERVICES
from common.testing import services_required

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "prod")
ALERTS_FILE = DEPLOY / "prometheus" / "alerts.yml"
KUBERNETES_VERSION = "1.30.0"
# Services whose queues drive autoscaling (KEDA in prod, CPU HPA in dev).
QUEUE_SCALED = ("greeks", "factors", "stress")

__all__ = ["DEFAULT_PORTS", "SERVICES"]


def require_tool(name: str, path: str | None = None) -> str:
    """Absolute path of a command-line tool; fails when CI requires it, skips on a laptop without it."""
    found = path if path and Path(path).exists() else shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed (Debian: apt-get install -y {name if name != 'promtool' else 'prometheus'})"
    if services_required():
        pytest.fail(message + " and SIGMASIGHT_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    """Every object `kubectl kustomize deploy/k8s/overlays/<overlay>` renders."""
    kubectl = require_tool("kubectl", "/usr/bin/kubectl")
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def objects(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    """Rendered objects of one kind by name."""
    return {doc["metadata"]["name"]: doc for doc in rendered(overlay) if doc["kind"] == kind}


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a Deployment, Job or CronJob."""
    spec = obj["spec"]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"]["spec"])


def load_yaml(path: Path) -> Any:
    """One YAML document."""
    return yaml.safe_load(path.read_text())


@cache
def declared_queues(service: str) -> frozenset[str]:
    """Consumer queues the service declares on RabbitMQ (built without connecting anywhere)."""
    from allinone.compose import build_service
    from common.bus import AmqpBus
    from common.db import Database

    bus = AmqpBus("amqp://unused", namespace="")
    build_service(service, Database("postgresql://unused/unused"), bus, mode="distributed", jwt_secret="q" * 40)
    return frozenset(sub.queue for sub in bus.subscriptions)
