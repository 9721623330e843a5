"""Dockerfile, .dockerignore and deploy/deploy.mk, read statically (no engine here)."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.deploy.helpers import DEPLOY_MK, DOCKERFILE, REPO, run

pytestmark = pytest.mark.deploy


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        word, _, rest = stripped.partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def _stages() -> dict[str, list[tuple[str, str]]]:
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for instruction, args in _instructions():
        if instruction == "FROM":
            name = args.split()[-1] if " AS " in args.upper() else f"stage{len(stages)}"
            current = stages.setdefault(name, [])
        current.append((instruction, args))
    return stages


@pytest.mark.timeout(30)
def test_images_are_pinned() -> None:
    """The base image is the only image the build needs: no `# syntax=` frontend image,
    no `COPY --from=<registry image>` (uv comes from PyPI, pinned)."""
    stages = _stages()
    external = [args.split()[0] for s in stages.values() for i, args in s if i == "FROM"]
    external = [image for image in external if image not in stages]
    assert external == ["python:3.11.14-slim-bookworm"], external
    text = DOCKERFILE.read_text()
    assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE | re.IGNORECASE)
    copies_from = re.findall(r"--from=(\S+)", text)
    assert set(copies_from) <= set(stages), f"COPY --from an image: {copies_from}"
    uv_pins = re.findall(r'"?uv==([^"\s]+)"?', text)
    assert len(uv_pins) == 1, uv_pins
    assert re.fullmatch(r"\d+\.\d+\.\d+", uv_pins[0]), uv_pins


@pytest.mark.timeout(30)
def test_ca_bundle_is_a_build_secret_mounted_only_where_downloads_happen() -> None:
    """Behind a TLS-intercepting proxy the CA bundle is the BuildKit secret `build_ca`:
    mounted in each RUN that downloads (pip install uv, uv sync), never copied into a
    layer, never kept in an ENV."""
    instructions = _instructions()
    downloads = [
        args
        for ins, args in instructions
        if ins == "RUN" and re.search(r"pip install|uv sync", args)
    ]
    assert len(downloads) == 3, downloads
    for args in downloads:
        assert "--mount=type=secret,id=build_ca" in args, args
    for ins, args in instructions:
        if ins in ("COPY", "ADD"):
            assert not re.search(r"\.(crt|pem)\b|ca-cert|build_ca", args), f"{ins} {args}"
        if ins in ("ENV", "ARG"):
            assert not re.search(r"SSL_CERT_FILE|PIP_CERT|REQUESTS_CA|build_ca", args), (
                f"{ins} {args}"
            )
        if ins == "RUN" and "build_ca" in args:
            assert "--mount=type=secret,id=build_ca" in args, args
    # Secrets never reach the build context either.
    assert ".env" in (REPO / ".dockerignore").read_text().split()


@pytest.mark.timeout(30)
def test_builder_installs_locked_dependencies_before_sources() -> None:
    builder = _stages()["builder"]
    syncs = [i for i, (ins, args) in enumerate(builder) if ins == "RUN" and "uv sync" in args]
    source_copy = next(
        i for i, (ins, args) in enumerate(builder) if ins == "COPY" and args.startswith("libs")
    )
    lock_copy = next(
        i for i, (ins, args) in enumerate(builder) if ins == "COPY" and "manifests" in args
    )
    assert len(syncs) == 2
    assert lock_copy < syncs[0] < source_copy < syncs[1]
    for index in syncs:
        args = builder[index][1]
        for flag in ("--frozen", "--no-dev", '--package "${PACKAGE}"'):
            assert flag in args, f"uv sync without {flag}"
    assert "--no-install-workspace" in builder[syncs[0]][1]
    assert "--no-editable" in builder[syncs[1]][1]
    assert any(ins == "ARG" and args == "PACKAGE" for ins, args in builder)


@pytest.mark.timeout(30)
def test_runtime_is_non_root_and_read_only_friendly() -> None:
    stages = _stages()
    runtime = stages["runtime"]
    users = [args for ins, args in runtime if ins == "USER"]
    assert users == ["10001:10001"], users
    env = " ".join(args for ins, args in runtime if ins == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "HOME=/tmp" in env
    assert ("ENTRYPOINT", '["app-entrypoint"]') in runtime
    assert any(ins == "RUN" and "/app/.venv/bin/${PACKAGE}" in args for ins, args in runtime)
    # The last stage is the default build target; no later stage switches back to root.
    for name, stage in stages.items():
        assert all(
            args.split(":")[0] not in ("0", "root") for ins, args in stage if ins == "USER"
        ), name
    assert "UV_COMPILE_BYTECODE=1" in " ".join(
        args for ins, args in stages["builder"] if ins == "ENV"
    )


@pytest.mark.timeout(30)
def test_healthcheck_only_for_http_services() -> None:
    stages = _stages()
    with_healthcheck = {
        name for name, stage in stages.items() if any(ins == "HEALTHCHECK" for ins, _ in stage)
    }
    assert with_healthcheck == {"service"}
    assert list(stages)[-1] == "service", "the HTTP service must be the default target"
    assert ("CMD", '["serve"]') in stages["service"]
    assert ("CMD", '["setup"]') in stages["tool"]


@pytest.mark.timeout(30)
def test_dockerignore_keeps_secrets_and_venvs_out() -> None:
    patterns = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    for pattern in (".env", "**/.venv", "**/.git", "**/__pycache__", "tests"):
        assert pattern in patterns, pattern


TARGETS = {
    "up": "docker compose up -d --build --wait",
    "down": "docker compose down",
    "logs": "docker compose logs -f",
    "kind-up": "kind create cluster --config deploy/kind/cluster.yaml --name shop",
    "kind-load": "kind load docker-image --name shop",
    "kind-deploy": "apply -k deploy/k8s/overlays/kind",
    "kind-e2e": 'uv run --frozen pytest tests/e2e -m "not local_processes"',
    "kind-down": "kind delete cluster --name shop",
    "deploy-check": "uv run --frozen pytest tests/deploy -m deploy",
    "test-compose": "bash tests/compose/run.sh",
    "compose-keys": "chmod 0644",
    "kind-keys": "create secret generic payment-sealing-key",
    "prometheus-rule": "deploy/k8s/overlays/production/render_prometheus_rule.py",
}


@pytest.mark.timeout(60)
def test_make_targets() -> None:
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is required to check deploy/deploy.mk", pytrace=False)
    phony = re.search(r"^\.PHONY:(.*)$", DEPLOY_MK.read_text(), re.MULTILINE)
    assert phony
    assert set(TARGETS) <= set(phony.group(1).split())
    for target, expected in TARGETS.items():
        proc = run(
            [make, "--no-print-directory", "-n", "-f", str(DEPLOY_MK), "UV=uv", target], timeout=30
        )
        assert proc.returncode == 0, f"make -n {target}: {proc.stderr}"
        assert expected in proc.stdout, f"make {target} does not run `{expected}`:\n{proc.stdout}"
    e2e = run([make, "-n", "-f", str(DEPLOY_MK), "UV=uv", "kind-e2e"], timeout=30).stdout
    for part in (
        "E2E_TARGET=external",
        "ORDER_URL=http://localhost:8000",
        "port-forward",
        "SHOP_SECRETS_DIR=",
        "amqp://shop_operator:",
    ):
        assert part in e2e, part
    deploy = run([make, "-n", "-f", str(DEPLOY_MK), "UV=uv", "kind-deploy"], timeout=30).stdout
    assert deploy.index("create secret generic") < deploy.index("apply -k"), "keys first"
    for deployment in ("order-api", "order-worker", "inventory", "payment", "email", "mailpit"):
        assert f"rollout status deployment/{deployment} " in deploy, deployment
    load = run([make, "-n", "-f", str(DEPLOY_MK), "UV=uv", "kind-load"], timeout=30).stdout
    for package in (
        "order-service",
        "inventory-service",
        "payment-service",
        "email-service",
        "shopctl",
    ):
        assert f"--build-arg PACKAGE={package}" in load
        assert f"shop/{package}:dev" in load
    assert load.count("--secret id=build_ca,src=") == 5, "every image build gets the CA secret"
