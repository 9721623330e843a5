"""The alert rules and scrape configs pass promtool; the rules fire on synthetic series;
the dashboard's queries are PromQL that Prometheus parses."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.unit.observability.conftest import (
    PROMETHEUS,
    RULES,
    RULES_TEST,
    dashboard_queries,
    dashboards,
    rules,
)
from tests.unit.observability.promql import fill_grafana_variables

# What issue 13 asks the rules to cover, by the alert that does.
REQUIRED_ALERTS = {
    "DeadLetterAppeared",  # a dead letter appeared
    "OutboxLagHigh",  # outbox lag over a threshold
    "PendingOrdersNearDeadline",  # pending orders near their deadline
    "QueueWithoutConsumer",  # a queue with no consumer
    "RetryRateHigh",  # retry rate high
}


def run(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_promtool_check_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_promtool_test_rules(promtool: str) -> None:
    result = run(promtool, "test", "rules", str(RULES_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_rules_test_fires_the_required_alerts() -> None:
    """Each required alert is expected to fire (non-empty exp_alerts) at least once;
    the dead-letter and the outbox-lag alerts above all."""
    fired = {
        case["alertname"]
        for test in yaml.safe_load(RULES_TEST.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert fired >= REQUIRED_ALERTS, REQUIRED_ALERTS - fired


def test_the_required_alerts_exist_with_a_severity_and_a_summary() -> None:
    alerts = {rule["alert"]: rule for rule in rules() if "alert" in rule}
    assert set(alerts) >= REQUIRED_ALERTS
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"], name
        assert rule["annotations"]["description"], name


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.local.yml"])
def test_promtool_check_config(promtool: str, config: str) -> None:
    result = run(promtool, "check", "config", config)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.local.yml"])
def test_the_scrape_config_scrapes_the_four_services(config: str) -> None:
    document = yaml.safe_load((PROMETHEUS / config).read_text())
    assert document["rule_files"] == ["alerts.yml"]
    (job,) = document["scrape_configs"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    services = {group["labels"]["service"]: group["targets"] for group in job["static_configs"]}
    ports = {"order": 8000, "inventory": 8001, "payment": 8002, "email": 8003}
    assert set(services) == set(ports)
    for service, targets in services.items():
        (target,) = targets
        assert target.endswith(f":{ports[service]}"), target


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_the_dashboard_queries_are_valid_promql(promtool: str, name: str, tmp_path: Path) -> None:
    """promtool has no query linter offline, so each query becomes a recording rule."""
    queries = dashboard_queries(dashboards()[name])
    assert queries
    group = {
        "name": "dashboard",
        "rules": [
            {"record": f"dashboard:query_{n}", "expr": fill_grafana_variables(expr)}
            for n, (_, expr) in enumerate(queries)
        ],
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [group]}))
    result = run(promtool, "check", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
