"""Outbox → relay → broker → inbox consumer, on the real servers."""

import asyncio
import uuid

from events import transaction
from events._outbox import RelayResult
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.integration.events.support import (
    Recorder,
    ThingHappened,
    count_effects,
    emit,
    relay,
    running_consumer,
    running_publisher,
    thing_happened,
)
from tests.support.apps import wait_until


async def test_committed_event_is_published_and_handled_once_with_two_relays(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], spec
) -> None:
    handler = Recorder()
    async with (
        running_consumer(amqp_url, spec, sessions, handler),
        running_publisher(amqp_url, spec.exchange) as publisher,
    ):
        await emit(sessions, *(thing_happened() for _ in range(20)))
        relays = [relay(sessions, publisher, poll_interval=0.1) for _ in range(2)]
        for r in relays:
            await r.start()
        try:
            await wait_until(lambda: _equals(count_effects(sessions), 20))
            await asyncio.sleep(0.3)  # give a wrongly-duplicated delivery time to show up
            assert await count_effects(sessions) == 20
            assert len(handler.calls) == 20
        finally:
            for r in relays:
                await r.stop()


async def test_an_aggregates_next_event_leaves_at_once_not_at_the_next_poll(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], spec
) -> None:
    # Three events of one aggregate: only the oldest unsent is eligible, so each
    # of the next two becomes eligible only when the one before is marked sent. No
    # LISTEN and a one-minute poll: only the relay's own "an aggregate in this
    # batch has a next event" check can make them leave within the test's time.
    handler = Recorder()
    thing_id = uuid.uuid4()
    async with (
        running_consumer(amqp_url, spec, sessions, handler),
        running_publisher(amqp_url, spec.exchange) as publisher,
    ):
        await emit(sessions, *(thing_happened(thing_id) for _ in range(3)))
        unhurried = relay(sessions, publisher, poll_interval=60)
        await unhurried.start()
        try:
            await wait_until(lambda: _equals(count_effects(sessions), 3), timeout=10)
        finally:
            await unhurried.stop()


async def test_rolled_back_event_is_never_published(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], spec
) -> None:
    handler = Recorder()
    async with (
        running_consumer(amqp_url, spec, sessions, handler),
        running_publisher(amqp_url, spec.exchange) as publisher,
    ):
        try:
            async with transaction(sessions) as tx:
                tx.emit(thing_happened())
                raise RuntimeError("the caller's transaction fails")
        except RuntimeError:
            pass
        result = await relay(sessions, publisher).relay_once()
        assert result.published == 0
        assert handler.calls == []


async def _equals(value, expected) -> bool:  # type: ignore[no-untyped-def]
    return (await value) == expected


async def test_unroutable_required_event_stays_in_the_outbox_until_a_queue_exists(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], spec
) -> None:
    from events import AmqpPublisher, Broker

    broker = Broker(amqp_url, name="strict-publisher")
    strict = AmqpPublisher(broker, exchange=spec.exchange, must_route={ThingHappened.TYPE})
    lenient = AmqpPublisher(broker, exchange=spec.exchange, must_route=set())
    await broker.start()
    await broker.wait_ready(10)
    try:
        await emit(sessions, thing_happened())
        # No queue is bound yet: the broker returns it, and the row stays unsent.
        assert await relay(sessions, strict).relay_once() == RelayResult(0, 1)
        handler = Recorder()
        async with running_consumer(amqp_url, spec, sessions, handler):
            assert await relay(sessions, strict).relay_once() == RelayResult(1, 0)
            await wait_until(lambda: _equals(count_effects(sessions), 1))
        # A notification nobody must receive is confirmed even when unrouted.
        await emit(sessions, thing_happened())
        await delete_queue(amqp_url, spec.name)
        assert await relay(sessions, lenient).relay_once() == RelayResult(1, 0)
    finally:
        await broker.stop()


async def delete_queue(amqp_url: str, name: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(name)
