"""The rules and the dashboard use only metrics the services export.

The names are collected from prometheus_client's registry after importing every module
that defines the services' metrics (events._metrics and each services/*/adapters/metrics.py),
and compared with the names the PromQL of alerts.yml and of the dashboards selects.
deploy/observability/metrics.yml lists those names in one place, with their types.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from tests.unit.observability.conftest import (
    METRICS,
    ROOT,
    dashboard_queries,
    dashboards,
    rules,
)
from tests.unit.observability.promql import label_values_metric, metric_names

# ADDED BY THE LIVENESS WORK: being added to the services by someone else while these
# rules and the dashboard were written. Until a name is exported it is accepted here on
# trust; once it is exported, its type is checked like any other. When all four are
# exported, empty this set (and drop `pending: true` from metrics.yml).
ADDED_BY_THE_LIVENESS_WORK = {
    "dead_letter_queue_depth": "gauge",  # libs/events: messages in each DLQ of the service
    "consumer_queue_consumers": "gauge",  # libs/events: consumers on the service's queue
    "orders_pending_oldest_age_seconds": "gauge",  # order service
    "orders_deadline_exceeded_total": "counter",  # order service
}

# Written by Prometheus for every scrape target, not by the services.
PROMETHEUS_SERIES = {"up": "gauge"}

HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def metrics_modules() -> list[str]:
    services = sorted(ROOT.glob("services/*/src/*/adapters/metrics.py"))
    assert services, "no services/*/src/*/adapters/metrics.py found"
    return ["events._metrics", *(f"{path.parts[-3]}.adapters.metrics" for path in services)]


def exported() -> dict[str, str]:
    """Name as PromQL sees it → type, for every metric of the services' modules."""
    for module in metrics_modules():
        importlib.import_module(module)
    names: dict[str, str] = {}
    for family in prometheus_client.REGISTRY.collect():
        name = f"{family.name}_total" if family.type == "counter" else family.name
        names[name] = family.type
    return names


def exported_labels() -> dict[str, tuple[str, ...]]:
    """Name as PromQL sees it → label names, for the metric objects of those modules."""
    labels: dict[str, tuple[str, ...]] = {}
    for module in metrics_modules():
        for value in vars(importlib.import_module(module)).values():
            if isinstance(value, MetricWrapperBase):
                name = f"{value._name}_total" if value._type == "counter" else value._name
                labels[name] = tuple(value._labelnames)
    return labels


def base_name(name: str, known: dict[str, str]) -> str:
    """A histogram's _bucket/_sum/_count series → the histogram's name."""
    for suffix in HISTOGRAM_SERIES:
        base = name.removesuffix(suffix)
        if base != name and known.get(base) == "histogram":
            return base
    return name


def listed() -> dict[str, dict[str, Any]]:
    metrics: dict[str, dict[str, Any]] = yaml.safe_load(METRICS.read_text())["metrics"]
    return metrics


def used() -> dict[str, set[str]]:
    """Metric name (histograms by their base name) → where it is used."""
    known = {name: entry["type"] for name, entry in listed().items()}
    places: dict[str, set[str]] = {}

    def add(expr: str, where: str) -> None:
        for name in metric_names(expr):
            places.setdefault(base_name(name, known), set()).add(where)

    for rule in rules():
        add(rule["expr"], f"alerts.yml {rule.get('alert') or rule.get('record')}")
    for file, dashboard in dashboards().items():
        for where, expr in dashboard_queries(dashboard):
            add(expr, f"{file} {where}")
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("type") != "query":
                continue
            query = variable["query"]
            query = query["query"] if isinstance(query, dict) else query
            selector = label_values_metric(query)
            add(selector if selector is not None else query, f"{file} ${variable['name']}")
    return places


def test_the_promql_reader_finds_metric_names() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (queue, le) "
        '(rate(event_handler_seconds_bucket{service=~"$x"}[5m])))'
        " / on (queue) group_left sum without (type) (increase(foo_total[1h] offset 1e3m))"
        ' and bar > bool 0.5 or max(up{job="a{b}"})'
    )
    assert metric_names(expr) == {"event_handler_seconds_bucket", "foo_total", "bar", "up"}


def test_metrics_yml_lists_exactly_the_names_the_rules_and_dashboards_use() -> None:
    places = used()
    assert set(places) == set(listed()), {
        "used but not listed": {n: sorted(places[n]) for n in set(places) - set(listed())},
        "listed but unused": sorted(set(listed()) - set(places)),
    }


def test_every_name_used_is_exported_by_the_services() -> None:
    names = exported()
    accepted = {**names, **PROMETHEUS_SERIES}
    for name, kind in ADDED_BY_THE_LIVENESS_WORK.items():
        accepted.setdefault(name, kind)  # pending: accepted until the services export it
    unknown = {name: sorted(where) for name, where in used().items() if name not in accepted}
    assert unknown == {}, "metrics no service exports (typo? renamed?)"


@pytest.mark.parametrize("name", sorted(listed()))
def test_each_listed_metric_has_the_type_it_is_exported_with(name: str) -> None:
    entry = listed()[name]
    names = exported()
    if name in PROMETHEUS_SERIES:
        assert entry["from"] == "prometheus"
        assert entry["type"] == PROMETHEUS_SERIES[name]
        return
    if name in ADDED_BY_THE_LIVENESS_WORK:
        assert entry.get("pending") is True, f"{name}: mark it `pending: true` in metrics.yml"
        assert entry["type"] == ADDED_BY_THE_LIVENESS_WORK[name]
        if name not in names:
            return  # not exported yet: nothing more to check
    else:
        assert not entry.get("pending"), f"{name} is not one of the pending names"
    assert name in names, f"{name} is not exported by any of {metrics_modules()}"
    assert names[name] == entry["type"], f"{name} is a {names[name]}, metrics.yml says {entry}"
    labels = exported_labels()
    if name in labels:
        assert sorted(labels[name]) == sorted(entry["labels"]), f"{name}: labels {labels[name]}"


def test_histograms_are_queried_through_their_series_only() -> None:
    """A histogram has no series of its own name: PromQL must say _bucket, _sum or _count."""
    histograms = {name for name, entry in listed().items() if entry["type"] == "histogram"}
    raw: set[str] = set()
    for rule in rules():
        raw |= metric_names(rule["expr"])
    for dashboard in dashboards().values():
        for _, expr in dashboard_queries(dashboard):
            raw |= metric_names(expr)
    assert not raw & histograms


def test_pending_names_are_listed_in_metrics_yml() -> None:
    pending = {name for name, entry in listed().items() if entry.get("pending")}
    assert pending == set(ADDED_BY_THE_LIVENESS_WORK)


def test_sources_named_in_metrics_yml_exist() -> None:
    for name, entry in listed().items():
        source = entry["from"]
        if source != "prometheus":
            assert Path(ROOT / source).is_file(), f"{name}: {source}"
            assert name.removesuffix("_total") in Path(ROOT / source).read_text(), (
                f"{name} is not defined in {source}"
            )
