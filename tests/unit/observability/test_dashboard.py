"""The Grafana dashboard and its provisioning: well-formed, and showing what issue 13 asks."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.unit.observability.conftest import OBSERVABILITY, dashboards, panels
from tests.unit.observability.promql import metric_names

PROVISIONING = OBSERVABILITY / "grafana" / "provisioning"
DASHBOARD = "shop.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# What the dashboard must show, by a metric each such panel queries.
REQUIRED = {
    "orders by status": "orders_total",
    "events consumed by outcome": "events_consumed_total",
    "handler latency": "event_handler_seconds_bucket",
    "outbox backlog": "outbox_backlog",
    "oldest unsent outbox row": "outbox_oldest_unsent_age_seconds",
    "DLQ depth per queue": "dead_letter_queue_depth",
    "oldest pending order": "orders_pending_oldest_age_seconds",
}


def shop() -> dict[str, Any]:
    return dashboards()[DASHBOARD]


def test_the_dashboard_has_an_identity_and_no_database_id() -> None:
    dashboard = shop()
    assert dashboard["uid"] == "shop-event-flow"
    assert dashboard["title"]
    assert dashboard["id"] is None  # provisioned: Grafana assigns it
    assert isinstance(dashboard["schemaVersion"], int)


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_panels_have_unique_ids_fit_the_grid_and_query_the_chosen_datasource(name: str) -> None:
    dashboard = dashboards()[name]
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert "datasource" in variables
    for panel in panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_the_dashboard_shows_what_issue_13_asks() -> None:
    queried = {
        name
        for panel in panels(shop())
        for target in panel.get("targets", [])
        for name in metric_names(target["expr"])
    }
    missing = {what: name for what, name in REQUIRED.items() if name not in queried}
    assert missing == {}


def test_the_handler_latency_panel_shows_quantiles() -> None:
    exprs = [
        target["expr"]
        for panel in panels(shop())
        for target in panel.get("targets", [])
        if "event_handler_seconds_bucket" in target["expr"]
    ]
    assert any("histogram_quantile(0.99" in expr for expr in exprs)
    assert any("histogram_quantile(0.5" in expr for expr in exprs)


def test_provisioning_declares_the_prometheus_datasource() -> None:
    document = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    assert document["apiVersion"] == 1
    (source,) = document["datasources"]
    assert source["type"] == "prometheus"
    assert source["access"] == "proxy"
    assert source["isDefault"] is True
    assert source["url"].startswith("http")


def test_provisioning_loads_the_dashboards_into_a_folder() -> None:
    document = yaml.safe_load((PROVISIONING / "dashboards" / "shop.yml").read_text())
    assert document["apiVersion"] == 1
    (provider,) = document["providers"]
    assert provider["type"] == "file"
    assert provider["folder"]
    assert provider["options"]["path"].startswith("/")
