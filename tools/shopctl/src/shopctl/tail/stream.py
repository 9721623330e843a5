"""Watch every event on the ``events`` exchange through a queue of our own.

The queue is server-named, exclusive and auto-deleted: it sees a copy of each
event and disappears with the connection, and no service queue is ever touched.
If the broker goes away after the first connection (a restart, a fault test),
the tail says so and reconnects; events published meanwhile are not seen.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from events import declare_exchange
from shop_contract import SHOP

from shopctl.amqp import connected
from shopctl.errors import Unreachable
from shopctl.tail.lines import TailEvent

PREFETCH = 100
RECONNECT_FIRST_DELAY = 0.5
RECONNECT_MAX_DELAY = 10.0


@dataclass
class _Progress:
    count: int | None
    seen: int = 0
    connected_once: bool = False

    @property
    def done(self) -> bool:
        return self.count is not None and self.seen >= self.count


async def tail(
    amqp_url: str,
    on_event: Callable[[TailEvent], None],
    *,
    exchange: str = SHOP.exchange,
    order_id: str | None = None,
    count: int | None = None,
    timeout: float | None = None,
    ready: asyncio.Event | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> int:
    """Call ``on_event`` for each event (of ``order_id``, if given) until ``count`` were
    seen or ``timeout`` seconds passed; returns how many were seen."""
    progress = _Progress(count)
    notice = on_notice or (lambda _: None)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            delay = RECONNECT_FIRST_DELAY
            while not progress.done:
                try:
                    await _watch(amqp_url, exchange, order_id, on_event, progress, ready)
                    if progress.done:
                        break
                    problem = "the broker closed the connection"
                except (Unreachable, ConnectionError, aio_pika.exceptions.AMQPError) as exc:
                    if not progress.connected_once:
                        raise Unreachable(f"cannot watch the broker: {exc}") from exc
                    problem = f"connection lost ({type(exc).__name__})"
                notice(f"{problem}; reconnecting in {delay:g}s (events meanwhile are missed)")
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_DELAY)
    return progress.seen


async def _watch(
    amqp_url: str,
    exchange: str,
    order_id: str | None,
    on_event: Callable[[TailEvent], None],
    progress: _Progress,
    ready: asyncio.Event | None,
) -> None:
    async with connected(amqp_url, purpose="tail") as connection:
        channel = await connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=PREFETCH)
        events = await declare_exchange(channel, exchange)
        queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
        await queue.bind(events, routing_key="#")
        progress.connected_once = True
        if ready is not None:
            ready.set()
        async with queue.iterator(no_ack=True) as messages:
            async for message in messages:
                event = _decode(message)
                if order_id is not None and event.order_id != order_id:
                    continue
                on_event(event)
                progress.seen += 1
                if progress.done:
                    return


def _decode(message: AbstractIncomingMessage) -> TailEvent:
    return TailEvent.decode(
        message.body,
        routing_key=message.routing_key or "",
        received_at=datetime.now(UTC),
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        message_type=message.type,
    )
