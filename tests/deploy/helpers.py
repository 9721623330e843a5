"""Helpers for the offline deployment checks (marker `deploy`).

Nothing here needs a Docker engine, a cluster or the network. A missing tool
fails the test that needs it with the command that installs it: these checks
are never skipped.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S_DIR = REPO / "deploy" / "k8s"
KIND_CONFIG = REPO / "deploy" / "kind" / "cluster.yaml"
DEPLOY_MK = REPO / "deploy" / "deploy.mk"
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "Dockerfile"
ALERTS = REPO / "deploy" / "observability" / "prometheus" / "alerts.yml"
CRD_SCHEMAS = Path(__file__).resolve().parent / "crds"

# Kubernetes version the manifests are validated against; it must be the one of
# the kind node image in deploy/kind/cluster.yaml (checked in test_deploy_k8s).
K8S_VERSION = "1.37.0"
NAMESPACE = "shop"

SERVICES = {"order": 8000, "inventory": 8001, "payment": 8002, "email": 8003}

# The processes the services run as: Kubernetes Deployment / compose service name ->
# (shop service, role). The order service runs as an HTTP-only API and a worker (relay,
# consumer, deadline) from one image; the other three as one process each.
APPS = {
    "order-api": ("order", "api"),
    "order-worker": ("order", "worker"),
    "inventory": ("inventory", "all"),
    "payment": ("payment", "all"),
    "email": ("email", "all"),
}
# The key Secrets the base mounts (their one key each), and who may mount which:
# only public halves, plus the payment service's private key; never the signing key.
KEY_SECRETS = {
    "auth-verify-key": "auth-verify.pem",
    "payment-sealing-public-key": "payment-sealing.pub.pem",
    "payment-sealing-key": "payment-sealing.pem",
}
APP_KEYS = {
    "order-api": {"auth-verify-key", "payment-sealing-public-key"},
    "order-worker": {"payment-sealing-public-key"},
    "inventory": {"auth-verify-key"},
    "payment": {"auth-verify-key", "payment-sealing-key"},
    "email": {"auth-verify-key"},
}

# API groups of the operators' custom resources (production overlay); validated
# against the vendored CRD schemas in crds/, not by kubernetes-validate.
CUSTOM_GROUPS = {"rabbitmq.com", "postgresql.cnpg.io", "keda.sh", "monitoring.coreos.com"}

POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def fail_missing(tool: str, how: str) -> None:
    pytest.fail(
        f"{tool} is required by the deployment checks but was not found. {how}", pytrace=False
    )


def run(
    cmd: list[str], *, timeout: float, cwd: Path = REPO, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def kustomize_targets() -> list[str]:
    """The base and every overlay, as paths relative to deploy/k8s."""
    overlays = sorted(p.parent for p in (K8S_DIR / "overlays").glob("*/kustomization.yaml"))
    return ["base", *(str(p.relative_to(K8S_DIR)) for p in overlays)]


def kubectl_path() -> str:
    path = shutil.which("kubectl")
    if path is None:
        fail_missing(
            "kubectl (for `kubectl kustomize`)", "Install kubectl >= 1.27 and put it on PATH."
        )
    assert path is not None
    return path


_RENDER_CACHE: dict[str, str] = {}


def render(target: str) -> str:
    """`kubectl kustomize deploy/k8s/<target>`: offline, no cluster needed."""
    if target not in _RENDER_CACHE:
        proc = run([kubectl_path(), "kustomize", str(K8S_DIR / target)], timeout=60)
        if proc.returncode != 0:
            pytest.fail(f"kubectl kustomize {target} failed:\n{proc.stderr}", pytrace=False)
        _RENDER_CACHE[target] = proc.stdout
    return _RENDER_CACHE[target]


def rendered_objects(target: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(render(target)) if doc]


def kn(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj["kind"] == "Pod":
        return obj["spec"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if obj["kind"] in POD_TEMPLATE_KINDS:
        return obj["spec"]["template"]["spec"]
    return None


def pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    if obj["kind"] == "Pod":
        return obj["metadata"].get("labels", {})
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["metadata"].get("labels", {})
    return obj["spec"]["template"]["metadata"].get("labels", {})


def workloads(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objs if pod_spec(o) is not None]


def is_custom(obj: dict[str, Any]) -> bool:
    return str(obj["apiVersion"]).split("/")[0] in CUSTOM_GROUPS


def operator_pods(objs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Pods the operators make from custom resources (not rendered): name -> labels, as
    the RabbitMQ Cluster Operator (v2.x) and CloudNativePG (inheritedMetadata) label them."""
    pods: dict[str, dict[str, str]] = {}
    for obj in objs:
        name = obj["metadata"]["name"]
        if obj["kind"] == "RabbitmqCluster":
            pods[name] = {
                "app.kubernetes.io/name": name,
                "app.kubernetes.io/component": "rabbitmq",
                "app.kubernetes.io/part-of": "rabbitmq",
            }
        elif obj["kind"] == "Cluster" and obj["apiVersion"].startswith("postgresql.cnpg.io/"):
            inherited = obj["spec"].get("inheritedMetadata", {}).get("labels", {})
            pods[name] = {**inherited, "cnpg.io/cluster": name, "cnpg.io/podRole": "instance"}
    return pods


def all_pods(objs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Every pod the target runs, rendered or operator-made: name -> labels."""
    rendered = {o["metadata"]["name"]: pod_labels(o) for o in workloads(objs)}
    return {**rendered, **operator_pods(objs)}


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def by_kind_name(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {kn(o): o for o in objs}


def load_alerts() -> dict[str, Any]:
    """deploy/observability/prometheus/alerts.yml, the one source of the alert rules."""
    if not ALERTS.is_file():
        pytest.fail(
            f"{ALERTS.relative_to(REPO)} does not exist: the production overlay's "
            "PrometheusRule is generated from it (make prometheus-rule), and the compose "
            "Prometheus loads it.",
            pytrace=False,
        )
    rules = yaml.safe_load(ALERTS.read_text())
    assert isinstance(rules, dict), f"{ALERTS.relative_to(REPO)} is no Prometheus rule file"
    assert isinstance(rules.get("groups"), list), f"{ALERTS.relative_to(REPO)} has no groups list"
    return rules


def all_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        *spec.get("initContainers", []),
        *spec.get("containers", []),
        *spec.get("ephemeralContainers", []),
    ]


def secret_values(objs: list[dict[str, Any]]) -> dict[str, str]:
    """Every value held by a rendered Secret, keyed by Secret/key."""
    found: dict[str, str] = {}
    for obj in objs:
        if obj["kind"] != "Secret":
            continue
        for key, value in (obj.get("data") or {}).items():
            found[f"{kn(obj)}:{key}"] = base64.b64decode(value).decode()
        for key, value in (obj.get("stringData") or {}).items():
            found[f"{kn(obj)}:{key}"] = str(value)
    return found


def parse_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {raw!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def checkov_version_pinned_in_makefile() -> str:
    match = re.search(r"^CHECKOV_VERSION \?= (\S+)$", DEPLOY_MK.read_text(), re.MULTILINE)
    assert match, "deploy/deploy.mk must pin CHECKOV_VERSION"
    return match.group(1)


def checkov_path() -> str:
    """checkov from $CHECKOV, PATH, or uv's tool bin dir (`make deploy-tools`)."""
    candidates = [os.environ.get("CHECKOV", ""), shutil.which("checkov") or ""]
    uv = shutil.which("uv")
    if uv:
        proc = run([uv, "tool", "dir", "--bin"], timeout=30)
        if proc.returncode == 0:
            candidates.append(str(Path(proc.stdout.strip()) / "checkov"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    pinned = checkov_version_pinned_in_makefile()
    fail_missing(
        "checkov",
        f"Install it outside the workspace lock: `make deploy-tools` "
        f"(= uv tool install checkov=={pinned}), or set CHECKOV=/path/to/checkov.",
    )
    raise AssertionError  # unreachable


def load_compose_raw() -> dict[str, Any]:
    """docker-compose.yml with YAML anchors/merge keys resolved, not yet interpolated."""
    return yaml.safe_load(COMPOSE_FILE.read_text())
