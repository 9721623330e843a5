"""Helpers to put events and dead letters on a real broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID, uuid4

import aio_pika
from aio_pika.abc import AbstractChannel
from events import DeadLetterReason, Envelope, Headers, declare_exchange, declare_queue, message_for
from shop_contract import SHOP
from shop_contract.testing import order_cancelled


@asynccontextmanager
async def channel_on(url: str) -> AsyncIterator[AbstractChannel]:
    connection = await aio_pika.connect(url)
    async with connection:
        yield await connection.channel(publisher_confirms=True)


def cancelled(order_id: str | None = None) -> Envelope:
    return Envelope.wrap(order_cancelled(UUID(order_id) if order_id else uuid4(), reason="test"))


async def publish_events(url: str, envelopes: list[Envelope]) -> None:
    async with channel_on(url) as channel:
        events = await declare_exchange(channel)
        for envelope in envelopes:
            await events.publish(message_for(envelope), envelope.type)


async def declare_service_queues(url: str, *services: str) -> None:
    async with channel_on(url) as channel:
        for service in services:
            await declare_queue(channel, SHOP.queue(service))


async def dead_letter(
    url: str, service: str, envelope: Envelope, headers: dict[str, Any] | None = None
) -> str:
    """Put ``envelope`` in ``<service>.events.dlq`` the way the consumer does."""
    spec = SHOP.queue(service)
    message = message_for(envelope)
    message.headers = {
        **(message.headers or {}),
        Headers.ORIGINAL_ROUTING_KEY: envelope.type,
        Headers.DEAD_LETTER_REASON: DeadLetterReason.RETRIES_EXHAUSTED,
        Headers.EXCEPTION: "RuntimeError",
        Headers.EXCEPTION_MESSAGE: "gateway down",
        Headers.ORIGINAL_QUEUE: spec.name,
        Headers.ATTEMPTS: 4,
        Headers.RETRY_COUNT: 3,
        Headers.LAST_ERROR: "RuntimeError: gateway down",
        Headers.FAILED_AT: "2025-01-02T10:00:05+00:00",
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
