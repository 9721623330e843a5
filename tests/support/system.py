"""The whole system as a user runs it: four service processes started by their
console scripts, each with its own database, all on one fresh vhost, sending
mail to a real SMTP sink. Tests talk to it only over HTTP, AMQP and SMTP.

A scenario may run a service as several processes instead (``ProcessPlan``): in
one role (the order service as ``order-api`` and ``order-worker``) and as several
replicas. Processes are then named like honcho names them, ``order-api.2``; a
plan of one replica keeps the plain name (``order``, ``inventory``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from itertools import count
from pathlib import Path

import httpx
from aiosmtpd.controller import Controller
from service_kit import Role

from tests.support.accounts import ShopBroker
from tests.support.apps import wait_until
from tests.support.tokens import ShopAuth, service_env

SERVICES = ("order", "inventory", "payment", "email")
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpSink:
    """A real SMTP server (aiosmtpd) that keeps every message it accepts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[Message] = []
        # SMTPUTF8 like Mailpit: internationalised addresses are delivered.
        self._controller = Controller(
            self, hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=True
        )

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 OK"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def for_order(self, order_id: str) -> list[Message]:
        return [m for m in self.messages if m["X-Order-Id"] == order_id]


@dataclass(frozen=True, slots=True)
class ProcessPlan:
    """``replicas`` processes of ``service`` in ``role`` (None: the service's
    default, which is ``all``)."""

    service: str
    role: Role | None = None
    replicas: int = 1

    @property
    def kind(self) -> str:
        """``order``, ``order-api``, ``order-worker``: a Procfile line's name."""
        return self.service if self.role is None else f"{self.service}-{self.role}"

    def names(self) -> list[str]:
        if self.replicas == 1:
            return [self.kind]
        return [f"{self.kind}.{n}" for n in range(1, self.replicas + 1)]


ONE_EACH = tuple(ProcessPlan(name) for name in SERVICES)


def replicated(replicas: int) -> tuple[ProcessPlan, ...]:
    """Every service ``replicas`` times, the order service split into its API and
    its worker (as ``make run REPLICAS=N`` runs them)."""
    return (
        ProcessPlan("order", "api", replicas),
        ProcessPlan("order", "worker", replicas),
        *(ProcessPlan(name, replicas=replicas) for name in SERVICES if name != "order"),
    )


@dataclass
class ServiceProcess:
    name: str  # the process: "payment", or "order-worker.2" (see ProcessPlan)
    port: int
    env: dict[str, str]
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    service: str = ""  # whose console script runs: the name, unless a plan says otherwise
    role: Role | None = None  # None: no arguments, the script's default role (all)

    def __post_init__(self) -> None:
        self.service = self.service or self.name

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def serves_api(self) -> bool:
        return self.role in (None, "api", "all")

    async def start(self) -> None:
        log = self.log_path.open("ab")
        role = ("serve", "--role", self.role) if self.role is not None else ()
        self.process = await asyncio.create_subprocess_exec(
            str(BIN / f"{self.service}-service"),
            *role,
            env=self.env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()

    async def wait_ready(self, timeout: float = 60) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:

            async def ready() -> bool:
                if self.process is not None and self.process.returncode is not None:
                    raise AssertionError(f"{self.name} exited:\n{self.log_tail()}")
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            try:
                await wait_until(ready, timeout=timeout, interval=0.2)
            except AssertionError as exc:
                raise AssertionError(f"{self.name} not ready: {exc}\n{self.log_tail()}") from exc

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int:
        """Signal the process and wait for it; ``SIGKILL`` if it will not stop."""
        if self.process is None:
            return 0
        if self.process.returncode is not None:
            return self.process.returncode
        self.process.send_signal(sig)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(f"{self.name} ignored signal {sig}:\n{self.log_tail()}") from None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


@dataclass
class System:
    services: dict[str, ServiceProcess]  # by process name (see ProcessPlan)
    smtp: SmtpSink
    amqp_url: str
    http: httpx.AsyncClient = field(
        default_factory=lambda: httpx.AsyncClient(timeout=10, auth=ShopAuth())
    )
    ready_timeout: float = 60.0  # seconds each start() may take, per batch of processes
    _turns: dict[str, count[int]] = field(default_factory=dict, repr=False)

    def url(self, service: str) -> str:
        """A process by its name; or, by a service's name, where users reach its
        HTTP API: with several replicas, each call gives the next one in turn, as a
        load balancer without health checks would (a dead one is not skipped)."""
        if service in self.services:
            return self.services[service].url
        serving = [p for p in self.replicas(service) if p.serves_api]
        if not serving:
            raise KeyError(f"no process serves {service}'s API")
        turn = next(self._turns.setdefault(service, count()))
        return serving[turn % len(serving)].url

    def replicas(self, service: str, role: Role | None = None) -> list[ServiceProcess]:
        """Every process of ``service`` (in ``role``, if given), in name order."""
        return [
            p
            for p in self.services.values()
            if p.service == service and (role is None or p.role == role)
        ]

    async def start(self, *names: str) -> None:
        """Start the processes named (all if none) and wait until they are ready."""
        targets = self._named(names)
        for service in targets:
            await service.start()
        await asyncio.gather(*(s.wait_ready(self.ready_timeout) for s in targets))

    async def stop(self, *names: str, sig: int = signal.SIGTERM) -> None:
        await asyncio.gather(*(s.stop(sig) for s in self._named(names)))

    def _named(self, names: Iterable[str]) -> list[ServiceProcess]:
        return [self.services[n] for n in names] or list(self.services.values())

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{s.log_tail()}" for n, s in self.services.items())


@dataclass
class ExternalSystem:
    """A system someone else runs (e.g. the kind cluster): reached over HTTP and
    AMQP only, so no process control, SMTP sink or log files."""

    urls: dict[str, str]
    amqp_url: str
    http: httpx.AsyncClient = field(
        default_factory=lambda: httpx.AsyncClient(timeout=10, auth=ShopAuth())
    )

    def url(self, service: str) -> str:
        return self.urls[service]

    def logs(self) -> str:
        return "(logs of an external system are not collected)"

    @classmethod
    def from_environment(cls) -> ExternalSystem:
        defaults = {name: f"http://127.0.0.1:{8000 + i}" for i, name in enumerate(SERVICES)}
        urls = {n: os.environ.get(f"{n.upper()}_URL", u) for n, u in defaults.items()}
        return cls(urls, os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))


@asynccontextmanager
async def running_system(
    *,
    broker: ShopBroker,
    databases: dict[str, str],
    workdir: Path,
    extra_env: dict[str, str] | None = None,
    via: str | None = None,
    plan: Iterable[ProcessPlan] = ONE_EACH,
    amqp_urls: dict[str, str] | None = None,
    ready_timeout: float = 60.0,
) -> AsyncIterator[System]:
    """Each service logs in as its own broker user (``via`` a proxy's host:port, if
    given; ``amqp_urls`` per service, e.g. a cluster's nodes, overrides both);
    ``System.amqp_url`` is the operator's, as ``shopctl`` uses it. ``plan``: which
    processes run (one of each service, in its default role, unless given);
    ``ready_timeout``: how long they may take to start (many share the CPU)."""
    smtp = SmtpSink()
    smtp.start()
    base_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "AMQP_", "PORT", "BROKER_USER_PREFIX"))
    }
    urls = amqp_urls or {}
    services = {}
    for kind in plan:
        for name in kind.names():
            port = free_port()
            env = {
                **base_env,
                "AMQP_URL": urls.get(kind.service) or broker.url(kind.service, via=via),
                "BROKER_USER_PREFIX": broker.prefix,
                "DATABASE_URL": databases[kind.service],
                "PORT": str(port),
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(smtp.port),
                "LOG_FORMAT": "json",
                "LOG_LEVEL": "INFO",
                "MIGRATE_ON_START": "true",
                "SHUTDOWN_GRACE": "5",
                **service_env(),
                **(extra_env or {}),
            }
            log = workdir / f"{name}.log"
            services[name] = ServiceProcess(
                name, port, env, log, service=kind.service, role=kind.role
            )
    system = System(services, smtp, broker.url("operator"), ready_timeout=ready_timeout)
    try:
        await system.start()
        yield system
    finally:
        try:
            await system.stop()
        finally:
            await system.http.aclose()
            smtp.stop()
