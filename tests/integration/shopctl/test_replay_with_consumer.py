"""A real consumer dead-letters an event; dlq replay brings it back and it is handled."""

from collections.abc import AsyncIterator

import pytest
from events import Envelope, message_for
from shopctl.amqp import connected
from shopctl.dlq import queues
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import NewDatabase
from tests.integration.events.support import (
    PUBLISHER,
    Recorder,
    count_effects,
    delete_topology,
    make_engine,
    queue_spec,
    running_consumer,
    thing_happened,
)
from tests.integration.shopctl.support import channel_on, message_count
from tests.support.apps import wait_until

pytestmark = pytest.mark.timeout(45)


@pytest.fixture
async def sessions(new_database: NewDatabase) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = await make_engine(await new_database("shopctl"))
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


async def test_replay_gives_a_dead_letter_a_fresh_retry_budget(
    amqp_url: str, unique: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    spec = queue_spec(unique, delays=(0.05,))  # one retry, then the DLQ
    handler = Recorder(fail_times=2)  # the first delivery and its retry fail
    envelope = Envelope.wrap(thing_happened())
    try:
        async with running_consumer(amqp_url, spec, sessions, handler):
            async with channel_on(amqp_url) as channel:
                exchange = await channel.get_exchange(spec.exchange)
                await exchange.publish(message_for(envelope, user_id=PUBLISHER), envelope.type)

            async def dead_lettered() -> bool:
                return await message_count(amqp_url, spec.dead_letter_queue) == 1

            await wait_until(dead_lettered, timeout=15)
            async with connected(amqp_url, purpose="test") as connection:
                summary = await queues.summarize(connection, spec.dead_letter_queue)
                (letter,) = await queues.peek(connection, spec.dead_letter_queue)
                result = await queues.replay(
                    connection, spec.dead_letter_queue, as_user=PUBLISHER, inbox_retention=None
                )

            async def handled() -> bool:
                return await count_effects(sessions) == 1

            await wait_until(handled, timeout=15)
    finally:
        await delete_topology(amqp_url, spec)

    assert [(g.exception, g.reason, g.count) for g in summary.groups] == [
        ("RuntimeError", "retries-exhausted", 1)
    ]
    assert letter.message_id == str(envelope.id)
    assert letter.retry_count == 1
    assert letter.attempts == 2
    assert letter.original_queue == spec.name
    assert letter.order_id == envelope.correlation_id
    assert result.replayed == (str(envelope.id),)
    assert len(handler.calls) == 3  # handled on the first try after the replay
