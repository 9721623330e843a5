"""Kubernetes manifests: rendering, schema, Pod Security `restricted`, wiring.

Every target (deploy/k8s/base and each overlay) is rendered with kustomize and checked
here; what only the production overlay has (the operators' custom resources,
autoscalers, disruption budgets, spread, monitoring) is in test_deploy_production.py.

Offline only: there is no Kubernetes API server on this machine, so these manifests
are rendered and validated against schemas, never applied to a cluster (no admission,
no scheduling, no pod has started from them).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.deploy.helpers import (
    APP_KEYS,
    APPS,
    DEPLOY_MK,
    ENV_EXAMPLE,
    K8S_VERSION,
    KEY_SECRETS,
    KIND_CONFIG,
    NAMESPACE,
    SERVICES,
    all_containers,
    all_pods,
    by_kind_name,
    is_custom,
    kn,
    kustomize_targets,
    parse_env_file,
    pod_spec,
    rendered_objects,
    secret_values,
    selector_matches,
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
    assert {"Namespace", "Deployment", "Job", "Service", "NetworkPolicy", "ConfigMap"} <= kinds
    deployments = {o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"}
    assert deployments == {*APPS, "mailpit"}, deployments
    index = by_kind_name(objects)
    # The broker and the database: a StatefulSet each, or an operator's cluster.
    assert ("StatefulSet/rabbitmq" in index) != ("RabbitmqCluster/rabbitmq" in index), target
    assert ("StatefulSet/postgres" in index) != ("Cluster/postgres" in index), target


@pytest.mark.timeout(60)
def test_objects_validate_strictly(target: str, objects: list[dict[str, Any]]) -> None:
    """Every core object against the Kubernetes schemas; the operators' custom resources
    (production only) against their CRDs' schemas, in test_deploy_production.py."""
    kv = _kubernetes_validate()
    core = [o for o in objects if not is_custom(o)]
    custom = [kn(o) for o in objects if is_custom(o)]
    assert core
    if target != "overlays/production":
        assert not custom, f"{target}: custom resources outside the production overlay: {custom}"
    errors = []
    for obj in core:
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
    """Every rendered pod. The operators' pods (production) are not rendered: their
    security contexts are the operators' defaults, which test_deploy_production.py
    checks the overlay leaves alone."""
    pods = workloads(objects)
    assert {kn(o) for o in pods} >= {
        *(f"Deployment/{app}" for app in APPS),
        "Deployment/mailpit",
        "Job/setup",
    }
    problems = [p for o in pods for p in _restricted_violations(o)]
    assert not problems, "\n".join(problems)


@pytest.mark.timeout(30)
def test_restricted_check_catches_violations() -> None:
    """Guards the check above against passing everything."""
    deployment = next(o for o in rendered_objects("base") if kn(o) == "Deployment/order-api")
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


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def _secret_refs(container: dict[str, Any]) -> set[str]:
    return {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }


@pytest.mark.timeout(30)
def test_app_deployments(target: str, objects: list[dict[str, Any]]) -> None:
    """order-api and order-worker from one image with their roles; inventory, payment and
    email as one process each; migrations first; each process its own credentials only,
    and a broker user only where the role talks to the broker."""
    index = by_kind_name(objects)
    for app, (svc, role) in APPS.items():
        port = SERVICES[svc]
        spec = index[f"Deployment/{app}"]["spec"]["template"]["spec"]
        assert spec["terminationGracePeriodSeconds"] >= 30, app
        (main,) = spec["containers"]
        assert main["image"] == f"shop/{svc}-service:dev", app
        assert main["args"] == ["serve", "--role", role], app
        assert main["ports"] == [{"name": "http", "containerPort": port}], app
        assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert "startupProbe" in main
        pre_stop = main["lifecycle"]["preStop"]
        assert "sleep" in pre_stop or "sleep" in " ".join(pre_stop["exec"]["command"]), app
        (migrate,) = spec["initContainers"]
        assert migrate["image"] == main["image"]
        assert f"{svc}-service migrate" in " ".join(
            migrate.get("command", []) + migrate.get("args", [])
        )
        database_url = f"postgresql://shop_{svc}:$(DB_PASSWORD)@$(SHOP_DB_HOST):5432/shop_{svc}"
        for container in (migrate, main):
            env = _env(container)
            assert env["DATABASE_URL"]["value"] == database_url, app
            assert all(s.startswith(f"{svc}-credentials") for s in _secret_refs(container)), app
            config_maps = [e["configMapRef"]["name"] for e in container["envFrom"]]
            assert any(name.startswith("shop-common") for name in config_maps)
            assert any(name.startswith(f"{svc}-config") for name in config_maps)
        # Migrations need the database only; the API role opens no broker connection.
        assert "AMQP_URL" not in _env(migrate), app
        if role == "api":
            assert not {"AMQP_URL", "AMQP_PASSWORD"} & set(_env(main)), app
        else:
            assert (
                _env(main)["AMQP_URL"]["value"]
                == f"amqp://shop_{svc}:$(AMQP_PASSWORD)@$(SHOP_AMQP_HOST):5672/"
            ), app
    common = next(
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("shop-common")
    )
    assert common["data"]["HOST"] == "0.0.0.0", "service-kit binds 127.0.0.1 by default"
    assert common["data"]["LOG_FORMAT"] == "json"
    assert common["data"]["MIGRATE_ON_START"] == "false"


@pytest.mark.timeout(30)
def test_services_select_their_own_pods(target: str, objects: list[dict[str, Any]]) -> None:
    """The public API Service `order` selects order-api only (never the worker); every
    other app has a Service of its own name (metrics, port-forwards)."""
    pods = all_pods(objects)
    index = by_kind_name(objects)
    expected = {"order": {"order-api"}} | {app: {app} for app in APPS if app != "order-api"}
    for name, apps in expected.items():
        service = index[f"Service/{name}"]
        selected = {
            pod
            for pod, labels in pods.items()
            if selector_matches({"matchLabels": service["spec"]["selector"]}, labels)
        }
        assert selected == apps, (name, selected)
        svc, _role = APPS[next(iter(apps))]
        assert service["spec"]["ports"][0]["port"] == SERVICES[svc], name
    for service in (o for o in objects if o["kind"] == "Service"):
        selector = {"matchLabels": service["spec"].get("selector", {})}
        assert any(selector_matches(selector, labels) for labels in pods.values()), kn(service)


def _mounted_secret_files(spec: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    """path -> (Secret, key) of every file the container sees from a Secret volume."""
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    files: dict[str, Any] = {}
    for mount in container.get("volumeMounts", []):
        secret = volumes[mount["name"]].get("secret")
        if secret is None:
            continue
        assert mount.get("readOnly") is True, mount
        assert secret.get("items"), f"{secret['secretName']}: name the keys (items)"
        for item in secret["items"]:
            files[f"{mount['mountPath']}/{item['path']}"] = (secret["secretName"], item["key"])
    return files


KEY_ENV = {
    "auth-verify-key": "AUTH_PUBLIC_KEY_FILE",
    "payment-sealing-public-key": "PAYMENT_PUBLIC_KEY_FILE",
    "payment-sealing-key": "PAYMENT_PRIVATE_KEY_FILE",
}


@pytest.mark.timeout(30)
def test_services_get_only_the_keys_they_need(target: str, objects: list[dict[str, Any]]) -> None:
    """Keys are files from Secret volumes: the verifying key for every API, the payment
    service's public key for the order service, its private key for payment only, and
    the key that signs tokens for nobody."""
    index = by_kind_name(objects)
    for app in APPS:
        spec = pod_spec(index[f"Deployment/{app}"])
        assert spec is not None
        (main,) = spec["containers"]
        files = _mounted_secret_files(spec, main)
        assert {secret for secret, _ in files.values()} == APP_KEYS[app], (app, files)
        env = _env(main)
        for path, (secret, key) in files.items():
            assert KEY_SECRETS[secret] == key, (app, secret, key)
            assert env[KEY_ENV[secret]]["value"] == path, (app, KEY_ENV[secret])
        for init in spec.get("initContainers", []):
            assert not _mounted_secret_files(spec, init), f"{app}: {init['name']} mounts keys"
    for obj in objects:
        assert "auth-signing" not in yaml.safe_dump(obj), f"{kn(obj)} names the signing key"


_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


@pytest.mark.timeout(30)
def test_every_variable_reference_resolves(target: str, objects: list[dict[str, Any]]) -> None:
    """Kubernetes leaves an unresolvable $(VAR) as it is: every reference in env, command
    and args names a variable defined before it (envFrom ConfigMaps, earlier env)."""
    config_maps = {
        o["metadata"]["name"]: set(o.get("data") or {}) for o in objects if o["kind"] == "ConfigMap"
    }
    problems = []
    for obj in workloads(objects):
        spec = pod_spec(obj)
        assert spec is not None
        for container in all_containers(spec):
            defined: set[str] = set()
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    defined |= config_maps[source["configMapRef"]["name"]]
            for env in container.get("env", []):
                missing = [
                    m.group(1)
                    for m in _VAR_REF.finditer(str(env.get("value", "")))
                    if m.group(1) and m.group(1) not in defined
                ]
                where = f"{kn(obj)} {container['name']} {env['name']}"
                problems += [f"{where}: $({m})" for m in missing]
                defined.add(env["name"])
            words = " ".join(container.get("command", []) + container.get("args", []))
            problems += [
                f"{kn(obj)} {container['name']} command: $({m.group(1)})"
                for m in _VAR_REF.finditer(words)
                if m.group(1) and m.group(1) not in defined
            ]
    assert not problems, "\n".join(problems)


@pytest.mark.timeout(30)
def test_servers_are_where_the_urls_point(target: str, objects: list[dict[str, Any]]) -> None:
    """SHOP_AMQP_HOST and SHOP_DB_HOST name a Service of the target or one its operators
    create (a RabbitmqCluster's client Service, a CloudNativePG cluster's -rw)."""
    common = next(
        o["data"]
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("shop-common")
    )
    services = {o["metadata"]["name"] for o in objects if o["kind"] == "Service"}
    brokers = services | {o["metadata"]["name"] for o in objects if o["kind"] == "RabbitmqCluster"}
    databases = services | {
        f"{o['metadata']['name']}-rw" for o in objects if o["kind"] == "Cluster" and is_custom(o)
    }
    assert common["SHOP_AMQP_HOST"] in brokers, common["SHOP_AMQP_HOST"]
    assert common["SHOP_DB_HOST"] in databases, common["SHOP_DB_HOST"]


@pytest.mark.timeout(30)
def test_statefulsets_have_claims_and_headless_services(
    target: str, objects: list[dict[str, Any]]
) -> None:
    index = by_kind_name(objects)
    statefulsets = {o["metadata"]["name"] for o in objects if o["kind"] == "StatefulSet"}
    if target == "overlays/production":
        assert not statefulsets, "production runs RabbitMQ and PostgreSQL through operators"
        return
    assert statefulsets == {"rabbitmq", "postgres"}
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
    job = by_kind_name(objects)["Job/setup"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "shop/shopctl:dev"
    assert container["args"] == ["setup"]
    env = _env(container)
    required = {"SETUP_RABBITMQ_API_URL", "SETUP_POSTGRES_URL", "OPERATOR_AMQP_PASSWORD"} | {
        f"{svc.upper()}_{kind}_PASSWORD" for svc in SERVICES for kind in ("AMQP", "DB")
    }
    assert required <= set(env), required - set(env)
    assert "@$(SHOP_AMQP_HOST):15672" in env["SETUP_RABBITMQ_API_URL"]["value"]
    assert "@$(SHOP_DB_HOST):5432/" in env["SETUP_POSTGRES_URL"]["value"]
    assert env["OPERATOR_AMQP_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"].startswith(
        "operator-credentials"
    )


# --- NetworkPolicies -------------------------------------------------------


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
        name for name, labels in pods.items() if selector_matches(peer["podSelector"], labels)
    }
    assert matched, f"peer selects no pod: {peer}"
    return matched


def _port(port: dict[str, Any]) -> Any:
    return f"{port['port']}-{port['endPort']}" if "endPort" in port else port["port"]


def _effective(
    objects: list[dict[str, Any]], direction: str
) -> dict[str, set[tuple[str, str, Any]]]:
    """Pod name -> {(peer, protocol, port)} allowed in `direction` (egress: to, ingress: from).
    Pods are the rendered ones and those the operators make (production)."""
    pods = all_pods(objects)
    policy_type, rules_key, peers_key = {
        "egress": ("Egress", "egress", "to"),
        "ingress": ("Ingress", "ingress", "from"),
    }[direction]
    allowed: dict[str, set[tuple[str, str, Any]]] = {name: set() for name in pods}
    for np in (o for o in objects if o["kind"] == "NetworkPolicy"):
        spec = np["spec"]
        if policy_type not in spec.get("policyTypes", []):
            continue
        for pod, labels in pods.items():
            if not selector_matches(spec["podSelector"], labels):
                continue
            for rule in spec.get(rules_key, []):
                assert rule.get("ports"), f"{kn(np)}: a rule without ports allows every port"
                peers = rule.get(peers_key)
                names = {"*"} if not peers else set().union(*(_peer_names(p, pods) for p in peers))
                for name in names:
                    for port in rule["ports"]:
                        allowed[pod].add((name, port.get("protocol", "TCP"), _port(port)))
    return allowed


DNS = {
    ("ns:kube-system/k8s-app=kube-dns", "UDP", 53),
    ("ns:kube-system/k8s-app=kube-dns", "TCP", 53),
}
DATABASE = ("postgres", "TCP", 5432)
BROKER = ("rabbitmq", "TCP", 5672)
# The processes with a broker connection: every app but the API-only order-api.
BROKER_CLIENTS = tuple(app for app, (_svc, role) in APPS.items() if role != "api")
EXPECTED_EGRESS: dict[str, set[tuple[str, str, Any]]] = {
    "order-api": DNS | {DATABASE},
    "order-worker": DNS | {DATABASE, BROKER},
    "inventory": DNS | {DATABASE, BROKER},
    "payment": DNS | {DATABASE, BROKER},
    "email": DNS | {DATABASE, BROKER, ("mailpit", "TCP", 1025)},
    "setup": DNS | {("rabbitmq", "TCP", 15672), DATABASE},
    "rabbitmq": DNS,
    "postgres": DNS,
    "mailpit": DNS,
}
EXPECTED_INGRESS: dict[str, set[tuple[str, str, Any]]] = {
    "order-api": {("*", "TCP", 8000)},
    "order-worker": set(),
    "inventory": set(),
    "payment": set(),
    "email": set(),
    "setup": set(),
    "rabbitmq": {*((s, "TCP", 5672) for s in BROKER_CLIENTS), ("setup", "TCP", 15672)},
    "postgres": {(s, "TCP", 5432) for s in (*APPS, "setup")},
    "mailpit": {("email", "TCP", 1025), ("*", "TCP", 8025)},
}

# Production: the operators, KEDA and Prometheus (their default namespaces and labels),
# the clusters' own traffic, and the Kubernetes API for RabbitMQ peer discovery and
# CloudNativePG's instance manager (any address, those ports, those pods only).
PROMETHEUS = "ns:monitoring/app.kubernetes.io/name=prometheus"
API_SERVER = {("*", "TCP", 443), ("*", "TCP", 6443)}
RABBITMQ_PEERS = {
    ("rabbitmq", "TCP", 4369),
    ("rabbitmq", "TCP", 25672),
    ("rabbitmq", "TCP", "35672-35682"),
}
POSTGRES_PEERS = {("postgres", "TCP", 5432), ("postgres", "TCP", 8000)}
PRODUCTION_EGRESS = {
    **EXPECTED_EGRESS,
    "rabbitmq": DNS | RABBITMQ_PEERS | API_SERVER,
    "postgres": DNS | POSTGRES_PEERS | API_SERVER,
}
PRODUCTION_INGRESS = {
    **EXPECTED_INGRESS,
    **{app: EXPECTED_INGRESS[app] | {(PROMETHEUS, "TCP", "http")} for app in APPS},
    "rabbitmq": EXPECTED_INGRESS["rabbitmq"]
    | RABBITMQ_PEERS
    | {
        ("ns:rabbitmq-system/app.kubernetes.io/component=rabbitmq-operator", "TCP", 15672),
        ("ns:keda/app=keda-operator", "TCP", 5672),
        (PROMETHEUS, "TCP", 15692),
    },
    "postgres": EXPECTED_INGRESS["postgres"]
    | POSTGRES_PEERS
    | {
        ("ns:cnpg-system/app.kubernetes.io/name=cloudnative-pg", "TCP", 5432),
        ("ns:cnpg-system/app.kubernetes.io/name=cloudnative-pg", "TCP", 8000),
        (PROMETHEUS, "TCP", 9187),
    },
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
    production = target == "overlays/production"
    assert _effective(objects, "egress") == (PRODUCTION_EGRESS if production else EXPECTED_EGRESS)
    assert _effective(objects, "ingress") == (
        PRODUCTION_INGRESS if production else EXPECTED_INGRESS
    )


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


def _secrets_made_by_make() -> dict[str, str]:
    """Secret -> key of the `kubectl create secret generic` lines of deploy.mk (kind-keys)."""
    text = re.sub(r"\\\n\s*", " ", DEPLOY_MK.read_text())
    return dict(re.findall(r"create secret generic (\S+)\s+--from-file=([^=\s]+)=", text))


@pytest.mark.timeout(30)
def test_kind_overlay_provides_every_referenced_secret() -> None:
    """Credentials are generated by the overlay; the key Secrets by `make kind-keys` from
    `shopctl keys` (never committed), each with the one key the pods mount."""
    objects = rendered_objects("overlays/kind")
    generated = {o["metadata"]["name"] for o in objects if o["kind"] == "Secret"}
    made = _secrets_made_by_make()
    assert made == KEY_SECRETS, made
    assert not generated & set(made), "a key Secret is generated from committed files"
    for obj in workloads(objects):
        spec = pod_spec(obj)
        assert spec is not None
        for container in all_containers(spec):
            for name in _secret_refs(container):
                assert name in generated, f"{kn(obj)}: Secret {name} is not generated"
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                name = volume["secret"]["secretName"]
                assert name in generated | set(made), f"{kn(obj)}: Secret {name} is made by nobody"


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
                # *_FILE: the path of a key mounted from a Secret volume (checked above).
                is_key_path = env["name"].endswith("_FILE") and value.startswith("/run/secrets/")
                if SECRETISH_KEY.search(env["name"]) and "valueFrom" not in env and not is_key_path:
                    problems.append(f"{kn(obj)}: {env['name']} is set inline, not from a Secret")
                problems += [
                    f"{kn(obj)}: env {env['name']} holds {name}"
                    for name, s in secrets.items()
                    if s in value
                ]
    assert not problems, "\n".join(problems)
