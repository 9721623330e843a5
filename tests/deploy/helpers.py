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

# Kubernetes version the manifests are validated against; it must be the one of
# the kind node image in deploy/kind/cluster.yaml (checked in test_deploy_k8s).
K8S_VERSION = "1.37.0"
NAMESPACE = "shop"

SERVICES = {"order": 8000, "inventory": 8001, "payment": 8002, "email": 8003}

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
