"""Declaring the topology on a channel: idempotent, safe on every (re)connect."""

from __future__ import annotations

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from aiormq.exceptions import ChannelNotFoundEntity
from pamqp.common import FieldTable

from events._topology import DEFAULT_EXCHANGE, ConsumerQueue, to_ms

log = structlog.get_logger("events.declare")


async def declare_exchange(
    channel: AbstractChannel, name: str = DEFAULT_EXCHANGE
) -> AbstractExchange:
    return await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)


async def declare_queue(channel: AbstractChannel, spec: ConsumerQueue) -> AbstractQueue:
    """Declare everything ``spec`` needs and return its main queue.

    If the dead-letter queue's node is down, ``channel`` comes back closed: the
    caller carries on with a new one."""
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
    if spec.replicas is not None:
        quorum["x-quorum-initial-group-size"] = spec.replicas

    for attempt, delay in enumerate(spec.retry_delays, start=1):
        name = spec.retry_queue(attempt)
        retry = await channel.declare_queue(
            name,
            durable=True,
            arguments={
                **quorum,
                "x-message-ttl": to_ms(delay),
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

    # Classic, not quorum: a quorum DLQ would count every peek (nack + requeue)
    # as a delivery, and RabbitMQ 4.x drops it after 20 with no DLX to catch it.
    # A classic queue lives on one node of a cluster: while that node is down the
    # declaration fails (and closes the channel), yet the queue and its binding
    # exist, and the quorum queues keep their dead letters until it is back. So it
    # is declared last and its absence does not stop the consumer.
    try:
        dlq = await channel.declare_queue(
            spec.dead_letter_queue, durable=True, arguments={"x-queue-type": "classic"}
        )
    except ChannelNotFoundEntity as exc:
        log.warning(
            "queue.dead_letter_queue_unavailable", queue=spec.dead_letter_queue, error=str(exc)
        )
        return queue
    await dlq.bind(dlx, routing_key=spec.dead_letter_queue)
    return queue
