"""Batched consumption: many deliveries, one transaction and one ack, and still each
event handled exactly once; a failing event never holds back the rest of its batch."""

from __future__ import annotations

from collections.abc import Sequence

import aio_pika
from events import ConsumerQueue, Envelope, Event, Transaction, declare_queue, message_for
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.integration.events.support import (
    PUBLISHER,
    Recorder,
    ThingHappened,
    count_effects,
    effects,
    queue_depth,
    running_consumer,
    thing_happened,
)
from tests.support.apps import wait_until


async def publish_before_consumers(
    amqp_url: str, spec: ConsumerQueue, envelopes: Sequence[Envelope]
) -> None:
    """Declare the queue and fill it first, so the consumer meets a backlog: the case
    batching is for (a burst drained at the service's pace)."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await declare_queue(channel, spec)
        exchange = await channel.get_exchange(spec.exchange)
        for envelope in envelopes:
            await exchange.publish(message_for(envelope, user_id=PUBLISHER), envelope.type)


class SessionCounter(Recorder):
    """Records which database transaction (session) handled each event."""

    def __init__(self, poison: ThingHappened | None = None) -> None:
        super().__init__()
        self.sessions: list[int] = []
        self.poison = poison

    async def __call__(self, event: ThingHappened, tx: Transaction) -> None:  # type: ignore[override]
        if self.poison is not None and event.thing_id == self.poison.thing_id:
            raise RuntimeError("downstream refuses this one")
        self.sessions.append(id(tx.session))
        await super().__call__(event, tx)


async def distinct_effects(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        query = select(func.count(func.distinct(effects.c.event_id)))
        return int((await session.execute(query)).scalar_one())


async def test_a_backlog_is_handled_in_batches_each_event_once(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], spec: ConsumerQueue
) -> None:
    envelopes = [Envelope.wrap(thing_happened()) for _ in range(100)]
    await publish_before_consumers(amqp_url, spec, envelopes)
    handler = SessionCounter()

    async with running_consumer(amqp_url, spec, sessions, handler, concurrency=1, batch_size=25):
        await wait_until(lambda: _at_least(sessions, 100), timeout=20)

    assert await count_effects(sessions) == 100
    assert await distinct_effects(sessions) == 100
    # 100 events, batches of at most 25: at least 4 transactions, far fewer than 100.
    assert 4 <= len(set(handler.sessions)) <= 50, len(set(handler.sessions))
    assert await queue_depth(amqp_url, spec.name) == 0


async def test_a_failing_event_does_not_hold_back_its_batch(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], spec: ConsumerQueue
) -> None:
    poison = thing_happened(note="poison")
    events = (
        [thing_happened() for _ in range(20)] + [poison] + [thing_happened() for _ in range(19)]
    )
    await publish_before_consumers(amqp_url, spec, [Envelope.wrap(e) for e in events])
    handler = SessionCounter(poison=poison)

    async with running_consumer(amqp_url, spec, sessions, handler, concurrency=1, batch_size=40):
        await wait_until(lambda: _at_least(sessions, 39), timeout=20)
        # The poison alone goes round the retry queues (0.2 + 0.4 + 0.8 s), then to the DLQ.
        await wait_until(lambda: _depth_at_least(amqp_url, spec.dead_letter_queue, 1), timeout=20)

    assert await count_effects(sessions) == 39
    assert await distinct_effects(sessions) == 39
    assert await queue_depth(amqp_url, spec.dead_letter_queue) == 1
    # The poison is taken out and the other 39 go again together: a few
    # transactions, not one each.
    assert len(set(handler.sessions)) <= 5, len(set(handler.sessions))


async def test_an_event_delivered_twice_in_one_batch_is_handled_once(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], spec: ConsumerQueue
) -> None:
    twice = Envelope.wrap(thing_happened())
    others = [Envelope.wrap(thing_happened()) for _ in range(5)]
    await publish_before_consumers(amqp_url, spec, [twice, *others, twice])
    handler = SessionCounter()

    async with running_consumer(amqp_url, spec, sessions, handler, concurrency=1, batch_size=10):
        await wait_until(lambda: _at_least(sessions, 6), timeout=20)
        await wait_until(lambda: _depth_is(amqp_url, spec.name, 0), timeout=20)

    assert await count_effects(sessions) == 6
    assert len(handler.sessions) == 6


async def test_prepare_sees_only_the_new_events_inside_the_batch_transaction(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], spec: ConsumerQueue
) -> None:
    """``prepare`` (a service's row locks) runs in the batch's own transaction, before
    the handlers, with the events not handled before: none twice, no old ones."""
    old = Envelope.wrap(thing_happened())
    await publish_before_consumers(amqp_url, spec, [old])
    async with running_consumer(amqp_url, spec, sessions, Recorder(), concurrency=1):
        await wait_until(lambda: _at_least(sessions, 1), timeout=20)

    fresh = [Envelope.wrap(thing_happened()) for _ in range(8)]
    await publish_before_consumers(amqp_url, spec, [old, *fresh, fresh[0]])
    prepared: list[tuple[int, list[Event]]] = []
    handler = SessionCounter()

    async def prepare(session: AsyncSession, batch: Sequence[Event]) -> None:
        prepared.append((id(session), list(batch)))

    async with running_consumer(
        amqp_url, spec, sessions, handler, concurrency=1, batch_size=20, prepare=prepare
    ):
        await wait_until(lambda: _at_least(sessions, 9), timeout=20)
        await wait_until(lambda: _depth_is(amqp_url, spec.name, 0), timeout=20)

    seen = [str(event.thing_id) for _, batch in prepared for event in batch]  # type: ignore[attr-defined]
    assert len(seen) == len(set(seen)) >= 2, seen  # a real batch; nobody twice
    assert set(seen) <= {str(e.data["thing_id"]) for e in fresh}  # never the old one
    # The handlers of a batch ran in the transaction prepare had seen.
    assert {session for session, _ in prepared} <= set(handler.sessions)
    assert await count_effects(sessions) == 9


async def _at_least(sessions: async_sessionmaker[AsyncSession], n: int) -> bool:
    return await count_effects(sessions) >= n


async def _depth_at_least(amqp_url: str, queue: str, n: int) -> bool:
    return await queue_depth(amqp_url, queue) >= n


async def _depth_is(amqp_url: str, queue: str, n: int) -> bool:
    return await queue_depth(amqp_url, queue) == n
