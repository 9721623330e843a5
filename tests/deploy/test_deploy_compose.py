"""docker-compose.yml: valid with .env.example, healthy start order, no secrets.

`docker compose config -q` is run when the Compose plugin is installed. Without
it (as on the machines this was written on: a Docker client without the
plugin), the file is interpolated with .env.example by the code below and
validated against the Compose Specification's JSON schema, vendored as
tests/deploy/compose-spec.json (see README.md there).
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.helpers import (
    ALERTS,
    APPS,
    COMPOSE_FILE,
    ENV_EXAMPLE,
    REPO,
    SERVICES,
    load_compose_raw,
    parse_env_file,
    run,
)

pytestmark = pytest.mark.deploy

SCHEMA = Path(__file__).with_name("compose-spec.json")
# The vendored schema revision predates `build.secrets` (BuildKit secrets for a build,
# in the Compose Specification's build section since 2022). The file stays as it was
# vendored; the loaded schema gets that one property, defined as the specification
# defines it: secret names, or {source, target, uid, gid, mode}.
BUILD_SECRETS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "oneOf": [
            {"type": "string"},
            {
                "type": "object",
                "properties": {
                    "source": {"type": "string"},
                    "target": {"type": "string"},
                    "uid": {"type": "string"},
                    "gid": {"type": "string"},
                    "mode": {"type": "number"},
                },
                "additionalProperties": False,
                "patternProperties": {"^x-": {}},
            },
        ]
    },
}
INFRA = ("rabbitmq", "postgres", "mailpit", "prometheus", "grafana")
ONESHOTS = ("setup", *(f"{s}-migrate" for s in SERVICES))
LONG_RUNNING = (*INFRA, *APPS)
OPERATOR_PORTS = REPO / "deploy" / "compose" / "operator-ports.yml"
COMPOSE_PROMETHEUS = REPO / "deploy" / "compose" / "prometheus.yml"
# Compose secret -> (file under SHOP_KEYS_DIR, the variable that names its path).
KEY_SECRETS = {
    "auth_verify_key": ("auth-verify.pem", "AUTH_PUBLIC_KEY_FILE"),
    "payment_sealing_public_key": ("payment-sealing.pub.pem", "PAYMENT_PUBLIC_KEY_FILE"),
    "payment_sealing_key": ("payment-sealing.pem", "PAYMENT_PRIVATE_KEY_FILE"),
}
APP_KEYS = {
    "order-api": {"auth_verify_key", "payment_sealing_public_key"},
    "order-worker": {"payment_sealing_public_key"},
    "inventory": {"auth_verify_key"},
    "payment": {"auth_verify_key", "payment_sealing_key"},
    "email": {"auth_verify_key"},
}
SECRETISH = re.compile(r"PASS|SECRET|TOKEN|CREDENTIAL|PRIVATE", re.IGNORECASE)

# Compose interpolation: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e},
# ${VAR:+a}, ${VAR+a}
_TOKEN = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<plain>[A-Za-z_][A-Za-z0-9_]*)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\})"
)


class MissingVariableError(Exception):
    pass


def interpolate(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(m: re.Match[str]) -> str:
        if m.group("escaped"):
            return "$"
        name = m.group("plain") or m.group("name")
        op, arg = m.group("op"), m.group("arg") or ""
        present = name in env
        nonempty = bool(env.get(name))
        if op in (":?", "?") and not (nonempty if op == ":?" else present):
            raise MissingVariableError(f"required variable {name} is missing a value: {arg}")
        if op in (":-", "-") and not (nonempty if op == ":-" else present):
            return arg
        if op in (":+", "+"):
            return arg if (nonempty if op == ":+" else present) else ""
        return env.get(name, "")

    return _TOKEN.sub(substitute, value)


def compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and run([docker, "compose", "version"], timeout=30).returncode == 0:
        return [docker, "compose"]
    return None


def _duration(text: str) -> timedelta:
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", text):
        total += float(amount) * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[unit]
    return timedelta(seconds=total)


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "use the mapping form of environment"
    return {k: str(v) for k, v in env.items()}


def compose_schema() -> dict[str, Any]:
    schema = json.loads(SCHEMA.read_text())
    build = schema["definitions"]["service"]["properties"]["build"]
    (build_object,) = [alt for alt in build["oneOf"] if alt.get("type") == "object"]
    assert "secrets" not in build_object["properties"], (
        "the vendored schema knows build.secrets now"
    )
    build_object["properties"]["secrets"] = BUILD_SECRETS_SCHEMA
    return dict(schema)


@pytest.fixture(scope="module")
def dev_env() -> dict[str, str]:
    return parse_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def compose(dev_env: dict[str, str]) -> dict[str, Any]:
    return interpolate(load_compose_raw(), dev_env)


@pytest.mark.timeout(60)
def test_compose_config_is_valid_with_env_example(compose: dict[str, Any]) -> None:
    import jsonschema

    validator = jsonschema.Draft201909Validator(compose_schema())
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(compose)
    ]
    assert not errors, (
        "docker-compose.yml does not match the Compose Specification schema:\n" + "\n".join(errors)
    )
    names = set(compose["services"])
    for name, service in compose["services"].items():
        for dep in service.get("depends_on", {}):
            assert dep in names, f"{name} depends on unknown service {dep}"

    cli = compose_cli()
    if cli is None:
        warnings.warn(
            "the docker compose plugin is not installed: docker-compose.yml was validated "
            "against the vendored Compose Specification schema only, not with "
            "`docker compose config`",
            stacklevel=1,
        )
        return
    proc = run(
        [*cli, "-f", str(COMPOSE_FILE), "--env-file", str(ENV_EXAMPLE), "config", "-q"],
        timeout=60,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(REPO)},
    )
    assert proc.returncode == 0, f"docker compose config failed:\n{proc.stderr}"


@pytest.mark.timeout(30)
def test_schema_validation_rejects_a_broken_file(compose: dict[str, Any]) -> None:
    """Guards the check above: the vendored schema is strict about unknown keys."""
    import jsonschema

    broken = json.loads(json.dumps(compose))
    broken["services"]["order-api"]["helthcheck"] = broken["services"]["order-api"].pop(
        "healthcheck"
    )
    validator = jsonschema.Draft201909Validator(compose_schema())
    assert list(validator.iter_errors(broken))
    broken = json.loads(json.dumps(compose))
    broken["services"]["order-api"]["build"]["secrets"] = [{"source": "build_ca", "mdoe": 0o400}]
    assert list(validator.iter_errors(broken))


@pytest.mark.timeout(30)
def test_every_required_variable_is_in_env_example(dev_env: dict[str, str]) -> None:
    raw = COMPOSE_FILE.read_text()
    required = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?", raw))
    assert required, "credentials must be required with ${VAR:?message}"
    assert required <= set(dev_env), f".env.example lacks {sorted(required - set(dev_env))}"
    with pytest.raises(MissingVariableError):
        interpolate(load_compose_raw(), {})
    for key, value in dev_env.items():
        if SECRETISH.search(key):
            assert "dev" in value, f".env.example {key} must be an obviously development-only value"
    cli = compose_cli()
    if cli is not None:
        proc = run(
            [*cli, "-f", str(COMPOSE_FILE), "--env-file", "/dev/null", "config", "-q"],
            timeout=60,
            env={"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(REPO)},
        )
        assert proc.returncode != 0, "compose must refuse to start without the credentials"


@pytest.mark.timeout(30)
def test_no_hardcoded_secrets() -> None:
    """Every credential in the file is a required ${VAR:?...} reference."""
    required_ref = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]*\}$")
    raw = load_compose_raw()
    problems = []
    for name, service in raw["services"].items():
        for key, value in _env(service).items():
            # *_FILE: where a key is mounted (a Compose secret), not a key.
            is_key_path = key.endswith("_FILE") and value.startswith("/run/secrets/")
            if SECRETISH.search(key) and not required_ref.match(value) and not is_key_path:
                problems.append(f"{name}: {key}={value}")
            for userinfo in re.findall(r"://([^/@\s]+)@", value):
                _user, _, password = userinfo.partition(":")
                if not required_ref.match(password):
                    problems.append(f"{name}: {key} has an inline password: {value}")
    text = COMPOSE_FILE.read_text()
    for key, value in parse_env_file(ENV_EXAMPLE).items():
        if SECRETISH.search(key):
            assert value not in text, f"the value of {key} is written in docker-compose.yml"
    assert not problems, "\n".join(problems)


@pytest.mark.timeout(30)
def test_healthchecks_and_start_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {*LONG_RUNNING, *ONESHOTS}

    for name in LONG_RUNNING:
        service = services[name]
        check = service.get("healthcheck", {})
        assert check.get("test"), f"{name} needs a healthcheck"
        assert not check.get("disable"), f"{name} needs a healthcheck"
        assert service.get("restart") in ("unless-stopped", "always", "on-failure"), name
    for app in APPS:
        assert any("/readyz" in str(part) for part in services[app]["healthcheck"]["test"]), app
        assert _duration(services[app]["stop_grace_period"]) >= timedelta(seconds=30), app
    for name in ONESHOTS:
        assert services[name]["restart"] == "no", name
        # `up --wait` treats an exited one-shot as failed unless a long-running
        # service depends on it with service_completed_successfully.
        adopters = [
            s
            for s in LONG_RUNNING
            if services[s].get("depends_on", {}).get(name, {}).get("condition")
            == "service_completed_successfully"
        ]
        assert adopters, f"no long-running service waits for {name} to complete"

    def conditions(name: str) -> dict[str, str]:
        deps = services[name].get("depends_on")
        assert isinstance(deps, dict), f"{name}: depends_on must use conditions"
        return {dep: spec["condition"] for dep, spec in deps.items()}

    assert conditions("setup") == {"rabbitmq": "service_healthy", "postgres": "service_healthy"}
    for svc in SERVICES:
        migrate = conditions(f"{svc}-migrate")
        assert migrate["setup"] == "service_completed_successfully"
        assert migrate["postgres"] == "service_healthy"
    for app, (svc, role) in APPS.items():
        deps = conditions(app)
        assert deps[f"{svc}-migrate"] == "service_completed_successfully", app
        assert deps["setup"] == "service_completed_successfully", app
        assert deps["postgres"] == "service_healthy", app
        # The API role opens no broker connection, so it does not wait for the broker.
        assert ("rabbitmq" in deps) == (role != "api"), app
        if role != "api":
            assert deps["rabbitmq"] == "service_healthy", app
    assert conditions("email")["mailpit"] == "service_healthy"
    assert conditions("grafana") == {"prometheus": "service_healthy"}


@pytest.mark.timeout(30)
def test_services_configuration(compose: dict[str, Any], dev_env: dict[str, str]) -> None:
    services = compose["services"]
    for app, (svc, role) in APPS.items():
        port = SERVICES[svc]
        for name in (app, f"{svc}-migrate"):
            service = services[name]
            env = _env(service)
            assert service["image"] == f"shop/{svc}-service:dev"
            assert service["build"]["args"]["PACKAGE"] == f"{svc}-service"
            assert env["LOG_FORMAT"] == "json"
            assert env["HOST"] == "0.0.0.0", "service-kit binds 127.0.0.1 by default"
            assert env["PORT"] == str(port)
            assert env["MIGRATE_ON_START"] == "false"
            db_password = dev_env[f"{svc.upper()}_DB_PASSWORD"]
            assert (
                env["DATABASE_URL"]
                == f"postgresql://shop_{svc}:{db_password}@postgres:5432/shop_{svc}"
            )
            assert service["read_only"] is True
            assert "ALL" in service["cap_drop"]
        assert services[f"{svc}-migrate"]["command"] == ["migrate"]
        assert services[app]["command"] == ["serve", "--role", role], app
        env = _env(services[app])
        if role == "api":
            assert "AMQP_URL" not in env, f"{app}: the API role has no broker connection"
        else:
            password = dev_env[f"{svc.upper()}_AMQP_PASSWORD"]
            assert env["AMQP_URL"] == f"amqp://shop_{svc}:{password}@rabbitmq:5672/", app
    # Under CPU contention the front door (order-api and its database) comes first; the
    # consumers drain the queues after a burst.
    consumers = [app for app, (_svc, role) in APPS.items() if role != "api"]
    for front in ("order-api", "postgres"):
        for app in consumers:
            assert int(services[front]["cpu_shares"]) > int(services[app]["cpu_shares"]), app
    # Only the public API publishes a port: every other process can be scaled.
    published = {name for name in APPS if services[name].get("ports")}
    assert published == {"order-api"}, published
    assert services["order-api"]["ports"] == ["127.0.0.1:8000:8000"]
    email = _env(services["email"])
    assert (email["SMTP_HOST"], email["SMTP_PORT"]) == ("mailpit", "1025")
    assert "PAYMENT_AMOUNT_LIMIT" in _env(services["payment"])

    setup = services["setup"]
    assert setup["build"]["args"]["PACKAGE"] == "shopctl"
    assert setup["command"] == ["setup"]
    expected = {"SETUP_RABBITMQ_API_URL", "SETUP_POSTGRES_URL", "OPERATOR_AMQP_PASSWORD"} | {
        f"{svc.upper()}_{kind}_PASSWORD" for svc in SERVICES for kind in ("AMQP", "DB")
    }
    assert expected <= set(_env(setup))

    for name, service in services.items():
        image = service["image"]
        assert ":" in image, f"{name}: pin the image tag ({image})"
        assert not image.endswith(":latest"), f"{name}: pin the image tag ({image})"


@pytest.mark.timeout(30)
def test_services_get_only_the_keys_they_need(compose: dict[str, Any]) -> None:
    """Keys are Compose secrets (files from SHOP_KEYS_DIR, default .secrets, made by
    `shopctl keys`): the verifying key for every API, the payment service's public key
    for the order service, its private key for payment only, and no container gets the
    key that signs tokens."""
    raw = load_compose_raw()
    for name, (filename, _variable) in KEY_SECRETS.items():
        assert raw["secrets"][name] == {"file": f"${{SHOP_KEYS_DIR:-./.secrets}}/{filename}"}
    assert "auth-signing" not in COMPOSE_FILE.read_text()
    services = compose["services"]
    for name, service in services.items():
        mounted = service.get("secrets", [])
        sources = {s["source"] for s in mounted}
        assert sources == APP_KEYS.get(name, set()), (name, sources)
        env = _env(service)
        for secret in mounted:
            filename, variable = KEY_SECRETS[secret["source"]]
            assert secret["target"] == filename, (name, secret)
            assert env[variable] == f"/run/secrets/{filename}", (name, variable)


@pytest.mark.timeout(30)
def test_observability(compose: dict[str, Any]) -> None:
    """Prometheus and Grafana are optional: both in the profile `observability`
    (Prometheus also in `prometheus`, alone: make test-compose runs that one, as Grafana's
    image has no test stand-in). Prometheus scrapes every replica of every service (DNS
    discovery of the Compose service names) with deploy/observability's rules; Grafana
    is provisioned from deploy/observability. No other service is in a profile."""
    services = compose["services"]
    profiled = {name for name, service in services.items() if "profiles" in service}
    assert profiled == {"prometheus", "grafana"}
    prometheus = services["prometheus"]
    assert prometheus["profiles"] == ["observability", "prometheus"]
    assert not any(
        "prometheus" in svc.get("depends_on", {})
        for name, svc in services.items()
        if name != "grafana"
    ), "a service outside the profile must not need Prometheus"
    mounts = {m["target"]: m for m in prometheus["volumes"] if isinstance(m, dict)}
    assert (
        mounts["/etc/prometheus/alerts.yml"]["source"]
        == "./deploy/observability/prometheus/alerts.yml"
    )
    assert mounts["/etc/prometheus/prometheus.yml"]["source"] == "./deploy/compose/prometheus.yml"
    for mount in mounts.values():
        assert (REPO / mount["source"]).exists(), mount["source"]
        assert mount["bind"]["create_host_path"] is False, (
            "a missing file must not become a directory"
        )
        assert mount["read_only"] is True
    assert ALERTS.is_file()
    config = yaml.safe_load(COMPOSE_PROMETHEUS.read_text())
    assert config["rule_files"] == ["alerts.yml"]
    (shop,) = [job for job in config["scrape_configs"] if job["job_name"] == "shop"]
    discovered = {name: sd["port"] for sd in shop["dns_sd_configs"] for name in sd["names"]}
    assert discovered == {app: SERVICES[svc] for app, (svc, _role) in APPS.items()}
    assert all(sd["type"] == "A" for sd in shop["dns_sd_configs"])

    grafana = services["grafana"]
    assert grafana["profiles"] == ["observability"]
    targets = {m["target"]: m["source"] for m in grafana["volumes"] if isinstance(m, dict)}
    assert targets["/etc/grafana/provisioning"] == "./deploy/observability/grafana/provisioning"
    provider = yaml.safe_load(
        (REPO / "deploy/observability/grafana/provisioning/dashboards/shop.yml").read_text()
    )
    dashboards = {p["options"]["path"] for p in provider["providers"]}
    assert targets[dashboards.pop()] == "./deploy/observability/grafana/dashboards"
    datasources = yaml.safe_load(
        (REPO / "deploy/observability/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert {d["url"] for d in datasources["datasources"]} == {"http://prometheus:9090"}


@pytest.mark.timeout(30)
def test_operator_ports_publish_on_ports_docker_picks() -> None:
    """deploy/compose/operator-ports.yml (used by make test-compose) publishes the
    operators' APIs and AMQP on 127.0.0.1 without fixed host ports, so replicas work."""
    override = yaml.safe_load(OPERATOR_PORTS.read_text())
    published = {}
    for name, service in override["services"].items():
        assert set(service) == {"ports"}, name
        for port in service["ports"]:
            match = re.fullmatch(r"\$\{SHOP_BIND_ADDRESS:-127\.0\.0\.1\}::(\d+)", port)
            assert match, f"{name}: {port}"
            published[name] = int(match.group(1))
    assert published == {"inventory": 8001, "payment": 8002, "email": 8003, "rabbitmq": 5672}
    cli = compose_cli()
    if cli is not None:
        proc = run(
            [
                *cli,
                "-f",
                str(COMPOSE_FILE),
                "-f",
                str(OPERATOR_PORTS),
                "--env-file",
                str(ENV_EXAMPLE),
                "config",
                "-q",
            ],
            timeout=60,
            env={"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(REPO)},
        )
        assert proc.returncode == 0, proc.stderr


@pytest.mark.timeout(30)
def test_compose_file_uses_anchors() -> None:
    text = COMPOSE_FILE.read_text()
    assert re.search(r"^x-[a-z-]+: &", text, re.MULTILINE), (
        "shared blocks belong in x- extension fields"
    )
    assert "<<: *" in text
    yaml.safe_load(text)  # anchors resolve


@pytest.mark.timeout(30)
def test_builds_get_the_ca_bundle_as_a_build_secret(compose: dict[str, Any]) -> None:
    """Extra CA certificates (a TLS-intercepting proxy) reach every build as the
    BuildKit secret the Dockerfile mounts; the file comes from SHOP_BUILD_CA_BUNDLE."""
    built = {name: s for name, s in compose["services"].items() if "build" in s}
    assert built
    for name, service in built.items():
        assert service["build"].get("secrets") == ["build_ca"], name
    raw = load_compose_raw()
    secret = raw["secrets"]["build_ca"]
    assert re.fullmatch(r"\$\{SHOP_BUILD_CA_BUNDLE:-/\S+\}", secret["file"]), secret
    assert set(secret) == {"file"}
    # No service receives it at run time (services get only their keys).
    for name, service in compose["services"].items():
        assert "build_ca" not in {s["source"] for s in service.get("secrets", [])}, name


@pytest.mark.timeout(30)
def test_every_published_port_can_be_moved() -> None:
    """Each published host port comes from a variable whose default is today's port, so
    a second stack (make test-compose) never clashes with the host's servers or `make run`."""
    raw = load_compose_raw()
    published = 0
    for name, service in raw["services"].items():
        for port in service.get("ports", []):
            match = re.fullmatch(
                r"\$\{SHOP_BIND_ADDRESS:-127\.0\.0\.1\}:\$\{[A-Z_]+_PORT:-(\d+)\}:(\d+)", port
            )
            assert match, f"{name}: publish {port!r} as ${{SHOP_BIND_ADDRESS..}}:${{X_PORT:-N}}:N"
            assert match.group(1) == match.group(2), port
            published += 1
    # The order API, Mailpit's UI, RabbitMQ's management, Prometheus, Grafana.
    assert published == 5
