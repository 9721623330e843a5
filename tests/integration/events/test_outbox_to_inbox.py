"""Outbox → relay → broker → inbox consumer, on the real servers."""

import asyncio

from events import add
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.integration.events.support import (
    Recorder,
    count_effects,
    order_created,
    relay,
    running_consumer,
    running_publisher,
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
        async with sessions() as session, session.begin():
            for _ in range(20):
                await add(session, order_created())
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


async def test_rolled_back_event_is_never_published(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], spec
) -> None:
    handler = Recorder()
    async with (
        running_consumer(amqp_url, spec, sessions, handler),
        running_publisher(amqp_url, spec.exchange) as publisher,
    ):
        try:
            async with sessions() as session, session.begin():
                await add(session, order_created())
                raise RuntimeError("the caller's transaction fails")
        except RuntimeError:
            pass
        result = await relay(sessions, publisher).relay_once()
        assert result.published == 0
        assert handler.calls == []


async def _equals(value, expected) -> bool:  # type: ignore[no-untyped-def]
    return (await value) == expected
