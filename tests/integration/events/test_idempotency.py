"""At-least-once in, exactly-once effect: the inbox absorbs every duplicate."""

import asyncio

import aio_pika
from events import AmqpPublisher, Envelope, message_for
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.integration.events.support import (
    PUBLISHER,
    Recorder,
    consumed,
    count_effects,
    emit,
    relay,
    running_consumer,
    running_publisher,
    thing_happened,
)
from tests.support.apps import wait_until


class CrashAfterPublish:
    """A relay's publisher that dies right after the broker confirmed: the row is
    never marked sent, exactly as if the process were killed at that moment."""

    def __init__(self, inner: AmqpPublisher) -> None:
        self.inner = inner

    @property
    def user_id(self) -> str | None:
        return self.inner.user_id

    async def publish(self, routing_key: str, message: aio_pika.Message) -> None:
        await self.inner.publish(routing_key, message)
        raise RuntimeError("relay process died before marking the row sent")


async def test_relay_dying_after_publish_delivers_twice_but_effect_happens_once(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], spec
) -> None:
    handler = Recorder()
    async with (
        running_consumer(amqp_url, spec, sessions, handler),
        running_publisher(amqp_url, spec.exchange) as publisher,
    ):
        await emit(sessions, thing_happened())

        crashing = relay(sessions, CrashAfterPublish(publisher))
        try:
            await crashing.relay_once()
        except RuntimeError:
            pass
        else:
            raise AssertionError("the crash was not simulated")

        result = await relay(sessions, publisher).relay_once()
        assert result.published == 1, "the unmarked row is published again"

        await wait_until(lambda: _at_least(handler, 1))
        assert await count_effects(sessions) == 1
        # Both copies reached the consumer; the second was skipped by the inbox.
        await wait_until(lambda: _consumed_twice(spec))


async def test_same_event_delivered_twice_concurrently_has_one_effect(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], spec
) -> None:
    handler = Recorder()
    async with running_consumer(amqp_url, spec, sessions, handler, concurrency=8):
        envelope = Envelope.wrap(thing_happened())
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.get_exchange(spec.exchange)
            # Ten copies at once: several are in flight together on 8 workers.
            await asyncio.gather(
                *(
                    exchange.publish(message_for(envelope, user_id=PUBLISHER), envelope.type)
                    for _ in range(10)
                )
            )
        await wait_until(lambda: _consumed(spec, 10))
        assert await count_effects(sessions) == 1


async def _at_least(handler: Recorder, n: int) -> bool:
    return len(handler.calls) >= n


async def _consumed(spec, n: int) -> bool:  # type: ignore[no-untyped-def]
    return consumed(spec, "handled") + consumed(spec, "duplicate") >= n


async def _consumed_twice(spec) -> bool:  # type: ignore[no-untyped-def]
    return await _consumed(spec, 2)
