"""Broker topology as data: hashable value objects, declared idempotently.

For a consuming service ``svc`` the queue ``svc.events`` (quorum) is bound to the
``events`` topic exchange with exactly the keys it handles. Each such queue owns a
direct exchange ``svc.events.dlx`` that routes three ways:

    key ``svc.events``            → ``svc.events``          (retries coming back)
    key ``svc.events.retry.<n>``  → ``svc.events.retry.<n>`` (TTL n; dead-letters back)
    key ``svc.events.dlq``        → ``svc.events.dlq``       (dead letters)

Delayed retries therefore need no broker plugin, and every name a service touches
starts with its own prefix, which keeps its permissions narrow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from pamqp.common import FieldTable

DEFAULT_EXCHANGE = "events"
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (1.0, 5.0, 30.0)
# RabbitMQ 3.10 has no default delivery limit (4.x defaults to 20): without one,
# a message that crashes its consumer would be redelivered forever.
DEFAULT_DELIVERY_LIMIT = 20


@dataclass(frozen=True, slots=True)
class ConsumerQueue:
    service: str
    bindings: frozenset[str]
    exchange: str = DEFAULT_EXCHANGE
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT

    @property
    def name(self) -> str:
        return f"{self.service}.events"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.name}.dlx"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.name}.dlq"

    def retry_queue(self, attempt: int) -> str:
        """The retry queue for the ``attempt``-th retry (1-based)."""
        return f"{self.name}.retry.{_ms(self.retry_delays[attempt - 1])}ms"

    @property
    def max_retries(self) -> int:
        return len(self.retry_delays)


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """One service's place in the system: what it consumes and what it may publish."""

    name: str
    consumes: frozenset[str] = field(default_factory=frozenset)
    publishes: frozenset[str] = field(default_factory=frozenset)

    def queue(self, **overrides: object) -> ConsumerQueue:
        return ConsumerQueue(service=self.name, bindings=self.consumes, **overrides)  # type: ignore[arg-type]


# The one description of who consumes and publishes what; queues, bindings and
# least-privilege broker permissions are all derived from it.
SHOP_SERVICES: dict[str, ServiceSpec] = {
    spec.name: spec
    for spec in (
        ServiceSpec(
            "order",
            consumes=frozenset(
                {
                    "inventory.reserved",
                    "inventory.rejected",
                    "payment.authorized",
                    "payment.declined",
                }
            ),
            publishes=frozenset({"order.created", "order.confirmed", "order.cancelled"}),
        ),
        ServiceSpec(
            "inventory",
            consumes=frozenset({"order.created", "order.confirmed", "order.cancelled"}),
            publishes=frozenset({"inventory.reserved", "inventory.rejected", "inventory.released"}),
        ),
        ServiceSpec(
            "payment",
            consumes=frozenset({"order.created", "order.cancelled"}),
            publishes=frozenset({"payment.authorized", "payment.declined", "payment.voided"}),
        ),
        ServiceSpec(
            "email",
            consumes=frozenset({"order.created", "order.confirmed", "order.cancelled"}),
            publishes=frozenset({"email.sent"}),
        ),
    )
}


def consumed_keys(services: dict[str, ServiceSpec] = SHOP_SERVICES) -> frozenset[str]:
    """Routing keys at least one service consumes: these must never go unrouted."""
    return frozenset().union(*(spec.consumes for spec in services.values()))


async def declare_exchange(
    channel: AbstractChannel, name: str = DEFAULT_EXCHANGE
) -> AbstractExchange:
    return await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)


async def declare_queue(channel: AbstractChannel, spec: ConsumerQueue) -> AbstractQueue:
    """Declare everything ``spec`` needs; safe to call on every (re)connect."""
    events = await declare_exchange(channel, spec.exchange)
    dlx = await channel.declare_exchange(
        spec.dead_letter_exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    # Quorum queues dead-letter at-most-once unless told otherwise: a retry whose
    # TTL expired while the broker restarted would be lost. at-least-once needs
    # reject-publish overflow.
    quorum: FieldTable = {
        "x-queue-type": "quorum",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }

    # Classic, not quorum: a quorum DLQ would count every peek (nack + requeue)
    # as a delivery, and RabbitMQ 4.x drops it after 20 with no DLX to catch it.
    dlq = await channel.declare_queue(
        spec.dead_letter_queue, durable=True, arguments={"x-queue-type": "classic"}
    )
    await dlq.bind(dlx, routing_key=spec.dead_letter_queue)

    for attempt, delay in enumerate(spec.retry_delays, start=1):
        name = spec.retry_queue(attempt)
        retry = await channel.declare_queue(
            name,
            durable=True,
            arguments={
                **quorum,
                "x-message-ttl": _ms(delay),
                "x-dead-letter-exchange": spec.dead_letter_exchange,
                "x-dead-letter-routing-key": spec.name,
            },
        )
        await retry.bind(dlx, routing_key=name)

    queue = await channel.declare_queue(
        spec.name,
        durable=True,
        arguments={
            **quorum,
            "x-delivery-limit": spec.delivery_limit,
            "x-dead-letter-exchange": spec.dead_letter_exchange,
            "x-dead-letter-routing-key": spec.dead_letter_queue,
        },
    )
    await queue.bind(dlx, routing_key=spec.name)
    for key in sorted(spec.bindings):
        await queue.bind(events, routing_key=key)
    return queue


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
