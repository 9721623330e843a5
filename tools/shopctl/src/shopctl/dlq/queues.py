"""Reading, replaying and purging dead-letter queues on the broker.

Peeking never loses a message and keeps the order. A peek takes the *whole*
queue (up to a limit) with ``basic.get``, unacked, on a channel of its own, copies
it, then hands every message back with ``basic.nack(requeue)`` one by one, oldest
first. Brokers differ on where a requeued message goes: classic queues put it
back in its old place, RabbitMQ 3.x quorum queues at the tail. Because the whole
queue is taken and returned in order, it ends up in its original order either
way. What can still move: messages dead-lettered while a peek runs (they may
land before the returned ones on a tail-requeueing queue), and, on a queue
deeper than the limit, the taken part goes behind the rest.

While held, messages are invisible to other readers. DLQs are classic queues
(see ``events.Topology``), which have no delivery limit, so peeking as often as
you like can never wear a dead letter out.

Replaying publishes a copy to ``<queue>.dlx`` with routing key ``<queue>``
(mandatory, with publisher confirms) and acks the dead letter only after the
confirm; a failed publish leaves it in the DLQ. Nothing is lost either way.
Replaying one message walks the whole queue the same way, so the rest keep
their order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue
from aio_pika.exceptions import ChannelInvalidStateError
from aiormq.exceptions import ChannelNotFoundEntity
from events import Headers

from shopctl.dlq.letters import (
    DeadLetter,
    QueueSummary,
    dead_letter_exchange,
    group,
    replay_headers,
    source_queue,
)
from shopctl.errors import QueueNotFound, ShopctlError

log = structlog.get_logger("shopctl.dlq")

DEFAULT_PEEK_LIMIT = 10_000
GET_TIMEOUT = 5.0
CONFIRM_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class QueueDepth:
    queue: str
    messages: int | None  # None: the queue does not exist


async def depth(connection: AbstractConnection, queue: str) -> QueueDepth:
    # A passive declare of a missing queue closes its channel: use a throwaway one.
    channel = await connection.channel(publisher_confirms=False)
    try:
        declared = await channel.declare_queue(queue, passive=True)
    except ChannelNotFoundEntity:
        return QueueDepth(queue, None)
    count = declared.declaration_result.message_count
    await channel.close()
    return QueueDepth(queue, count)


async def peek(
    connection: AbstractConnection,
    queue: str,
    *,
    limit: int = DEFAULT_PEEK_LIMIT,
) -> list[DeadLetter]:
    """Copies of the messages of ``queue`` (the first ``limit``), which keeps them all."""
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    try:
        source = await _existing_queue(channel, queue)
        held: list[AbstractIncomingMessage] = []
        try:
            while len(held) < limit:
                message = await source.get(no_ack=False, fail=False, timeout=GET_TIMEOUT)
                if message is None:
                    break
                held.append(message)
            return [DeadLetter.from_message(queue, i, m) for i, m in enumerate(held)]
        finally:
            await _hand_back(channel, held)
    finally:
        await _close(channel)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    queue: str
    target: str
    replayed: tuple[str, ...]  # message ids, in replay order
    too_old: tuple[str, ...] = ()  # left in the DLQ: older than the inbox remembers

    @property
    def count(self) -> int:
        return len(self.replayed)


async def replay(
    connection: AbstractConnection,
    queue: str,
    *,
    as_user: str,
    inbox_retention: timedelta | None,
    message_id: str | None = None,
    now: datetime | None = None,
) -> ReplayResult:
    """Move one message (``message_id``) or every message present now back to its queue.

    Only messages already in the DLQ when the replay starts are moved, once each:
    one that fails again during the replay comes back stamped with this run's
    ``x-replayed-at`` and is left alone, so the loop always ends.

    The way back into a consumer's queue is its own exchange, which it believes
    only from its own broker user: copies are published as ``as_user``, which
    the broker allows the connection only if its user has the ``impersonator``
    tag (``shopctl setup`` gives the operator user that). The consumer then
    checks the event's original publisher and key again, as on first delivery.

    A letter older than ``inbox_retention`` stays where it is: its consumer no
    longer remembers whether it handled the event (another copy may have been
    handled), so a replay could do it twice. ``None`` replays them anyway (forced).
    """
    target = source_queue(queue)
    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    replayed: list[str] = []
    too_old: list[str] = []
    skipped: list[AbstractIncomingMessage] = []
    try:
        dlq = await _existing_queue(channel, queue)
        try:
            exchange = await channel.get_exchange(dead_letter_exchange(target), ensure=True)
        except ChannelNotFoundEntity:
            raise QueueNotFound(dead_letter_exchange(target)) from None
        budget = dlq.declaration_result.message_count or 0
        taken = 0
        while taken < budget:
            message = await dlq.get(no_ack=False, fail=False, timeout=GET_TIMEOUT)
            if message is None:
                break
            headers = message.headers or {}
            if headers.get(Headers.REPLAYED_AT) == stamp.isoformat():
                skipped.append(message)  # failed again already: not this run's business
                continue
            taken += 1
            if message_id is not None and message.message_id != message_id:
                skipped.append(message)
                continue
            letter = DeadLetter.from_message(queue, taken, message)
            if inbox_retention is not None and letter.too_old_to_replay(
                now=stamp, inbox_retention=inbox_retention
            ):
                skipped.append(message)
                too_old.append(message.message_id or "?")
                continue
            try:
                await _publish_copy(
                    exchange,
                    message,
                    target,
                    replay_headers(letter, replayed_at=stamp),
                    user_id=as_user,
                )
            except ShopctlError as exc:
                skipped.append(message)  # not confirmed: it stays in the DLQ
                log.warning("dlq.replay_failed", queue=queue, count=len(replayed), error=str(exc))
                raise ShopctlError(f"{exc} ({len(replayed)} replayed before that)") from exc
            await message.ack()
            replayed.append(message.message_id or "?")
            log.info("dlq.message_replayed", queue=queue, message_id=message.message_id)
    finally:
        await _hand_back(channel, skipped)
        await _close(channel)
    log.info("dlq.replayed", queue=queue, target=target, count=len(replayed), too_old=len(too_old))
    return ReplayResult(
        queue=queue, target=target, replayed=tuple(replayed), too_old=tuple(too_old)
    )


async def purge(connection: AbstractConnection, queue: str) -> int:
    """Drop every ready message of ``queue``; returns how many."""
    source_queue(queue)  # purging is for dead letters only
    channel = await connection.channel(publisher_confirms=False)
    try:
        dlq = await _existing_queue(channel, queue)
        purged = await dlq.purge()
    finally:
        await _close(channel)
    count = int(purged.message_count or 0)
    log.warning("dlq.purged", queue=queue, count=count)
    return count


async def _existing_queue(channel: AbstractChannel, queue: str) -> AbstractQueue:
    try:
        return await channel.declare_queue(queue, passive=True)
    except ChannelNotFoundEntity:
        raise QueueNotFound(queue) from None


async def _hand_back(channel: AbstractChannel, held: Sequence[AbstractIncomingMessage]) -> None:
    """Return every held message, oldest first."""
    if channel.is_closed:
        return  # the broker has handed the unacked messages back itself
    for message in sorted(held, key=lambda m: m.delivery_tag or 0):
        await _requeue(message)


async def _requeue(message: AbstractIncomingMessage) -> None:
    # Once the channel is closed the broker has handed every unacked message back.
    with contextlib.suppress(ChannelInvalidStateError):
        await message.nack(requeue=True)


async def _publish_copy(
    exchange: aio_pika.abc.AbstractExchange,
    message: AbstractIncomingMessage,
    routing_key: str,
    headers: dict[str, Any],
    *,
    user_id: str,
) -> None:
    copy = aio_pika.Message(
        body=message.body,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        priority=message.priority,
        correlation_id=message.correlation_id,
        message_id=message.message_id,
        timestamp=message.timestamp,
        type=message.type,
        app_id=message.app_id,
        user_id=user_id,
    )
    try:
        await exchange.publish(copy, routing_key, mandatory=True, timeout=CONFIRM_TIMEOUT)
    except (TimeoutError, aio_pika.exceptions.AMQPError) as exc:
        raise ShopctlError(
            f"publishing {message.message_id} to {exchange.name or '(default)'}/{routing_key}"
            f" was not confirmed ({exc!r}); it stays where it was"
        ) from exc


async def _close(channel: AbstractChannel) -> None:
    if not channel.is_closed:
        await channel.close()


async def summarize(
    connection: AbstractConnection, queue: str, *, limit: int = DEFAULT_PEEK_LIMIT
) -> QueueSummary:
    """Depth of ``queue`` and its first ``limit`` messages grouped by failure."""
    found = await depth(connection, queue)
    if not found.messages:
        return QueueSummary(queue=queue, depth=found.messages)
    letters = await peek(connection, queue, limit=limit)
    return QueueSummary(
        queue=queue, depth=found.messages, groups=tuple(group(letters)), read=len(letters)
    )
