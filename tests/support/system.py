"""The whole system as a user runs it: four service processes started by their
console scripts, each with its own database, all on one fresh vhost, sending
mail to a real SMTP sink. Tests talk to it only over HTTP, AMQP and SMTP."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import httpx
from aiosmtpd.controller import Controller

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


@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            str(BIN / f"{self.name}-service"),
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
        if self.process is None or self.process.returncode is not None:
            return self.process.returncode if self.process else 0
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
    services: dict[str, ServiceProcess]
    smtp: SmtpSink
    amqp_url: str
    http: httpx.AsyncClient = field(
        default_factory=lambda: httpx.AsyncClient(timeout=10, auth=ShopAuth())
    )

    def url(self, service: str) -> str:
        return self.services[service].url

    async def start(self, *names: str) -> None:
        targets = [self.services[n] for n in names or SERVICES]
        for service in targets:
            await service.start()
        await asyncio.gather(*(s.wait_ready() for s in targets))

    async def stop(self, *names: str, sig: int = signal.SIGTERM) -> None:
        targets = [self.services[n] for n in names or SERVICES]
        await asyncio.gather(*(s.stop(sig) for s in targets))

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
) -> AsyncIterator[System]:
    """Each service logs in as its own broker user (``via`` a proxy's host:port, if
    given); ``System.amqp_url`` is the operator's, as ``shopctl`` uses it."""
    smtp = SmtpSink()
    smtp.start()
    base_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "AMQP_", "PORT", "BROKER_USER_PREFIX"))
    }
    services = {}
    for name in SERVICES:
        port = free_port()
        env = {
            **base_env,
            "AMQP_URL": broker.url(name, via=via),
            "BROKER_USER_PREFIX": broker.prefix,
            "DATABASE_URL": databases[name],
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
        services[name] = ServiceProcess(name, port, env, workdir / f"{name}.log")
    system = System(services, smtp, broker.url("operator"))
    try:
        await system.start()
        yield system
    finally:
        try:
            await system.stop()
        finally:
            await system.http.aclose()
            smtp.stop()
