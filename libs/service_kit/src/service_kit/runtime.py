"""Everything a running service process holds, started and stopped in one lifespan.

Start order: database → the service's dependencies → (worker) broker, which
declares the topology and starts the consumer → relay. Stop order is the
reverse of what matters for messages: stop consuming and drain in-flight
handlers first, then the relay, then the broker, the dependencies, the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Generic

import structlog
from events import (
    AmqpPublisher,
    Broker,
    ConsumerQueue,
    EventConsumer,
    Housekeeper,
    OutboxRelay,
)

from service_kit.auth import TokenVerifier
from service_kit.database import Database
from service_kit.definition import D, Job, S, ServiceDefinition, U
from service_kit.keys import read_pem
from service_kit.settings import Role, ServiceSettings

log = structlog.get_logger("service_kit.runtime")


@dataclass
class Messaging:
    """The worker's side: broker connection, outbox relay, event consumer, and the
    housekeeping that keeps the outbox and inbox small."""

    broker: Broker
    relay: OutboxRelay
    consumer: EventConsumer | None
    housekeeper: Housekeeper

    @property
    def ready(self) -> dict[str, bool]:
        return {
            "broker": self.broker.is_ready,
            "consumers": self.consumer is None or self.consumer.is_consuming,
            "outbox_relay": self.relay.is_running,
        }


@dataclass
class Runtime(Generic[D]):
    name: str
    role: Role
    database: Database
    dependencies: D
    messaging: Messaging | None
    verifier: TokenVerifier | None  # the HTTP roles' bearer-token check

    async def readiness(self) -> dict[str, bool]:
        checks = {"database": await self.database.is_ready()}
        if self.messaging is not None:
            checks.update(self.messaging.ready)
        return checks


@asynccontextmanager
async def running(
    definition: ServiceDefinition[S, U, D], settings: S, role: Role
) -> AsyncIterator[Runtime[D]]:
    async with AsyncExitStack() as stack:
        database = Database(settings.sqlalchemy_url, pool_size=settings.db_pool_size)
        stack.push_async_callback(database.close)
        dependencies = await stack.enter_async_context(definition.dependencies(settings, database))
        verifier = await token_verifier(settings) if role in ("api", "all") else None
        messaging = None
        if role in ("worker", "all"):
            messaging = _messaging(definition, settings, database, dependencies)
            await messaging.broker.start()
            stack.push_async_callback(messaging.broker.stop)
            await messaging.relay.start()
            stack.push_async_callback(messaging.relay.stop)
            await messaging.housekeeper.start()
            stack.push_async_callback(messaging.housekeeper.stop)
            if messaging.consumer is not None:
                stack.push_async_callback(messaging.consumer.stop)
            for job in definition.jobs:
                task = asyncio.create_task(
                    _every(job, settings, database, dependencies), name=f"job:{job.name}"
                )
                stack.push_async_callback(_cancel, task)
        log.info("service.started", role=role, port=settings.port)
        try:
            yield Runtime(definition.name, role, database, dependencies, messaging, verifier)
        finally:
            log.info("service.stopping")
    log.info("service.stopped")


async def token_verifier(settings: ServiceSettings) -> TokenVerifier:
    """From the identity provider's JWKS if configured, else the public key given."""
    audience, issuer = settings.auth_audience, settings.auth_issuer
    if settings.auth_jwks_url:
        return await TokenVerifier.from_jwks(
            settings.auth_jwks_url, issuer=issuer, audience=audience
        )
    pem = read_pem(
        pem=settings.auth_public_key,
        file=settings.auth_public_key_file,
        what="key to verify bearer tokens (or AUTH_JWKS_URL)",
        variable="AUTH_PUBLIC_KEY",
    )
    return TokenVerifier.from_pem(pem, issuer=issuer, audience=audience)


def _messaging(
    definition: ServiceDefinition[S, U, D], settings: S, database: Database, dependencies: D
) -> Messaging:
    topology = definition.topology
    broker = Broker(
        settings.amqp_url, name=f"{definition.name}-service", heartbeat=settings.amqp_heartbeat
    )
    publisher = AmqpPublisher(broker, exchange=topology.exchange, must_route=topology.consumed_keys)
    relay = OutboxRelay(
        sessions=database.sessions, publisher=publisher, listen_dsn=settings.asyncpg_dsn
    )
    consumer = None
    if definition.handlers:
        consumer = EventConsumer(
            broker=broker,
            queue=ConsumerQueue(
                service=definition.name,
                bindings=definition.consumes,
                exchange=topology.exchange,
                replicas=settings.quorum_replicas,
            ),
            sessions=database.sessions,
            handlers={
                event_type: definition.handler_for(event_type, dependencies)
                for event_type in definition.handlers
            },
            registry=definition.registry,
            publishers=topology.publishers(prefix=settings.broker_user_prefix),
            concurrency=settings.consumer_concurrency,
            batch_size=settings.consumer_batch_size,
            batch_wait=settings.consumer_batch_wait,
            prepare=definition.batch_locks(),
            shutdown_grace=settings.shutdown_grace,
        )
    housekeeper = Housekeeper(
        database.sessions,
        inbox_retention=timedelta(seconds=settings.inbox_retention_seconds),
        outbox_retention=timedelta(seconds=settings.outbox_retention_seconds),
    )
    return Messaging(broker, relay, consumer, housekeeper)


async def _every(job: Job[S, D], settings: S, database: Database, dependencies: D) -> None:
    interval = job.every(settings)
    while True:
        try:
            await job.run(database, dependencies)
        except Exception as exc:  # the database may be away: the schedule lives on
            log.warning("job.failed", job=job.name, error=repr(exc))
        await asyncio.sleep(interval)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
