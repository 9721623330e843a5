"""Helpers to put events and dead letters on a real broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import uuid4

import aio_pika
from aio_pika.abc import AbstractChannel
from events import SHOP_SERVICES, Envelope, OrderCancelled, OutboundMessage, declare_queue
from events.publisher import to_amqp
from events.topology import declare_exchange


@asynccontextmanager
async def channel_on(url: str) -> AsyncIterator[AbstractChannel]:
    connection = await aio_pika.connect(url)
    async with connection:
        yield await connection.channel(publisher_confirms=True)


def cancelled(order_id: str | None = None) -> Envelope:
    order = order_id or str(uuid4())
    return Envelope.wrap(
        OrderCancelled(order_id=order, customer_id="c1", email="a@example.com", reason="test")
    )


async def publish_events(url: str, envelopes: list[Envelope]) -> None:
    async with channel_on(url) as channel:
        events = await declare_exchange(channel)
        for envelope in envelopes:
            message = OutboundMessage.from_envelope(envelope)
            await events.publish(to_amqp(message), message.routing_key)


async def declare_service_queues(url: str, *services: str) -> None:
    async with channel_on(url) as channel:
        for service in services:
            await declare_queue(channel, SHOP_SERVICES[service].queue())


async def dead_letter(
    url: str, service: str, envelope: Envelope, headers: dict[str, Any] | None = None
) -> str:
    """Put ``envelope`` in ``<service>.events.dlq`` the way the consumer does."""
    spec = SHOP_SERVICES[service].queue()
    message = to_amqp(OutboundMessage.from_envelope(envelope))
    message.headers = {
        **(message.headers or {}),
        "x-original-routing-key": envelope.type,
        "x-dead-letter-reason": "retries-exhausted",
        "x-exception": "RuntimeError",
        "x-exception-message": "gateway down",
        "x-original-queue": spec.name,
        "x-attempts": 4,
        "x-retry-count": 3,
        "x-last-error": "RuntimeError: gateway down",
        "x-failed-at": "2025-01-02T10:00:05+00:00",
        **(headers or {}),
    }
    async with channel_on(url) as channel:
        dlx = await channel.get_exchange(spec.dead_letter_exchange)
        await dlx.publish(message, spec.dead_letter_queue, mandatory=True)
    return str(envelope.id)


async def drain(url: str, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Take every message out of ``queue`` (acked)."""
    taken = []
    async with channel_on(url) as channel:
        source = await channel.declare_queue(queue, passive=True)
        while (message := await source.get(no_ack=True, fail=False)) is not None:
            taken.append(message)
    return taken


async def message_count(url: str, queue: str) -> int:
    async with channel_on(url) as channel:
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0
