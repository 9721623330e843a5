"""deploy/k8s/overlays/production: what only the production overlay has, checked offline.

No cluster has run this overlay. What is checked here: the operators' custom resources
validate against the CRD schemas of pinned operator releases (crds/, unknown fields
rejected; CEL rules and admission webhooks not run), and the choices that make it an
overlay for growth hold: a three-node RabbitMQ of quorum queues, three PostgreSQL
instances with a synchronous standby, every consumer scaled on its queue's depth and
the order API on CPU, a disruption budget and zone/host spread for every app
Deployment, every app scraped, and the alert rules exactly deploy/observability's.
The core objects are validated by test_deploy_k8s.py like every target's.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from shop_contract import SHOP

from tests.deploy.helpers import (
    APPS,
    CRD_SCHEMAS,
    K8S_DIR,
    by_kind_name,
    is_custom,
    kn,
    load_alerts,
    load_compose_raw,
    pod_labels,
    rendered_objects,
    selector_matches,
)

pytestmark = pytest.mark.deploy

PRODUCTION = "overlays/production"
README = K8S_DIR / "overlays" / "production" / "README.md"
ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return rendered_objects(PRODUCTION)


@pytest.fixture(scope="module")
def index(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return by_kind_name(objects)


def _of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def _common(objects: list[dict[str, Any]]) -> dict[str, str]:
    return dict(
        next(
            o["data"]
            for o in objects
            if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("shop-common")
        )
    )


# --- the custom resources against their CRDs ---------------------------------


def _structural_to_json_schema(node: Any) -> Any:
    """A CRD's structural schema as a JSON schema that, like the API server with strict
    field validation, rejects fields it does not declare."""
    if isinstance(node, list):
        return [_structural_to_json_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _structural_to_json_schema(v) for k, v in node.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not preserve
    ):
        out["additionalProperties"] = False
    return out


@cache
def _crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    group, version = api_version.split("/")
    path = CRD_SCHEMAS / f"{group}_{version}_{kind}.json"
    if not path.is_file():
        pytest.fail(f"no vendored CRD schema for {api_version} {kind} ({path.name})", pytrace=False)
    schema = _structural_to_json_schema(json.loads(path.read_text()))
    assert isinstance(schema, dict)
    return schema


def _crd_errors(obj: dict[str, Any]) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft7Validator(_crd_schema(obj["apiVersion"], obj["kind"]))
    return [
        f"{kn(obj)} {'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(obj)
    ]


@pytest.mark.timeout(60)
def test_custom_resources_validate_against_their_crds(objects: list[dict[str, Any]]) -> None:
    custom = [o for o in objects if is_custom(o)]
    assert {o["kind"] for o in custom} == {
        "RabbitmqCluster",
        "Cluster",
        "ScaledObject",
        "TriggerAuthentication",
        "ServiceMonitor",
        "PrometheusRule",
    }
    errors = [e for o in custom for e in _crd_errors(o)]
    assert not errors, "\n".join(errors)


@pytest.mark.timeout(30)
def test_crd_validation_rejects_unknown_and_mistyped_fields(
    index: dict[str, dict[str, Any]],
) -> None:
    """Guards the check above against passing everything."""
    rabbit = copy.deepcopy(index["RabbitmqCluster/rabbitmq"])
    rabbit["spec"]["replica"] = 3
    assert _crd_errors(rabbit)
    postgres = copy.deepcopy(index["Cluster/postgres"])
    postgres["spec"]["instances"] = "three"
    assert _crd_errors(postgres)
    scaled = copy.deepcopy(index["ScaledObject/inventory"])
    del scaled["spec"]["scaleTargetRef"]["name"]
    assert _crd_errors(scaled)


# --- RabbitMQ and PostgreSQL --------------------------------------------------


@pytest.mark.timeout(30)
def test_rabbitmq_is_a_three_node_cluster_of_quorum_queues(
    objects: list[dict[str, Any]], index: dict[str, dict[str, Any]]
) -> None:
    (cluster,) = _of_kind(objects, "RabbitmqCluster")
    spec = cluster["spec"]
    assert spec["replicas"] == 3
    assert re.search(
        r"^default_queue_type\s*=\s*quorum$", spec["rabbitmq"]["additionalConfig"], re.M
    )
    # The services reach it by the operator's client Service, named after the cluster.
    assert cluster["metadata"]["name"] == _common(objects)["SHOP_AMQP_HOST"]
    # Same RabbitMQ as everywhere else (compose, the base's StatefulSet).
    base = by_kind_name(rendered_objects("base"))["StatefulSet/rabbitmq"]
    assert spec["image"] == base["spec"]["template"]["spec"]["containers"][0]["image"]
    assert spec["image"] == load_compose_raw()["services"]["rabbitmq"]["image"]
    # One node per host; a drain takes at most one (the quorum keeps two of three).
    anti = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert any(term["topologyKey"] == HOST for term in anti)
    pdb = index["PodDisruptionBudget/rabbitmq"]["spec"]
    assert pdb["maxUnavailable"] == 1
    assert pdb["selector"]["matchLabels"] == {"app.kubernetes.io/name": "rabbitmq"}


@pytest.mark.timeout(30)
def test_postgres_is_three_instances_with_a_synchronous_standby(
    objects: list[dict[str, Any]], index: dict[str, dict[str, Any]]
) -> None:
    (cluster,) = [o for o in _of_kind(objects, "Cluster") if is_custom(o)]
    spec = cluster["spec"]
    name = cluster["metadata"]["name"]
    assert spec["instances"] >= 3
    synchronous = spec.get("postgresql", {}).get("synchronous")
    if synchronous:  # CloudNativePG >= 1.24
        assert synchronous["number"] >= 1
        assert synchronous["method"] in ("any", "first")
        assert synchronous.get("dataDurability", "required") == "required"
    else:  # the older (deprecated) quorum fields
        assert spec.get("minSyncReplicas", 0) >= 1
        assert spec["maxSyncReplicas"] >= spec["minSyncReplicas"]
    assert spec["affinity"]["enablePodAntiAffinity"] is True
    assert spec["affinity"]["topologyKey"] == HOST
    # The services use the primary's Service; the setup Job is the superuser's only reader.
    assert _common(objects)["SHOP_DB_HOST"] == f"{name}-rw"
    assert spec["enableSuperuserAccess"] is True
    (setup,) = index["Job/setup"]["spec"]["template"]["spec"]["containers"]
    password = next(e for e in setup["env"] if e["name"] == "POSTGRES_PASSWORD")
    assert password["valueFrom"]["secretKeyRef"]["name"] == f"{name}-superuser"
    # Its pods carry the label the base's NetworkPolicies select.
    assert spec["inheritedMetadata"]["labels"]["app.kubernetes.io/name"] == "postgres"


def _max_replicas(objects: list[dict[str, Any]], app: str) -> int:
    for scaled in _of_kind(objects, "ScaledObject"):
        if scaled["spec"]["scaleTargetRef"]["name"] == app:
            return int(scaled["spec"]["maxReplicaCount"])
    for hpa in _of_kind(objects, "HorizontalPodAutoscaler"):
        if hpa["spec"]["scaleTargetRef"]["name"] == app:
            return int(hpa["spec"]["maxReplicas"])
    raise AssertionError(f"{app} has no autoscaler")


def _parse_int(value: str) -> int:
    return int(re.sub(r"\D", "", value))


@pytest.mark.timeout(30)
def test_connections_at_the_autoscalers_maxima_fit_max_connections(
    objects: list[dict[str, Any]],
) -> None:
    """Every process keeps DB_POOL_SIZE connections plus one (LISTEN), its migrate init
    container one more while it starts; at every autoscaler's maximum that must fit
    max_connections minus the superuser's reserve."""
    pool = int(_common(objects)["DB_POOL_SIZE"])
    processes = sum(_max_replicas(objects, app) for app in APPS)
    (cluster,) = [o for o in _of_kind(objects, "Cluster") if is_custom(o)]
    max_connections = _parse_int(cluster["spec"]["postgresql"]["parameters"]["max_connections"])
    reserved = 3 + 10  # superuser_reserved_connections, the operator and replication
    assert processes * (pool + 2) <= max_connections - reserved, (processes, pool, max_connections)


@pytest.mark.timeout(30)
def test_the_operators_pods_keep_their_restricted_defaults(objects: list[dict[str, Any]]) -> None:
    """The operators' pods are not rendered. Both operators' default security contexts
    meet Pod Security `restricted` (non-root, no privilege escalation, capabilities
    dropped, RuntimeDefault seccomp), which the namespace enforces: the overlay must not
    override them."""
    (rabbit,) = _of_kind(objects, "RabbitmqCluster")
    override = json.dumps(rabbit["spec"].get("override", {}))
    assert "securityContext" not in override, "RabbitmqCluster overrides a security context"
    (postgres,) = [o for o in _of_kind(objects, "Cluster") if is_custom(o)]
    assert not {"podSecurityContext", "securityContext"} & set(postgres["spec"])


# --- autoscaling, budgets, spread ---------------------------------------------


@pytest.mark.timeout(30)
def test_each_consumer_scales_on_its_queue_depth(
    objects: list[dict[str, Any]], index: dict[str, dict[str, Any]]
) -> None:
    """A KEDA ScaledObject per consuming process, on the depth of its service's queue
    (the queues of the shop's topology), authenticated from a Secret."""
    consumers = {spec.name: SHOP.queue(spec.name).name for spec in SHOP.consumers}
    apps = {app: svc for app, (svc, role) in APPS.items() if role != "api"}
    assert set(apps.values()) == set(consumers), (apps, consumers)
    scaled = {o["spec"]["scaleTargetRef"]["name"]: o for o in _of_kind(objects, "ScaledObject")}
    assert set(scaled) == set(apps), set(scaled)
    for app, svc in apps.items():
        spec = scaled[app]["spec"]
        target = spec["scaleTargetRef"]
        assert target.get("kind", "Deployment") == "Deployment"
        assert f"Deployment/{target['name']}" in index
        assert 2 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], app
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "rabbitmq"
        metadata = trigger["metadata"]
        assert metadata["queueName"] == consumers[svc], app
        assert metadata.get("mode", "QueueLength") == "QueueLength"
        assert float(metadata.get("value", metadata.get("queueLength", "0"))) > 0
        assert metadata.get("protocol") in ("amqp", "http")
        auth = index[f"TriggerAuthentication/{trigger['authenticationRef']['name']}"]
        params = {ref["parameter"] for ref in auth["spec"]["secretTargetRef"]}
        assert "host" in params, "the broker URL comes from a Secret"
        assert "host" not in metadata, "no broker URL (with a password) in the ScaledObject"


@pytest.mark.timeout(30)
def test_the_order_api_scales_on_cpu(objects: list[dict[str, Any]]) -> None:
    (hpa,) = _of_kind(objects, "HorizontalPodAutoscaler")
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "order-api",
    }
    assert 2 <= spec["minReplicas"] <= spec["maxReplicas"]
    (metric,) = spec["metrics"]
    assert metric["resource"]["name"] == "cpu"
    # Utilisation is relative to the request: the container must have one.
    deployment = by_kind_name(objects)["Deployment/order-api"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]


@pytest.mark.timeout(30)
def test_the_autoscalers_own_the_replica_counts(objects: list[dict[str, Any]]) -> None:
    targets = [o["spec"]["scaleTargetRef"]["name"] for o in _of_kind(objects, "ScaledObject")]
    targets += [
        o["spec"]["scaleTargetRef"]["name"] for o in _of_kind(objects, "HorizontalPodAutoscaler")
    ]
    assert sorted(targets) == sorted(APPS), "one autoscaler per app Deployment"
    index = by_kind_name(objects)
    for app in APPS:
        assert "replicas" not in index[f"Deployment/{app}"]["spec"], (
            f"{app}: a re-apply would reset the autoscaler's count"
        )


def _min_replicas(objects: list[dict[str, Any]], app: str) -> int:
    for scaled in _of_kind(objects, "ScaledObject"):
        if scaled["spec"]["scaleTargetRef"]["name"] == app:
            return int(scaled["spec"]["minReplicaCount"])
    (hpa,) = [
        h
        for h in _of_kind(objects, "HorizontalPodAutoscaler")
        if h["spec"]["scaleTargetRef"]["name"] == app
    ]
    return int(hpa["spec"]["minReplicas"])


@pytest.mark.timeout(30)
def test_every_app_has_a_disruption_budget(objects: list[dict[str, Any]]) -> None:
    """Exactly one budget per app Deployment, selecting its pods only, that lets a drain
    proceed (one pod at a time) and keeps at least one running."""
    index = by_kind_name(objects)
    budgets = _of_kind(objects, "PodDisruptionBudget")
    pods = {app: pod_labels(index[f"Deployment/{app}"]) for app in APPS}
    for app, labels in pods.items():
        (pdb,) = [b for b in budgets if selector_matches(b["spec"]["selector"], labels)]
        others = [
            a
            for a, lab in pods.items()
            if a != app and selector_matches(pdb["spec"]["selector"], lab)
        ]
        assert not others, (kn(pdb), others)
        floor = _min_replicas(objects, app)
        spec = pdb["spec"]
        if "maxUnavailable" in spec:
            assert 1 <= int(spec["maxUnavailable"]) < floor, (app, spec)
        else:
            assert 1 <= int(spec["minAvailable"]) < floor, (app, spec)


@pytest.mark.timeout(30)
def test_every_app_spreads_over_zones_and_hosts(objects: list[dict[str, Any]]) -> None:
    index = by_kind_name(objects)
    for app in APPS:
        deployment = index[f"Deployment/{app}"]
        labels = pod_labels(deployment)
        constraints = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in constraints} >= {ZONE, HOST}, app
        for constraint in constraints:
            assert constraint["maxSkew"] == 1
            assert selector_matches(constraint["labelSelector"], labels), app
            # Spread among this Deployment's own pods, not the whole shop's.
            keys = constraint.get("matchLabelKeys", [])
            own = "app.kubernetes.io/name" in keys or (
                constraint["labelSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")
                == app
            )
            assert own, (app, constraint)


# --- monitoring ------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_every_app_is_scraped_with_the_shop_labels(objects: list[dict[str, Any]]) -> None:
    """A ServiceMonitor per app Deployment, on a Service that selects that app's pods
    only, scraping /metrics on a port the Service has; it labels the series with the
    shop service (order for both order-api and order-worker) and the role, as
    deploy/observability's rules and dashboard, and the compose Prometheus, expect."""
    index = by_kind_name(objects)
    services = _of_kind(objects, "Service")
    pods = {app: pod_labels(index[f"Deployment/{app}"]) for app in APPS}
    monitors = _of_kind(objects, "ServiceMonitor")
    for app, (svc, role) in APPS.items():
        matching = []
        for monitor in monitors:
            chosen = [
                s
                for s in services
                if selector_matches(monitor["spec"]["selector"], s["metadata"].get("labels", {}))
            ]
            scraped = {
                a
                for s in chosen
                for a, labels in pods.items()
                if selector_matches({"matchLabels": s["spec"]["selector"]}, labels)
            }
            if app in scraped:
                assert scraped == {app}, (kn(monitor), scraped)
                matching.append((monitor, chosen))
        assert len(matching) == 1, (app, [kn(m) for m, _ in matching])
        monitor, chosen = matching[0]
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        assert all(endpoint["port"] in {p.get("name") for p in s["spec"]["ports"]} for s in chosen)
        labels = {
            r["targetLabel"]: r["replacement"]
            for r in endpoint.get("relabelings", [])
            if r.get("action", "replace") == "replace" and "sourceLabels" not in r
        }
        assert labels == {"service": svc, "role": role}, (app, labels)


@pytest.mark.timeout(30)
def test_the_prometheus_rule_is_alerts_yml(objects: list[dict[str, Any]]) -> None:
    """deploy/observability/prometheus/alerts.yml is the one source of the rules; the
    PrometheusRule is generated from it (kustomize cannot make an object from a file's
    content) and must hold exactly its groups."""
    alerts = load_alerts()
    (rule,) = _of_kind(objects, "PrometheusRule")
    assert rule["spec"]["groups"] == alerts["groups"], (
        "deploy/k8s/overlays/production/prometheus-rule.yaml differs from "
        "deploy/observability/prometheus/alerts.yml: run `make prometheus-rule`"
    )


# --- what the overlay needs from outside --------------------------------------


def _referenced_secrets(objects: list[dict[str, Any]]) -> set[str]:
    """Secrets named by env (secretKeyRef), volumes (secretName) and KEDA (secretTargetRef)."""
    names: set[str] = set()
    stack: list[Any] = list(objects)
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "secretKeyRef" in node:
                names.add(node["secretKeyRef"]["name"])
            if isinstance(node.get("secret"), dict) and "secretName" in node["secret"]:
                names.add(node["secret"]["secretName"])
            if "secretTargetRef" in node:
                names |= {ref["name"] for ref in node["secretTargetRef"]}
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return names


@pytest.mark.timeout(30)
def test_every_secret_it_needs_is_documented(objects: list[dict[str, Any]]) -> None:
    """The overlay generates no credentials and no keys: each Secret it references is
    named in its README (who makes it: you, or an operator)."""
    assert not _of_kind(objects, "Secret"), "production must not generate Secrets"
    readme = Path(README).read_text()
    missing = sorted(name for name in _referenced_secrets(objects) if f"`{name}`" not in readme)
    assert not missing, f"{README.name} does not name the Secrets {missing}"
