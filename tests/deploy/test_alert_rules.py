"""Alert rules: `promtool check rules` accepts them, promtool unit tests (alerts_test.yml and
cycle_alert_test.yml) show each alert firing on its series after its `for` and not before, the
Kubernetes PrometheusRule carries the same groups, and every alert has a runbook section."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from tests.deploy.deploy_support import ALERTS_FILE, DEPLOY, K8S, ROOT, load_yaml, require_tool


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_tool("promtool", "/usr/bin/promtool")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def alert_names() -> list[str]:
    return [rule["alert"] for group in load_yaml(ALERTS_FILE)["groups"] for rule in group["rules"] if "alert" in rule]


def test_alert_rules_pass_promtool_check(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(ALERTS_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in result.stdout


def test_each_alert_fires_on_its_series_after_its_for_duration(promtool: str) -> None:
    files = [Path(__file__).with_name(name) for name in ("alerts_test.yml", "cycle_alert_test.yml")]
    result = run(promtool, "test", "rules", *map(str, files))
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {
        case["alertname"] for path in files for group in load_yaml(path)["tests"] for case in group["alert_rule_test"]
    }
    assert tested == set(alert_names())


def test_compose_prometheus_config_passes_promtool(promtool: str, tmp_path: Path) -> None:
    config = load_yaml(DEPLOY / "compose" / "prometheus.yml")
    config["rule_files"] = [str(ALERTS_FILE)]  # the container path, mapped to the repository file
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = run(promtool, "check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_rule_carries_the_same_groups_as_the_rule_file() -> None:
    rule = load_yaml(K8S / "base" / "monitoring" / "prometheusrule.yaml")
    assert rule["spec"]["groups"] == load_yaml(ALERTS_FILE)["groups"]


def test_every_alert_has_a_runbook_section() -> None:
    runbook = (ROOT / "docs" / "operations.md").read_text()
    for group in load_yaml(ALERTS_FILE)["groups"]:
        for rule in group["rules"]:
            assert f"### {rule['alert']}" in runbook, rule["alert"]
            assert rule["annotations"]["runbook"] == f"docs/operations.md#{rule['alert'].lower()}"
