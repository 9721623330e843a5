"""promtool and the observability files under deploy/observability."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
OBSERVABILITY = ROOT / "deploy" / "observability"
PROMETHEUS = OBSERVABILITY / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
RULES_TEST = PROMETHEUS / "alerts.test.yml"
DASHBOARDS = OBSERVABILITY / "grafana" / "dashboards"
METRICS = OBSERVABILITY / "metrics.yml"


@pytest.fixture(scope="session")
def promtool() -> str:
    """Never skipped: without promtool the rules are unchecked, so the test fails."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not installed; it comes with Debian's Prometheus package: "
            "apt-get install -y prometheus",
            pytrace=False,
        )
    return path


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # a collapsed row keeps its panels inside
    return found


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target."""
    return [
        (f"panel {panel['id']} {panel.get('title', '')!r} target {target['refId']}", target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]
