"""The Compose stack of `make test-compose`, as its tests and tests/compose/run.sh see it.

run.sh exports COMPOSE_FILE, COMPOSE_PROJECT_NAME and COMPOSE_TEST_ENV_FILE (plus every
variable of that env file), so `docker compose` here drives the test's own project and
never a user's `make up` stack. Services and ports are read from `docker compose config`
and `docker compose port`, not written down here: a port Docker picked (the operators'
APIs of deploy/compose/operator-ports.yml, so those services can scale) is found the
same way as a fixed one.

    python -m tests.compose.stack env    # prints ORDER_URL=... AMQP_URL=... for run.sh
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from typing import Any

# The e2e harness's names (tests/support/system.py SERVICES); a compose service
# serves one when it is called so or <name>-<something> (e.g. order-api).
E2E_SERVICES = ("order", "inventory", "payment", "email")
AMQP_PORT = 5672
RABBITMQ_MANAGEMENT_PORT = 15672
MAILPIT_HTTP_PORT = 8025
PROMETHEUS_HTTP_PORT = 9090
# The people's broker account `shopctl setup` creates (tail, dlq replay, the e2e taps).
OPERATOR_USER = "shop_operator"


def compose_cmd(*args: str) -> list[str]:
    cmd = ["docker", "compose"]
    env_file = os.environ.get("COMPOSE_TEST_ENV_FILE")
    if env_file:
        cmd += ["--env-file", env_file]
    return [*cmd, *args]


def compose(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        compose_cmd(*args), capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        command = " ".join(compose_cmd(*args))
        raise AssertionError(f"`{command}` failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc


@cache
def config() -> dict[str, Any]:
    return dict(json.loads(compose("config", "--format", "json", timeout=60).stdout))


def services() -> list[str]:
    return sorted(config()["services"])


def published_targets(service: str) -> list[int]:
    """Container ports the service publishes on the host (fixed or Docker-picked)."""
    return [int(p["target"]) for p in config()["services"][service].get("ports") or []]


def published(service: str, target: int | None = None, index: int = 1) -> tuple[str, int] | None:
    """(host address, host port) where replica `index` of `service` publishes `target`
    (default: its first published port); None if it publishes none or is not running."""
    targets = published_targets(service)
    if not targets or (target is not None and target not in targets):
        return None
    port = targets[0] if target is None else target
    proc = compose("port", "--index", str(index), service, str(port), timeout=30, check=False)
    address = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if proc.returncode != 0 or ":" not in address:
        return None
    host, _, number = address.rpartition(":")
    host = host.strip("[]")
    return ("127.0.0.1" if host in ("0.0.0.0", "::", "") else host), int(number)


def service_publishing(target: int) -> str:
    found = [s for s in services() if target in published_targets(s)]
    assert len(found) == 1, f"expected one service publishing container port {target}: {found}"
    return found[0]


def e2e_service(name: str) -> str:
    """The compose service that serves the e2e harness's `name` over published HTTP."""
    candidates = [
        s for s in services() if (s == name or s.startswith(f"{name}-")) and published_targets(s)
    ]
    assert len(candidates) == 1, f"no single published compose service for {name}: {candidates}"
    return candidates[0]


def url(service: str, target: int | None = None) -> str:
    address = published(service, target)
    assert address, f"{service} publishes no port {target or ''} (is it running?)"
    return f"http://{address[0]}:{address[1]}"


def amqp_url(user: str, password: str) -> str:
    broker = published(service_publishing(AMQP_PORT), AMQP_PORT)
    assert broker, "the broker's AMQP port is not published"
    return f"amqp://{user}:{password}@{broker[0]}:{broker[1]}/"


def environment() -> dict[str, str]:
    """The variables tests/e2e's external target reads (the event taps log in as the
    operator, not the administrator), plus MAILPIT_URL, RABBITMQ_API_URL, PROMETHEUS_URL."""
    env = {f"{name.upper()}_URL": url(e2e_service(name)) for name in E2E_SERVICES}
    env["AMQP_URL"] = amqp_url(OPERATOR_USER, os.environ["OPERATOR_AMQP_PASSWORD"])
    env["MAILPIT_URL"] = url(service_publishing(MAILPIT_HTTP_PORT), MAILPIT_HTTP_PORT)
    env["RABBITMQ_API_URL"] = url(
        service_publishing(RABBITMQ_MANAGEMENT_PORT), RABBITMQ_MANAGEMENT_PORT
    )
    env["PROMETHEUS_URL"] = url(service_publishing(PROMETHEUS_HTTP_PORT), PROMETHEUS_HTTP_PORT)
    return env


def containers(service: str) -> list[dict[str, Any]]:
    """`docker compose ps --all` rows of the service's containers (one per replica)."""
    proc = compose("ps", "--all", "--format", "json", service, timeout=30)
    text = proc.stdout.strip()
    if not text:
        return []
    if text.startswith("["):
        return list(json.loads(text))
    return [json.loads(line) for line in text.splitlines() if line]


if __name__ == "__main__":
    if sys.argv[1:] == ["env"]:
        for key, value in environment().items():
            print(f"{key}={value}")
    elif sys.argv[1:] == ["services"]:
        print("\n".join(services()))
    else:
        sys.exit("usage: python -m tests.compose.stack env|services")
