"""The Compose stack of `make test-compose`, as its tests and tests/compose/run.sh see it.

run.sh exports COMPOSE_FILE, COMPOSE_PROJECT_NAME and COMPOSE_TEST_ENV_FILE (plus every
variable of that env file), so `docker compose` here drives the test's own project and
never a user's `make up` stack. Services and ports are read from `docker compose config`,
not written down here: the app services may be split or renamed without touching this.

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
MAILPIT_HTTP_PORT = 8025


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


def published(service: str, target: int | None = None) -> tuple[str, int] | None:
    """(host address, host port) of a published port of `service`: `target`'s, or its first."""
    for port in config()["services"][service].get("ports") or []:
        if port.get("published") and (target is None or int(port["target"]) == target):
            host = port.get("host_ip") or "127.0.0.1"
            return ("127.0.0.1" if host in ("0.0.0.0", "::") else host), int(port["published"])
    return None


def service_publishing(target: int) -> str:
    found = [s for s in services() if published(s, target)]
    assert len(found) == 1, f"expected one service publishing container port {target}: {found}"
    return found[0]


def e2e_service(name: str) -> str:
    """The compose service that serves the e2e harness's `name` over published HTTP."""
    candidates = [s for s in services() if (s == name or s.startswith(f"{name}-")) and published(s)]
    assert len(candidates) == 1, f"no single published compose service for {name}: {candidates}"
    return candidates[0]


def url(service: str, target: int | None = None) -> str:
    address = published(service, target)
    assert address, f"{service} publishes no port"
    return f"http://{address[0]}:{address[1]}"


def environment() -> dict[str, str]:
    """The variables tests/e2e's external target reads, plus MAILPIT_URL."""
    env = {f"{name.upper()}_URL": url(e2e_service(name)) for name in E2E_SERVICES}
    broker = published(service_publishing(AMQP_PORT), AMQP_PORT)
    assert broker
    user = os.environ.get("RABBITMQ_ADMIN_USER", "admin")
    password = os.environ["RABBITMQ_ADMIN_PASSWORD"]
    env["AMQP_URL"] = f"amqp://{user}:{password}@{broker[0]}:{broker[1]}/"
    env["MAILPIT_URL"] = url(service_publishing(MAILPIT_HTTP_PORT), MAILPIT_HTTP_PORT)
    return env


if __name__ == "__main__":
    if sys.argv[1:] == ["env"]:
        for key, value in environment().items():
            print(f"{key}={value}")
    elif sys.argv[1:] == ["services"]:
        print("\n".join(services()))
    else:
        sys.exit("usage: python -m tests.compose.stack env|services")
