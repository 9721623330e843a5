"""A tiny service used to exercise the events library against real servers.

Its handler records an "effect" row per event in the same transaction as the
inbox claim, so tests can count effects exactly.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import ClassVar
from uuid import UUID

import aio_pika
from events import (
    AmqpPublisher,
    Broker,
    ConsumerQueue,
    Event,
    EventConsumer,
    EventRegistry,
    OutboxRelay,
    Publisher,
    Transaction,
    create_messaging_tables,
    transaction,
)
from prometheus_client import REGISTRY as METRICS
from sqlalchemy import Column, MetaData, Table, Text, func, select
from sqlalchemy.dialects.postgresql import UUID as SqlUUID
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


class ThingHappened(Event):
    """The tests' own event: the library is tested without anybody's business events."""

    TYPE = "thing.happened"
    CORRELATED_BY: ClassVar[str | None] = "thing_id"
    thing_id: UUID
    note: str = ""


class ThingLost(Event):
    """Bound on the tests' queues too, but published by a user nobody logs in as: only a
    forger (or a mislabelled message) can bring one."""

    TYPE = "thing.lost"
    CORRELATED_BY: ClassVar[str | None] = "thing_id"
    thing_id: UUID
    note: str = ""


REGISTRY = EventRegistry([ThingHappened, ThingLost])
# Who may publish what: the tests connect as guest; thing.lost belongs to nobody here.
PUBLISHER = "guest"
PUBLISHERS = {ThingHappened.TYPE: PUBLISHER, ThingLost.TYPE: "lost-and-found"}


def thing_happened(thing_id: UUID | None = None, note: str = "") -> ThingHappened:
    return ThingHappened(thing_id=thing_id or uuid.uuid4(), note=note)


async def emit(sessions: async_sessionmaker[AsyncSession], *events: Event) -> None:
    """Stage ``events`` in one committed transaction (the outbox side of a service)."""
    async with transaction(sessions) as tx:
        for event in events:
            tx.emit(event)


effects_metadata = MetaData()
effects = Table(
    "effects",
    effects_metadata,
    Column("event_id", SqlUUID(as_uuid=True), nullable=False),  # no unique: count duplicates
    Column("thing_id", Text, nullable=False),
)


async def make_engine(dsn: str) -> AsyncEngine:
    engine = create_async_engine(dsn.replace("postgresql://", "postgresql+asyncpg://"))
    async with engine.begin() as conn:
        await conn.run_sync(create_messaging_tables)
        await conn.run_sync(effects_metadata.create_all)
    return engine


async def count_effects(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(effects))).scalar_one())


@dataclass
class Recorder:
    """Handler that records an effect, optionally failing first."""

    fail_times: int = 0
    fail_with: type[Exception] = RuntimeError
    block: asyncio.Event | None = None
    calls: list[float] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, event: ThingHappened | ThingLost, tx: Transaction) -> None:
        self.calls.append(asyncio.get_running_loop().time())
        self.started.set()
        if self.block is not None:
            await self.block.wait()
        if len(self.calls) <= self.fail_times:
            raise self.fail_with(f"failure {len(self.calls)}")
        assert tx.caused_by is not None
        await tx.session.execute(
            effects.insert().values(event_id=tx.caused_by.id, thing_id=str(event.thing_id))
        )


def queue_spec(unique: str, delays: tuple[float, ...] = (0.2, 0.4, 0.8)) -> ConsumerQueue:
    return ConsumerQueue(
        service=f"test-{unique}",
        bindings=frozenset({ThingHappened.TYPE, ThingLost.TYPE}),
        exchange=f"events-{unique}",
        retry_delays=delays,
    )


@asynccontextmanager
async def running_consumer(
    amqp_url: str,
    spec: ConsumerQueue,
    sessions: async_sessionmaker[AsyncSession],
    handler: Recorder,
    **kwargs: object,
) -> AsyncIterator[tuple[Broker, EventConsumer]]:
    broker = Broker(amqp_url, name=f"consumer-{spec.service}")
    consumer = EventConsumer(
        broker=broker,
        queue=spec,
        sessions=sessions,
        handlers={ThingHappened: handler, ThingLost: handler},
        registry=REGISTRY,
        publishers=PUBLISHERS,
        **kwargs,  # type: ignore[arg-type]
    )
    await broker.start()
    await broker.wait_ready(10)
    try:
        yield broker, consumer
    finally:
        await consumer.stop()
        await broker.stop()


@asynccontextmanager
async def running_publisher(amqp_url: str, exchange: str) -> AsyncIterator[AmqpPublisher]:
    broker = Broker(amqp_url, name="test-publisher")
    publisher = AmqpPublisher(broker, exchange=exchange)
    await broker.start()
    await broker.wait_ready(10)
    try:
        yield publisher
    finally:
        await broker.stop()


def relay(
    sessions: async_sessionmaker[AsyncSession], publisher: Publisher, *, poll_interval: float = 1.0
) -> OutboxRelay:
    return OutboxRelay(sessions=sessions, publisher=publisher, poll_interval=poll_interval)


async def queue_depth(amqp_url: str, name: str) -> int:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        return int(queue.declaration_result.message_count or 0)


async def consumer_count(amqp_url: str, name: str) -> int:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        return int(queue.declaration_result.consumer_count or 0)


async def delete_topology(amqp_url: str, spec: ConsumerQueue) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        names = [spec.name, spec.dead_letter_queue] + [
            spec.retry_queue(i) for i in range(1, spec.max_retries + 1)
        ]
        for name in names:
            await channel.queue_delete(name)
        await channel.exchange_delete(spec.dead_letter_exchange)
        await channel.exchange_delete(spec.exchange)


def consumed(spec: ConsumerQueue, outcome: str, event_type: str = ThingHappened.TYPE) -> int:
    """How many deliveries of ``spec``'s queue ended with ``outcome`` (from /metrics)."""
    labels = {"queue": spec.name, "type": event_type, "outcome": outcome}
    return int(METRICS.get_sample_value("events_consumed_total", labels) or 0)
