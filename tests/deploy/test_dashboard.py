"""The Grafana dashboard: valid JSON with unique panel ids on a Prometheus datasource, covering the
cycle and the API, and reading only metrics documented in docs/operations.md."""

from __future__ import annotations

import json
import re

from tests.deploy.deploy_support import DEPLOY, ROOT

DASHBOARD = DEPLOY / "grafana" / "sigmasight-dashboard.json"
SUFFIXES = ("_bucket", "_count", "_sum")


def test_dashboard_panels_query_documented_metrics_only() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    assert {p["title"] for p in panels if p["type"] == "row"} == {"Daily cycle", "API"}
    runbook = (ROOT / "docs" / "operations.md").read_text()
    documented = set(re.findall(r"`(sigmasight_[a-z_<>]+?)(?:\{[^`]*\})?`", runbook))
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    assert exprs
    for expr in exprs:
        for name in re.findall(r"sigmasight_[a-z_]+", expr):
            base = next((name[: -len(s)] for s in SUFFIXES if name.endswith(s)), name)
            assert base in documented, f"{name} is not documented in docs/operations.md"
        for pattern in re.findall(r'__name__=~"sigmasight_\[a-z\]\+_([a-z_]+)"', expr):
            base = next((pattern[: -len(s)] for s in SUFFIXES if pattern.endswith(s)), pattern)
            assert f"sigmasight_<svc>_{base}" in documented, pattern
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"]["type"] == "prometheus"
