"""A tap on the ``events`` exchange: sees every event (on its own exclusive queue,
never taking from a service's queue) and can publish any of them again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from tests.support.apps import wait_until


@dataclass
class Tap:
    channel: aio_pika.abc.AbstractChannel
    exchange: aio_pika.abc.AbstractExchange
    seen: list[AbstractIncomingMessage] = field(default_factory=list)

    def of_order(self, order_id: str) -> list[AbstractIncomingMessage]:
        return [m for m in self.seen if m.correlation_id == order_id]

    def types_of(self, order_id: str) -> list[str]:
        return [m.type or "" for m in self.of_order(order_id)]

    async def wait_for(self, order_id: str, event_type: str, timeout: float = 30) -> None:
        async def seen() -> bool:
            return event_type in self.types_of(order_id)

        await wait_until(seen, timeout=timeout)

    async def republish(self, message: AbstractIncomingMessage) -> None:
        """Publish an exact copy: same body, message id, headers and publisher. The
        tap's user must be the operator, whose impersonator tag lets it keep ``user_id``."""
        copy = aio_pika.Message(
            body=message.body,
            headers=dict(message.headers or {}),
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            type=message.type,
            timestamp=message.timestamp,
            user_id=message.user_id,
        )
        await self.exchange.publish(copy, message.routing_key or "", mandatory=True)


@asynccontextmanager
async def event_tap(amqp_url: str) -> AsyncIterator[Tap]:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            "events", aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, "#")
        tap = Tap(channel, exchange)

        async def keep(message: AbstractIncomingMessage) -> None:
            tap.seen.append(message)
            await message.ack()

        await queue.consume(keep)
        yield tap
        await asyncio.sleep(0)
