"""Failures: transient → delayed retries; permanent or exhausted → DLQ with headers."""

import dataclasses
import json

import aio_pika
import pytest
from events import Envelope, Headers, PermanentError, Transaction, declare_queue, message_for
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.integration.events.support import (
    PUBLISHER,
    Recorder,
    ThingHappened,
    count_effects,
    delete_topology,
    queue_depth,
    queue_spec,
    running_consumer,
    thing_happened,
)
from tests.support.apps import wait_until


async def publish_raw(amqp_url: str, exchange: str, message: aio_pika.Message, key: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        ex = await channel.get_exchange(exchange)
        await ex.publish(message, key)


async def publish_event(amqp_url: str, exchange: str, n: int = 1) -> list[Envelope]:
    envelopes = [Envelope.wrap(thing_happened()) for _ in range(n)]
    for envelope in envelopes:
        await publish_raw(
            amqp_url, exchange, message_for(envelope, user_id=PUBLISHER), envelope.type
        )
    return envelopes


async def get_dead_letter(amqp_url: str, queue: str) -> aio_pika.abc.AbstractIncomingMessage:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        q = await channel.declare_queue(queue, passive=True)
        message = await q.get(timeout=5)
        await message.ack()
        return message


async def test_transient_failures_are_retried_with_the_configured_delays(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], spec
) -> None:
    handler = Recorder(fail_times=3)  # spec delays: 0.2 s, 0.4 s, 0.8 s
    async with running_consumer(amqp_url, spec, sessions, handler):
        await publish_event(amqp_url, spec.exchange)
        await wait_until(lambda: _effects(sessions, 1), timeout=15)

    gaps = [b - a for a, b in zip(handler.calls, handler.calls[1:], strict=False)]
    assert len(handler.calls) == 4
    for gap, delay in zip(gaps, spec.retry_delays, strict=True):
        # TTL expiry is checked at the head of the queue, so it is never early
        # and, on an idle broker, late by well under half a second.
        assert delay - 0.05 <= gap <= delay + 0.5, (gaps, spec.retry_delays)
    assert await queue_depth(amqp_url, spec.dead_letter_queue) == 0


async def test_always_failing_message_is_dead_lettered_while_others_flow(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], spec
) -> None:
    poison = thing_happened()

    class FailsForPoison(Recorder):
        async def __call__(self, event: ThingHappened, tx: Transaction) -> None:
            if event.thing_id == poison.thing_id:
                raise RuntimeError("downstream refuses this one")
            await super().__call__(event, tx)

    handler = FailsForPoison()
    async with running_consumer(amqp_url, spec, sessions, handler):
        envelope = Envelope.wrap(poison)
        await publish_raw(
            amqp_url, spec.exchange, message_for(envelope, user_id=PUBLISHER), envelope.type
        )
        await publish_event(amqp_url, spec.exchange, n=5)
        # The good ones do not wait behind the failing one's retries.
        await wait_until(lambda: _effects(sessions, 5), timeout=5)
        await wait_until(lambda: _depth(amqp_url, spec.dead_letter_queue, 1), timeout=15)

    dead = await get_dead_letter(amqp_url, spec.dead_letter_queue)
    headers = dead.headers
    assert dead.message_id == str(envelope.id)
    assert headers[Headers.DEAD_LETTER_REASON] == "retries-exhausted"
    assert headers[Headers.EXCEPTION] == "RuntimeError"
    assert "downstream refuses" in str(headers[Headers.EXCEPTION_MESSAGE])
    assert headers[Headers.ORIGINAL_QUEUE] == spec.name
    assert headers[Headers.ORIGINAL_ROUTING_KEY] == ThingHappened.TYPE
    assert headers[Headers.ATTEMPTS] == spec.max_retries + 1
    assert json.loads(dead.body)["id"] == str(envelope.id)


@pytest.mark.parametrize(
    ("body", "message_type", "expected"),
    [
        (b"{not json", ThingHappened.TYPE, "MalformedMessage"),
        (b'{"id": "not-a-uuid"}', ThingHappened.TYPE, "MalformedMessage"),
        (None, "thing.happened.v9", "UnknownEventType"),
        (b"missing-data", ThingHappened.TYPE, "MalformedMessage"),
    ],
)
async def test_message_that_can_never_succeed_goes_to_dlq_at_once(
    amqp_url: str,
    sessions: async_sessionmaker[AsyncSession],
    spec,
    body: bytes | None,
    message_type: str,
    expected: str,
) -> None:
    handler = Recorder()
    if body is None:  # a well-formed envelope of a type/version nobody registered
        envelope = Envelope.wrap(thing_happened())
        data = json.loads(envelope.model_dump_json())
        data["type"], data["version"] = message_type.removesuffix(".v9"), 1
        if message_type.endswith(".v9"):
            data["version"] = 9
        body = json.dumps(data).encode()
    elif body == b"missing-data":  # right type, data violating the schema
        envelope = Envelope.wrap(thing_happened())
        data = json.loads(envelope.model_dump_json())
        del data["data"]["thing_id"]
        body = json.dumps(data).encode()
    async with running_consumer(amqp_url, spec, sessions, handler):
        message = aio_pika.Message(
            body=body,
            content_type="application/json",
            type=ThingHappened.TYPE,  # properties in order: only the body is wrong
            user_id=PUBLISHER,
        )
        await publish_raw(amqp_url, spec.exchange, message, ThingHappened.TYPE)
        await wait_until(lambda: _depth(amqp_url, spec.dead_letter_queue, 1), timeout=5)
    dead = await get_dead_letter(amqp_url, spec.dead_letter_queue)
    assert dead.headers[Headers.DEAD_LETTER_REASON] == "permanent-error"
    assert dead.headers[Headers.EXCEPTION] == expected
    assert dead.headers[Headers.ATTEMPTS] == 1
    assert handler.calls == []


async def test_handler_raising_permanent_error_is_dead_lettered_without_retries(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], spec
) -> None:
    handler = Recorder(fail_times=100, fail_with=PermanentError)
    async with running_consumer(amqp_url, spec, sessions, handler):
        await publish_event(amqp_url, spec.exchange)
        await wait_until(lambda: _depth(amqp_url, spec.dead_letter_queue, 1), timeout=5)
    assert len(handler.calls) == 1


async def test_message_that_keeps_crashing_its_consumer_hits_the_delivery_limit(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], unique: str
) -> None:
    """A consumer that dies mid-message (here: returns it unacked) cannot loop forever."""

    spec = dataclasses.replace(queue_spec(unique), delivery_limit=3)
    connection = await aio_pika.connect(amqp_url)
    try:
        async with connection:
            channel = await connection.channel()
            queue = await declare_queue(channel, spec)
            await publish_event(amqp_url, spec.exchange)
            for _ in range(spec.delivery_limit + 1):
                message = await queue.get(timeout=5)
                await message.nack(requeue=True)  # what a crash does, as far as the broker sees
            await wait_until(lambda: _depth(amqp_url, spec.dead_letter_queue, 1), timeout=5)
            assert await queue_depth(amqp_url, spec.name) == 0
    finally:
        await delete_topology(amqp_url, spec)


async def _effects(sessions: async_sessionmaker[AsyncSession], n: int) -> bool:
    return await count_effects(sessions) >= n


async def _depth(amqp_url: str, queue: str, n: int) -> bool:
    return await queue_depth(amqp_url, queue) >= n
