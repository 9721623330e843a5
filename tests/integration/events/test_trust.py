"""A consumer believes an event only from its owner, and no header can stall it.

Routing key, AMQP ``type`` and the type in the body must agree, and the broker
must vouch (``user_id``) that the owner's user published it. Anything else is
dead-lettered at once, marked forged, and changes nothing.
"""

import json
from typing import Any

import aio_pika
import pytest
from events import ConsumerQueue, DeadLetterReason, Envelope, Headers, message_for
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import BrokerUser
from tests.integration.events.support import (
    PUBLISHER,
    Recorder,
    ThingHappened,
    ThingLost,
    consumed,
    count_effects,
    queue_depth,
    running_consumer,
    thing_happened,
)
from tests.support.apps import wait_until

pytestmark = pytest.mark.timeout(60)


async def publish(amqp_url: str, exchange: str, key: str, message: aio_pika.Message) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        target = await channel.get_exchange(exchange)
        await target.publish(message, key)


async def dead_letters(amqp_url: str, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    taken = []
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        source = await channel.declare_queue(queue, passive=True)
        while (message := await source.get(no_ack=True, fail=False)) is not None:
            taken.append(message)
    return taken


def lost_body_in(envelope: Envelope) -> bytes:
    """The envelope, its type rewritten to ``thing.lost``: a forger's relabelling."""
    data = json.loads(envelope.model_dump_json())
    data["type"] = ThingLost.TYPE
    return json.dumps(data).encode()


def forgeries() -> list[tuple[str, str, dict[str, Any]]]:
    """(what, routing key, changes to the honest message's properties)."""
    return [
        ("body type differs from the key", ThingHappened.TYPE, {"body": "lost"}),
        ("AMQP type differs from the key", ThingHappened.TYPE, {"type": ThingLost.TYPE}),
        ("AMQP type is missing", ThingHappened.TYPE, {"type": None}),
        ("not the owner's user", ThingLost.TYPE, {"body": "lost", "type": ThingLost.TYPE}),
        ("no user at all", ThingHappened.TYPE, {"user_id": None}),
    ]


@pytest.mark.parametrize(("what", "key", "changes"), forgeries(), ids=[f[0] for f in forgeries()])
async def test_a_forged_event_is_dead_lettered_at_once_and_changes_nothing(
    amqp_url: str,
    sessions: async_sessionmaker[AsyncSession],
    spec: ConsumerQueue,
    what: str,
    key: str,
    changes: dict[str, Any],
) -> None:
    envelope = Envelope.wrap(thing_happened())
    message = message_for(envelope, user_id=PUBLISHER)
    if changes.pop("body", None) == "lost":
        message.body = lost_body_in(envelope)
    for name, value in changes.items():
        setattr(message, name, value)
    handler = Recorder()
    async with running_consumer(amqp_url, spec, sessions, handler):
        await publish(amqp_url, spec.exchange, key, message)
        await wait_until(lambda: _depth(amqp_url, spec.dead_letter_queue, 1), timeout=10)

    assert handler.calls == [], f"{what}: the handler ran"
    assert await count_effects(sessions) == 0
    (letter,) = await dead_letters(amqp_url, spec.dead_letter_queue)
    assert letter.headers[Headers.DEAD_LETTER_REASON] == DeadLetterReason.FORGED
    assert letter.headers[Headers.EXCEPTION] == "ForgedMessage"
    assert letter.headers[Headers.ATTEMPTS] == 1
    assert consumed(spec, "dead_lettered", event_type=key) == 1


async def test_the_honest_message_beside_them_is_handled(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], spec: ConsumerQueue
) -> None:
    envelope = Envelope.wrap(thing_happened())
    handler = Recorder()
    async with running_consumer(amqp_url, spec, sessions, handler):
        await publish(
            amqp_url, spec.exchange, envelope.type, message_for(envelope, user_id=PUBLISHER)
        )
        await wait_until(lambda: _effects(sessions, 1), timeout=10)


@pytest.mark.parametrize("value", [-4, -1_000_000, 10**12, "3", 2.5, None, True, [1]])
async def test_a_publisher_set_retry_count_neither_stalls_nor_shortens_the_retries(
    amqp_url: str,
    sessions: async_sessionmaker[AsyncSession],
    spec: ConsumerQueue,
    value: object,
) -> None:
    """Headers read from the wire are untrusted: a direct delivery starts at attempt 1."""
    envelope = Envelope.wrap(thing_happened())
    message = message_for(envelope, user_id=PUBLISHER)
    message.headers = {**(message.headers or {}), Headers.RETRY_COUNT: value}
    handler = Recorder(fail_times=spec.max_retries)  # every retry needed, then success
    async with running_consumer(amqp_url, spec, sessions, handler):
        await publish(amqp_url, spec.exchange, envelope.type, message)
        await wait_until(lambda: _effects(sessions, 1), timeout=15)
    assert len(handler.calls) == spec.max_retries + 1
    assert await queue_depth(amqp_url, spec.dead_letter_queue) == 0


async def test_a_message_under_our_own_queue_name_not_from_us_is_forged(
    sessions: async_sessionmaker[AsyncSession],
    spec: ConsumerQueue,
    broker_user: BrokerUser,
    vhost_url: str,
    unique: str,
) -> None:
    """The way back from a retry queue (the queue's own exchange) only we may use: a copy
    there must carry our own user, or anyone could pass off a forgery as our retry."""
    envelope = Envelope.wrap(thing_happened())
    message = message_for(envelope, user_id=PUBLISHER)
    message.headers = {
        **(message.headers or {}),
        Headers.ORIGINAL_ROUTING_KEY: ThingLost.TYPE,
        Headers.ORIGINAL_USER_ID: "lost-and-found",
    }
    message.body = lost_body_in(envelope)
    message.type = ThingLost.TYPE
    handler = Recorder()
    # The consumer logs in as a user of its own; the forger (guest) can write to its DLX.
    consumer_url = await broker_user(f"t{unique}_consumer")
    async with running_consumer(consumer_url, spec, sessions, handler):
        await publish(vhost_url, spec.dead_letter_exchange, spec.name, message)
        await wait_until(lambda: _depth(vhost_url, spec.dead_letter_queue, 1), timeout=10)
    assert handler.calls == []
    (letter,) = await dead_letters(vhost_url, spec.dead_letter_queue)
    assert letter.headers[Headers.DEAD_LETTER_REASON] == DeadLetterReason.FORGED


async def test_metric_labels_never_take_publisher_controlled_values(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], spec: ConsumerQueue
) -> None:
    envelope = Envelope.wrap(thing_happened())
    message = message_for(envelope, user_id=PUBLISHER)
    message.type = "x" * 200  # would be a new time series per value
    async with running_consumer(amqp_url, spec, sessions, Recorder()):
        await publish(amqp_url, spec.exchange, envelope.type, message)
        await wait_until(lambda: _depth(amqp_url, spec.dead_letter_queue, 1), timeout=10)
    assert consumed(spec, "dead_lettered", event_type="x" * 200) == 0
    assert consumed(spec, "dead_lettered", event_type=ThingHappened.TYPE) == 1


async def _depth(amqp_url: str, queue: str, n: int) -> bool:
    return await queue_depth(amqp_url, queue) >= n


async def _effects(sessions: async_sessionmaker[AsyncSession], n: int) -> bool:
    return await count_effects(sessions) >= n
