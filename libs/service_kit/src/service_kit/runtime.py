"""Everything a running service holds, started and stopped in one lifespan.

Start order: database → broker (declares topology, starts consumers) → relay.
Stop order is the reverse of what matters for messages: stop consuming and drain
in-flight handlers first, then the relay, then the connections.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from events import AmqpPublisher, Broker, Event, EventConsumer, Handler, OutboxRelay
from events.topology import SHOP_SERVICES, ConsumerQueue, consumed_keys
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service_kit.database import create_engine, create_sessions
from service_kit.settings import ServiceSettings

log = structlog.get_logger("service_kit.runtime")

HandlerMap = Mapping[type[Event], Handler[Any]]


@dataclass
class Runtime:
    name: str
    settings: ServiceSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    broker: Broker
    relay: OutboxRelay
    consumers: list[EventConsumer] = field(default_factory=list)
    # Service-specific resources (an SMTP sender, a payment gateway...).
    resources: dict[str, Any] = field(default_factory=dict)

    async def database_ready(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    @property
    def consuming(self) -> bool:
        return all(consumer.is_consuming for consumer in self.consumers)

    @property
    def relaying(self) -> bool:
        return self.relay.is_running


HandlersFactory = Callable[[Runtime], HandlerMap]
Hook = Callable[[Runtime], Awaitable[None]]


async def start_runtime(
    *,
    name: str,
    settings: ServiceSettings,
    handlers: HandlersFactory | None,
    queue: ConsumerQueue | None = None,
    on_start: Hook | None = None,
) -> Runtime:
    engine = create_engine(settings.sqlalchemy_url, pool_size=settings.db_pool_size)
    sessions = create_sessions(engine)
    broker = Broker(settings.amqp_url, name=f"{name}-service", heartbeat=settings.amqp_heartbeat)
    publisher = AmqpPublisher(broker, must_route=consumed_keys())
    relay = OutboxRelay(sessions=sessions, publisher=publisher, listen_dsn=settings.asyncpg_dsn)
    runtime = Runtime(name, settings, engine, sessions, broker, relay)
    if on_start is not None:
        await on_start(runtime)
    if handlers is not None:
        runtime.consumers.append(
            EventConsumer(
                broker=broker,
                queue=queue or SHOP_SERVICES[name].queue(),
                sessions=sessions,
                handlers=handlers(runtime),
                concurrency=settings.consumer_concurrency,
                shutdown_grace=settings.shutdown_grace,
            )
        )
    await broker.start()
    await relay.start()
    log.info("service.started", port=settings.port)
    return runtime


async def stop_runtime(runtime: Runtime, on_stop: Hook | None = None) -> None:
    log.info("service.stopping")
    for consumer in runtime.consumers:
        await consumer.stop()
    await runtime.relay.stop()
    await runtime.broker.stop()
    if on_stop is not None:
        await on_stop(runtime)
    await runtime.engine.dispose()
    log.info("service.stopped")
