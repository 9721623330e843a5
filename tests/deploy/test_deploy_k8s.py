"""Kubernetes manifests: rendering, schema, Pod Security `restricted`, wiring."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.deploy.helpers import (
    ENV_EXAMPLE,
    K8S_VERSION,
    KIND_CONFIG,
    NAMESPACE,
    SERVICES,
    all_containers,
    kn,
    kustomize_targets,
    parse_env_file,
    pod_labels,
    pod_spec,
    rendered_objects,
    secret_values,
    workloads,
)

pytestmark = pytest.mark.deploy

CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolume",
    "StorageClass",
}

# Pod Security Standards, restricted profile (which includes baseline).
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
ALLOWED_SECCOMP = {"RuntimeDefault", "Localhost"}
ALLOWED_SELINUX_TYPES = {
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
}


def _kubernetes_validate() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail(
            "kubernetes-validate is not installed: add `kubernetes-validate==1.37.0` to the "
            "root pyproject's dev dependency group and run `uv sync`.",
            pytrace=False,
        )
    return kubernetes_validate


@pytest.mark.timeout(60)
def test_kustomize_renders(target: str, objects: list[dict[str, Any]]) -> None:
    assert objects, f"{target} rendered nothing"
    for obj in objects:
        for field in ("apiVersion", "kind"):
            assert obj.get(field), obj
        assert obj.get("metadata", {}).get("name"), obj
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"].get("namespace") == NAMESPACE, (
                f"{target}: {kn(obj)} is not in {NAMESPACE}"
            )
    kinds = {o["kind"] for o in objects}
    assert {
        "Namespace",
        "Deployment",
        "StatefulSet",
        "Job",
        "Service",
        "NetworkPolicy",
        "ConfigMap",
    } <= kinds


@pytest.mark.timeout(60)
def test_objects_validate_strictly(target: str, objects: list[dict[str, Any]]) -> None:
    kv = _kubernetes_validate()
    errors = []
    for obj in objects:
        try:
            kv.validate(obj, K8S_VERSION, strict=True)
        except Exception as exc:  # ValidationError, SchemaNotFoundError, ...
            errors.append(f"{kn(obj)}: {exc}")
    assert not errors, f"{target} against Kubernetes {K8S_VERSION} (strict):\n" + "\n".join(errors)


@pytest.mark.timeout(30)
def test_strict_validation_rejects_unknown_fields() -> None:
    """Guards the check above: a misspelt field must not pass."""
    kv = _kubernetes_validate()
    deployment = next(o for o in rendered_objects("base") if o["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"][
        "readOnlyRootFileSystem"
    ] = True
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, K8S_VERSION, strict=True)


@pytest.mark.timeout(30)
def test_namespace_enforces_restricted_pod_security() -> None:
    namespaces = [o for o in rendered_objects("base") if o["kind"] == "Namespace"]
    assert [n["metadata"]["name"] for n in namespaces] == [NAMESPACE]
    labels = namespaces[0]["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels.get(f"pod-security.kubernetes.io/{mode}") == "restricted", mode


def _restricted_violations(obj: dict[str, Any]) -> list[str]:
    """Own implementation of the Pod Security Standards `restricted` profile."""
    spec = pod_spec(obj)
    assert spec is not None
    where = kn(obj)
    problems: list[str] = []
    psc = spec.get("securityContext", {})

    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            problems.append(f"{where}: {field} is set")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"{where}: volume {volume['name']} uses {sorted(kinds)}")
    for sysctl in psc.get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            problems.append(f"{where}: unsafe sysctl {sysctl['name']}")
    if psc.get("windowsOptions", {}).get("hostProcess"):
        problems.append(f"{where}: hostProcess pod")
    if psc.get("runAsUser") == 0:
        problems.append(f"{where}: pod runAsUser 0")
    pod_selinux = psc.get("seLinuxOptions", {})
    if (
        pod_selinux.get("type", "") not in ALLOWED_SELINUX_TYPES
        or pod_selinux.get("user")
        or pod_selinux.get("role")
    ):
        problems.append(f"{where}: pod seLinuxOptions {pod_selinux}")
    pod_apparmor = psc.get("appArmorProfile", {}).get("type")
    if pod_apparmor not in (None, "RuntimeDefault", "Localhost"):
        problems.append(f"{where}: pod appArmorProfile {pod_apparmor}")
    pod_seccomp = psc.get("seccompProfile", {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in ALLOWED_SECCOMP:
        problems.append(f"{where}: pod seccompProfile {pod_seccomp}")
    for key, value in (
        obj.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations") or {}
    ).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            problems.append(f"{where}: AppArmor annotation {key}={value}")

    for container in all_containers(spec):
        cwhere = f"{where} container {container['name']}"
        csc = container.get("securityContext", {})
        if csc.get("privileged"):
            problems.append(f"{cwhere}: privileged")
        if csc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{cwhere}: allowPrivilegeEscalation must be false")
        caps = csc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            problems.append(f"{cwhere}: capabilities must drop ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{cwhere}: adds capabilities {caps['add']}")
        if not (
            csc.get("runAsNonRoot") is True
            or (psc.get("runAsNonRoot") is True and csc.get("runAsNonRoot") is not False)
        ):
            problems.append(f"{cwhere}: runAsNonRoot must be true")
        if csc.get("runAsUser") == 0:
            problems.append(f"{cwhere}: runAsUser 0")
        seccomp = csc.get("seccompProfile", {}).get("type", pod_seccomp)
        if seccomp not in ALLOWED_SECCOMP:
            problems.append(
                f"{cwhere}: seccompProfile must be RuntimeDefault or Localhost, is {seccomp}"
            )
        apparmor = csc.get("appArmorProfile", {}).get("type")
        if apparmor not in (None, "RuntimeDefault", "Localhost"):
            problems.append(f"{cwhere}: appArmorProfile {apparmor}")
        selinux = csc.get("seLinuxOptions", {})
        if (
            selinux.get("type", "") not in ALLOWED_SELINUX_TYPES
            or selinux.get("user")
            or selinux.get("role")
        ):
            problems.append(f"{cwhere}: seLinuxOptions {selinux}")
        if csc.get("procMount", "Default") != "Default":
            problems.append(f"{cwhere}: procMount {csc['procMount']}")
        if csc.get("windowsOptions", {}).get("hostProcess"):
            problems.append(f"{cwhere}: hostProcess")
        for port in container.get("ports", []):
            if port.get("hostPort"):
                problems.append(f"{cwhere}: hostPort {port['hostPort']}")
    return problems


@pytest.mark.timeout(30)
def test_every_pod_meets_pod_security_restricted(
    target: str, objects: list[dict[str, Any]]
) -> None:
    pods = workloads(objects)
    assert {kn(o) for o in pods} >= {
        *(f"Deployment/{s}" for s in SERVICES),
        "Deployment/mailpit",
        "StatefulSet/rabbitmq",
        "StatefulSet/postgres",
        "Job/setup",
    }
    problems = [p for o in pods for p in _restricted_violations(o)]
    assert not problems, "\n".join(problems)


@pytest.mark.timeout(30)
def test_restricted_check_catches_violations() -> None:
    """Guards the check above against passing everything."""
    deployment = next(o for o in rendered_objects("base") if kn(o) == "Deployment/order")
    bad = yaml.safe_load(yaml.safe_dump(deployment))
    spec = bad["spec"]["template"]["spec"]
    spec["hostNetwork"] = True
    spec["initContainers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    spec["containers"][0]["securityContext"]["capabilities"] = {"add": ["NET_ADMIN"]}
    spec["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    found = "\n".join(_restricted_violations(bad))
    for expected in (
        "hostNetwork",
        "allowPrivilegeEscalation",
        "drop ALL",
        "NET_ADMIN",
        "hostPath",
    ):
        assert expected in found


@pytest.mark.timeout(30)
def test_every_pod_is_hardened_beyond_restricted(
    target: str, objects: list[dict[str, Any]]
) -> None:
    problems = []
    for obj in workloads(objects):
        spec = pod_spec(obj)
        assert spec is not None
        where = kn(obj)
        psc = spec.get("securityContext", {})
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: automountServiceAccountToken must be false")
        for field in ("runAsUser", "runAsGroup"):
            if not isinstance(psc.get(field), int) or psc[field] == 0:
                problems.append(f"{where}: pod {field} must be a non-zero number")
        if psc.get("runAsNonRoot") is not True:
            problems.append(f"{where}: pod runAsNonRoot must be true")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{where}: pod seccompProfile must be RuntimeDefault")
        empty_dirs = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for container in all_containers(spec):
            cwhere = f"{where} container {container['name']}"
            if container.get("securityContext", {}).get("readOnlyRootFilesystem") is not True:
                problems.append(f"{cwhere}: readOnlyRootFilesystem must be true")
            tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            if not tmp or tmp[0]["name"] not in empty_dirs:
                problems.append(f"{cwhere}: needs an emptyDir at /tmp")
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                for res in ("cpu", "memory"):
                    if res not in resources.get(kind, {}):
                        problems.append(f"{cwhere}: missing resources.{kind}.{res}")
            image = container["image"]
            if ":" not in image.rsplit("/", 1)[-1] and "@sha256:" not in image:
                problems.append(f"{cwhere}: image {image} has no tag")
            if image.endswith(":latest"):
                problems.append(f"{cwhere}: image {image} uses :latest")
            if image.startswith("shop/"):
                if not re.fullmatch(
                    r"shop/(order|inventory|payment|email)-service:dev|shop/shopctl:dev", image
                ):
                    problems.append(f"{cwhere}: unexpected local image {image}")
                if container.get("imagePullPolicy") != "IfNotPresent":
                    problems.append(
                        f"{cwhere}: locally loaded image needs imagePullPolicy IfNotPresent"
                    )
    assert not problems, "\n".join(problems)


def _by_kind_name(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {kn(o): o for o in objects}


@pytest.mark.timeout(30)
def test_service_deployments(target: str, objects: list[dict[str, Any]]) -> None:
    index = _by_kind_name(objects)
    for svc, port in SERVICES.items():
        deployment = index[f"Deployment/{svc}"]
        spec = deployment["spec"]["template"]["spec"]
        assert spec["terminationGracePeriodSeconds"] >= 30, svc
        (main,) = spec["containers"]
        assert main["image"] == f"shop/{svc}-service:dev"
        assert main["args"] == ["serve"]
        assert main["ports"] == [{"name": "http", "containerPort": port}]
        assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert "startupProbe" in main
        pre_stop = main["lifecycle"]["preStop"]
        assert "sleep" in pre_stop or "sleep" in " ".join(pre_stop["exec"]["command"]), svc
        (migrate,) = spec["initContainers"]
        assert migrate["image"] == main["image"]
        assert f"{svc}-service migrate" in " ".join(
            migrate.get("command", []) + migrate.get("args", [])
        )
        for container in (migrate, main):
            env = {e["name"]: e for e in container["env"]}
            assert env["AMQP_URL"]["value"] == f"amqp://shop_{svc}:$(AMQP_PASSWORD)@rabbitmq:5672/"
            assert (
                env["DATABASE_URL"]["value"]
                == f"postgresql://shop_{svc}:$(DB_PASSWORD)@postgres:5432/shop_{svc}"
            )
            # A service reads only its own credentials.
            secrets = {
                e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e
            }
            assert all(s.startswith(f"{svc}-credentials") for s in secrets), secrets
            config_maps = [e["configMapRef"]["name"] for e in container["envFrom"]]
            assert any(name.startswith("shop-common") for name in config_maps)
            assert any(name.startswith(f"{svc}-config") for name in config_maps)
        service = index[f"Service/{svc}"]
        assert service["spec"]["ports"][0]["port"] == port
    common = next(
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("shop-common")
    )
    assert common["data"]["HOST"] == "0.0.0.0", "service-kit binds 127.0.0.1 by default"
    assert common["data"]["LOG_FORMAT"] == "json"
    assert common["data"]["MIGRATE_ON_START"] == "false"


@pytest.mark.timeout(30)
def test_statefulsets_have_claims_and_headless_services(
    target: str, objects: list[dict[str, Any]]
) -> None:
    index = _by_kind_name(objects)
    for name in ("rabbitmq", "postgres"):
        sts = index[f"StatefulSet/{name}"]
        assert sts["spec"]["volumeClaimTemplates"], name
        service = index[f"Service/{sts['spec']['serviceName']}"]
        assert service["spec"].get("clusterIP") == "None", (
            f"{name}: governing Service must be headless"
        )
        spec = sts["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsUser"] == 999
        assert spec["containers"][0].get("livenessProbe")
        assert spec["containers"][0].get("readinessProbe")
    postgres = index["StatefulSet/postgres"]["spec"]["template"]["spec"]["containers"][0]
    pgdata = next(e["value"] for e in postgres["env"] if e["name"] == "PGDATA")
    data_mount = next(m["mountPath"] for m in postgres["volumeMounts"] if m["name"] == "data")
    assert pgdata.startswith(data_mount + "/"), "PGDATA must be a subdirectory of the volume"


@pytest.mark.timeout(30)
def test_setup_job(target: str, objects: list[dict[str, Any]]) -> None:
    job = _by_kind_name(objects)["Job/setup"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "shop/shopctl:dev"
    assert container["args"] == ["setup"]
    names = {e["name"] for e in container["env"]}
    required = {"SETUP_RABBITMQ_API_URL", "SETUP_POSTGRES_URL"} | {
        f"{svc.upper()}_{kind}_PASSWORD" for svc in SERVICES for kind in ("AMQP", "DB")
    }
    assert required <= names, required - names


# --- NetworkPolicies -------------------------------------------------------


def _selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
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


def _peer_names(peer: dict[str, Any], pods: dict[str, dict[str, str]]) -> set[str]:
    assert "ipBlock" not in peer, f"ipBlock peers are not expected: {peer}"
    if "namespaceSelector" in peer:
        ns = (
            peer["namespaceSelector"].get("matchLabels", {}).get("kubernetes.io/metadata.name", "?")
        )
        pod = ",".join(
            f"{k}={v}"
            for k, v in sorted(peer.get("podSelector", {}).get("matchLabels", {}).items())
        )
        return {f"ns:{ns}/{pod or '*'}"}
    matched = {
        name for name, labels in pods.items() if _selector_matches(peer["podSelector"], labels)
    }
    assert matched, f"peer selects no pod: {peer}"
    return matched


def _effective(
    objects: list[dict[str, Any]], direction: str
) -> dict[str, set[tuple[str, str, int]]]:
    """Pod name -> {(peer, protocol, port)} allowed in `direction` (egress: to, ingress: from)."""
    pods = {o["metadata"]["name"]: pod_labels(o) for o in workloads(objects)}
    policy_type, rules_key, peers_key = {
        "egress": ("Egress", "egress", "to"),
        "ingress": ("Ingress", "ingress", "from"),
    }[direction]
    allowed: dict[str, set[tuple[str, str, int]]] = {name: set() for name in pods}
    for np in (o for o in objects if o["kind"] == "NetworkPolicy"):
        spec = np["spec"]
        if policy_type not in spec.get("policyTypes", []):
            continue
        for pod, labels in pods.items():
            if not _selector_matches(spec["podSelector"], labels):
                continue
            for rule in spec.get(rules_key, []):
                assert rule.get("ports"), f"{kn(np)}: a rule without ports allows every port"
                peers = rule.get(peers_key)
                names = {"*"} if not peers else set().union(*(_peer_names(p, pods) for p in peers))
                for name in names:
                    for port in rule["ports"]:
                        allowed[pod].add((name, port.get("protocol", "TCP"), port["port"]))
    return allowed


DNS = {
    ("ns:kube-system/k8s-app=kube-dns", "UDP", 53),
    ("ns:kube-system/k8s-app=kube-dns", "TCP", 53),
}
SERVICE_EGRESS = DNS | {("rabbitmq", "TCP", 5672), ("postgres", "TCP", 5432)}
EXPECTED_EGRESS = {
    "order": SERVICE_EGRESS,
    "inventory": SERVICE_EGRESS,
    "payment": SERVICE_EGRESS,
    "email": SERVICE_EGRESS | {("mailpit", "TCP", 1025)},
    "setup": DNS | {("rabbitmq", "TCP", 15672), ("postgres", "TCP", 5432)},
    "rabbitmq": DNS,
    "postgres": DNS,
    "mailpit": DNS,
}
SERVICE_NAMES = ("order", "inventory", "payment", "email")
EXPECTED_INGRESS = {
    "order": {("*", "TCP", 8000)},
    "inventory": set(),
    "payment": set(),
    "email": set(),
    "setup": set(),
    "rabbitmq": {*((s, "TCP", 5672) for s in SERVICE_NAMES), ("setup", "TCP", 15672)},
    "postgres": {(s, "TCP", 5432) for s in (*SERVICE_NAMES, "setup")},
    "mailpit": {("email", "TCP", 1025), ("*", "TCP", 8025)},
}


@pytest.mark.timeout(30)
def test_default_deny_network_policy(target: str, objects: list[dict[str, Any]]) -> None:
    deny = [
        o
        for o in objects
        if o["kind"] == "NetworkPolicy"
        and o["spec"]["podSelector"] == {}
        and set(o["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not o["spec"].get("ingress")
        and not o["spec"].get("egress")
    ]
    assert deny, "no default-deny (ingress + egress) NetworkPolicy for the namespace"


@pytest.mark.timeout(30)
def test_network_policies_allow_only_the_listed_traffic(
    target: str, objects: list[dict[str, Any]]
) -> None:
    assert _effective(objects, "egress") == EXPECTED_EGRESS
    assert _effective(objects, "ingress") == EXPECTED_INGRESS


# --- kind ------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_kind_cluster_exposes_the_order_api_on_localhost_8000() -> None:
    cluster = yaml.safe_load(KIND_CONFIG.read_text())
    assert cluster["kind"] == "Cluster"
    assert cluster["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    (node,) = cluster["nodes"]
    match = re.fullmatch(r"kindest/node:v(\d+\.\d+\.\d+)@sha256:[0-9a-f]{64}", node["image"])
    assert match, "pin the kind node image by version and digest"
    assert match.group(1) == K8S_VERSION, "validate against the Kubernetes version the cluster runs"
    mappings = {m["hostPort"]: m["containerPort"] for m in node["extraPortMappings"]}

    objects = {kn(o): o for o in rendered_objects("overlays/kind")}
    order = objects["Service/order"]["spec"]
    assert order["type"] == "NodePort"
    assert mappings[8000] == order["ports"][0]["nodePort"]
    ui = objects["Service/mailpit-ui"]["spec"]
    assert ui["type"] == "NodePort"
    assert mappings[8025] == ui["ports"][0]["nodePort"]


@pytest.mark.timeout(30)
def test_kind_overlay_generates_every_referenced_secret() -> None:
    objects = rendered_objects("overlays/kind")
    secrets = {o["metadata"]["name"] for o in objects if o["kind"] == "Secret"}
    for obj in workloads(objects):
        spec = pod_spec(obj)
        assert spec is not None
        for container in all_containers(spec):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] in secrets, (
                        f"{kn(obj)}: Secret {ref['name']} is not generated"
                    )


# --- Secrets ---------------------------------------------------------------

SECRETISH_KEY = re.compile(r"PASS|SECRET|TOKEN|CREDENTIAL|PRIVATE", re.IGNORECASE)


def _known_secret_values() -> dict[str, str]:
    """Every credential any overlay generates, plus the compose dev credentials."""
    values = {}
    for target in kustomize_targets():
        values.update(secret_values(rendered_objects(target)))
    for key, value in parse_env_file(ENV_EXAMPLE).items():
        if SECRETISH_KEY.search(key):
            values[f".env.example:{key}"] = value
    return {k: v for k, v in values.items() if len(v) >= 6}


@pytest.mark.timeout(60)
def test_no_secret_in_configmaps_or_plain_env(target: str, objects: list[dict[str, Any]]) -> None:
    secrets = _known_secret_values()
    assert secrets, "expected the kind overlay to generate credentials"
    problems = []
    for obj in objects:
        if obj["kind"] == "ConfigMap":
            for key, value in (obj.get("data") or {}).items():
                if SECRETISH_KEY.search(key):
                    problems.append(f"{kn(obj)}: key {key} looks like a credential")
                problems += [
                    f"{kn(obj)}: {key} holds {name}"
                    for name, s in secrets.items()
                    if s in str(value)
                ]
        spec = pod_spec(obj)
        for container in all_containers(spec) if spec else []:
            for env in container.get("env", []):
                value = str(env.get("value", ""))
                if SECRETISH_KEY.search(env["name"]) and "valueFrom" not in env:
                    problems.append(f"{kn(obj)}: {env['name']} is set inline, not from a Secret")
                problems += [
                    f"{kn(obj)}: env {env['name']} holds {name}"
                    for name, s in secrets.items()
                    if s in value
                ]
    assert not problems, "\n".join(problems)
