"""Broker connections dropped, processes stopped: consumers come back, nothing is lost."""

import asyncio
import os
import signal
import subprocess
import sys
import uuid

import httpx
from events import ConsumerQueue, Envelope, OutboxRelay, Transaction, message_for
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import RABBITMQ_API
from tests.integration.events.support import (
    PUBLISHER,
    Recorder,
    ThingHappened,
    consumed,
    consumer_count,
    count_effects,
    emit,
    queue_depth,
    relay,
    running_consumer,
    running_publisher,
    thing_happened,
)
from tests.support.apps import wait_until
from tests.support.postgres import terminate_connections


async def close_connections(name: str) -> int:
    """Force-close every broker connection whose client name is ``name``.

    Same effect as ``rabbitmqctl close_all_connections``, but scoped to this test,
    so parallel tests and running services are left alone.
    """
    async with httpx.AsyncClient(base_url=RABBITMQ_API, timeout=10) as api:
        connections = (await api.get("/connections")).json()
        mine = [
            c for c in connections if c.get("client_properties", {}).get("connection_name") == name
        ]
        for connection in mine:
            await api.delete(f"/connections/{connection['name']}", headers={"X-Reason": "test"})
        return len(mine)


async def test_consumers_come_back_after_connections_are_force_closed(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], spec
) -> None:
    handler = Recorder()
    async with (
        running_consumer(amqp_url, spec, sessions, handler) as (_broker, consumer),
        running_publisher(amqp_url, spec.exchange) as publisher,
    ):
        the_relay = relay(sessions, publisher, poll_interval=0.1)
        await the_relay.start()
        try:
            await emit(sessions, *(thing_happened() for _ in range(50)))
            await wait_until(lambda: _effects(sessions, 10))

            # The management API lists a connection a moment after it opens.
            closed = 0
            while not closed:
                closed = await close_connections(f"consumer-{spec.service}")
            await close_connections("test-publisher")

            await wait_until(lambda: _consumers(amqp_url, spec.name, 1), timeout=20)
            await emit(sessions, *(thing_happened() for _ in range(50)))
            await wait_until(lambda: _effects(sessions, 100), timeout=20)
            assert await count_effects(sessions) == 100
            assert consumer.is_consuming
        finally:
            await the_relay.stop()


async def test_sigterm_mid_handler_requeues_the_message_and_never_dead_letters(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], spec
) -> None:
    dsn = str(sessions.kw["bind"].url.render_as_string(hide_password=False))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.events.consumer_process",
        amqp_url,
        dsn,
        spec.service,
        spec.exchange,
        "0.5",
        stdout=subprocess.PIPE,
        cwd=os.getcwd(),
    )
    try:
        await wait_until(lambda: _consumers(amqp_url, spec.name, 1), timeout=15)
        async with running_publisher(amqp_url, spec.exchange) as publisher:
            await emit(sessions, thing_happened())
            await relay(sessions, publisher).relay_once()
        assert process.stdout is not None
        assert (await asyncio.wait_for(process.stdout.readline(), 10)).strip() == b"started"

        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
        assert (await process.stdout.readline()).strip() == b"stopped"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert await queue_depth(amqp_url, spec.name) == 1, "the message is back in its queue"
    assert await queue_depth(amqp_url, spec.dead_letter_queue) == 0
    # And a new consumer handles it normally.
    handler = Recorder()
    async with running_consumer(amqp_url, spec, sessions, handler):
        await wait_until(lambda: _effects(sessions, 1))


async def test_a_pooled_connection_killed_while_idle_costs_no_retry(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], spec
) -> None:
    # The services keep their pooled connections without a pre-ping; the first
    # statement on one the server killed fails. The delivery must be handled on
    # a fresh connection at once, not sent round the retry queue.
    database = sessions.kw["bind"].url.database
    async with (
        running_consumer(amqp_url, spec, sessions, Recorder()),
        running_publisher(amqp_url, spec.exchange) as publisher,
    ):
        # Straight to the broker, and waited for by metrics: a relay or a count
        # on this pool would meet the dead connection first and spare the consumer.
        envelope = Envelope.wrap(thing_happened())
        await publisher.publish(envelope.type, message_for(envelope, user_id=PUBLISHER))
        await wait_until(lambda: _settled(spec, 1))
        assert await terminate_connections(database) > 0, "the pool kept no connection"

        envelope = Envelope.wrap(thing_happened())
        await publisher.publish(envelope.type, message_for(envelope, user_id=PUBLISHER))
        await wait_until(lambda: _settled(spec, 2))
    assert (consumed(spec, "handled"), consumed(spec, "retried")) == (2, 0)
    assert await count_effects(sessions) == 2


async def _settled(spec: ConsumerQueue, n: int) -> bool:
    outcomes = ("handled", "duplicate", "retried", "dead_lettered")
    return sum(consumed(spec, outcome) for outcome in outcomes) >= n


async def test_events_of_one_aggregate_leave_in_the_sequence_they_were_written(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], spec
) -> None:
    seen: list[tuple[str, int]] = []

    class RecordsSequence(Recorder):
        async def __call__(self, event: ThingHappened, tx: Transaction) -> None:
            seen.append((str(event.thing_id), int(event.note)))
            await super().__call__(event, tx)

    things = [uuid.uuid4() for _ in range(5)]
    async with (
        running_consumer(amqp_url, spec, sessions, RecordsSequence(), concurrency=1),
        running_publisher(amqp_url, spec.exchange) as publisher,
    ):
        for step in range(10):  # one transaction per step, interleaving aggregates
            await emit(sessions, *(thing_happened(thing, note=str(step)) for thing in things))
        relays = [
            OutboxRelay(sessions=sessions, publisher=publisher, poll_interval=0.05, batch_size=7)
            for _ in range(3)
        ]
        for r in relays:
            await r.start()
        try:
            await wait_until(lambda: _effects(sessions, 50), timeout=20)
        finally:
            for r in relays:
                await r.stop()
    for thing in things:
        steps = [step for tid, step in seen if tid == str(thing)]
        assert steps == sorted(steps) == list(range(10))


async def _effects(sessions: async_sessionmaker[AsyncSession], n: int) -> bool:
    return await count_effects(sessions) >= n


async def _consumers(amqp_url: str, queue: str, n: int) -> bool:
    try:
        return await consumer_count(amqp_url, queue) >= n
    except Exception:
        return False
