"""A complete consuming service: a greeting comes in, a reply goes out, exactly once."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ClassVar

from events import (
    AmqpPublisher,
    Broker,
    Event,
    EventConsumer,
    EventRegistry,
    OutboxRelay,
    ServiceSpec,
    Topology,
    Transaction,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


class Greeted(Event):
    TYPE = "greeting.sent"
    CORRELATED_BY: ClassVar[str | None] = "name"
    name: str


class Replied(Event):
    TYPE = "reply.sent"
    CORRELATED_BY: ClassVar[str | None] = "name"
    name: str
    text: str


TOPOLOGY = Topology(
    services=(
        ServiceSpec("greeter", publishes=frozenset({Greeted.TYPE})),
        ServiceSpec(
            "replier", publishes=frozenset({Replied.TYPE}), consumes=frozenset({Greeted.TYPE})
        ),
    )
)


async def on_greeted(event: Greeted, tx: Transaction) -> None:
    # Write with tx.session; what you emit is published if and only if this commits.
    tx.emit(Replied(name=event.name, text=f"Hello, {event.name}!"))


@asynccontextmanager
async def replier(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], dsn: str, *, prefix: str = ""
) -> AsyncIterator[None]:
    # amqp_url logs in as the replier's broker user: <prefix>replier.
    broker = Broker(amqp_url, name="replier")
    relay = OutboxRelay(sessions=sessions, publisher=AmqpPublisher(broker), listen_dsn=dsn)
    consumer = EventConsumer(
        broker=broker,
        queue=TOPOLOGY.queue("replier"),
        sessions=sessions,
        handlers={Greeted: on_greeted},
        registry=EventRegistry([Greeted, Replied]),
        publishers=TOPOLOGY.publishers(prefix=prefix),  # believe greetings from greeter only
    )
    await broker.start()
    await relay.start()
    try:
        yield
    finally:
        await consumer.stop()
        await relay.stop()
        await broker.stop()
