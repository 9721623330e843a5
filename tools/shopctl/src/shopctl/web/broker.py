"""The web view's eyes on the broker: one connection, a private tap queue, queue counts.

Like ``shopctl tail`` (whose connection helper and reconnect pacing it shares), it
reads from a server-named, exclusive, auto-delete queue of its own and never
touches a service's queue. Besides ``#`` on the ``events`` exchange, the queue is
bound to each consumer's dead-letter exchange under the keys of its retry
queues, its DLQ and its way back, so retries, dead letters and replays are seen
as they happen. Queue counts come from passive declares, as the consumers'
own watch does, so no management plugin is needed.

It runs until cancelled: a lost broker (a restart, a closed connection) is
reported and reconnected to, for ever, with growing pauses.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue
from aiormq.exceptions import ChannelNotFoundEntity
from events import Topology, declare_exchange
from shop_contract import SHOP

from shopctl.amqp import connected
from shopctl.tail.stream import PREFETCH, RECONNECT_FIRST_DELAY, RECONNECT_MAX_DELAY
from shopctl.web.depths import QueueCount, ServiceQueues, watched_queues

log = structlog.get_logger("shopctl.web")

DEFAULT_COUNT_INTERVAL = 1.0
# If the view falls behind, the broker keeps at most this many for it, dropping the oldest.
TAP_MAX_LENGTH = 10_000


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    connected: bool
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"connected": self.connected, "message": self.message}


async def watch_broker(
    amqp_url: str,
    *,
    on_message: Callable[[AbstractIncomingMessage], None],
    on_counts: Callable[[dict[str, QueueCount | None]], None],
    on_status: Callable[[BrokerStatus], None],
    count_interval: float = DEFAULT_COUNT_INTERVAL,
    topology: Topology = SHOP,
) -> None:
    watched = watched_queues(topology)
    delay = RECONNECT_FIRST_DELAY
    while True:
        try:
            async with connected(amqp_url, purpose="web") as connection:
                channel = await connection.channel(publisher_confirms=False)
                await channel.set_qos(prefetch_count=PREFETCH)
                tap = await _tap(channel, topology)
                on_status(BrokerStatus(connected=True, message="connected"))
                log.info("web.watching", exchange=topology.exchange)
                delay = RECONNECT_FIRST_DELAY
                counting = asyncio.create_task(
                    _count_forever(connection, watched, on_counts, count_interval)
                )
                try:
                    async with tap.iterator() as messages:
                        async for message in messages:
                            on_message(message)
                            await message.ack()
                finally:
                    counting.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await counting
            problem = "the broker closed the connection"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a long-running view outlives any trouble with the broker
            problem = f"broker unreachable or lost ({exc!r})"
        log.warning("web.broker_lost", problem=problem, retry_in=delay)
        on_status(
            BrokerStatus(
                connected=False,
                message=f"{problem}; reconnecting in {delay:g}s (events meanwhile are missed)",
            )
        )
        await asyncio.sleep(delay)
        delay = min(delay * 2, RECONNECT_MAX_DELAY)


async def _tap(channel: AbstractChannel, topology: Topology) -> AbstractQueue:
    queue = await channel.declare_queue(
        "", exclusive=True, auto_delete=True, arguments={"x-max-length": TAP_MAX_LENGTH}
    )
    events = await declare_exchange(channel, topology.exchange)
    await queue.bind(events, routing_key="#")
    for spec in topology.consumers:
        consumer = topology.queue(spec.name)
        # Declared as the service declares it (idempotent), so the tap can start first.
        dlx = await channel.declare_exchange(
            consumer.dead_letter_exchange, aio_pika.ExchangeType.DIRECT, durable=True
        )
        for key in (consumer.dead_letter_queue, *consumer.retry_queues, consumer.name):
            await queue.bind(dlx, routing_key=key)
    return queue


async def _count_forever(
    connection: AbstractConnection,
    watched: list[ServiceQueues],
    on_counts: Callable[[dict[str, QueueCount | None]], None],
    interval: float,
) -> None:
    counter = QueueCounter(connection)
    while not connection.is_closed:
        try:
            on_counts(await counter.count_all(watched))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the connection is going: the tap notices and reconnects
            log.debug("web.count_failed", error=repr(exc))
        await asyncio.sleep(interval)


class QueueCounter:
    """Passive declares on one channel, opened again whenever a missing queue closed it."""

    def __init__(self, connection: AbstractConnection) -> None:
        self._connection = connection
        self._channel: AbstractChannel | None = None

    async def count(self, name: str) -> QueueCount | None:
        if self._channel is None or self._channel.is_closed:
            self._channel = await self._connection.channel(publisher_confirms=False)
        try:
            declared = await self._channel.declare_queue(name, passive=True)
        except ChannelNotFoundEntity:
            return None  # the broker closed the channel with it
        result = declared.declaration_result
        return QueueCount(messages=result.message_count or 0, consumers=result.consumer_count or 0)

    async def count_all(self, watched: list[ServiceQueues]) -> dict[str, QueueCount | None]:
        counts: dict[str, QueueCount | None] = {}
        for service in watched:
            for name in service.names:
                counts[name] = await self.count(name)
                if counts[name] is None and name == service.main:
                    break
        return counts
