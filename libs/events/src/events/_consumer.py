"""Idempotent consumer: inbox + handler + commit in one transaction, then ack.

Per delivery: provenance (who published it, see ``_trust``) → decode → (one DB
transaction: inbox claim, handler, outbox writes) → commit → ack. Outcomes:

- handled or duplicate          → ack
- forged (not from the event's owner, or key, type and body disagree) → DLQ at once
- ``PermanentError`` (bad body, unknown type/version, schema violation, or a
  handler saying retrying cannot help) → DLQ at once
- any other exception           → delayed retry via a TTL'd retry queue, and DLQ
  once ``queue.max_retries`` retries have failed
- shutdown ran out of grace     → requeue (never dead-letter on shutdown)
- anything unforeseen           → rejected, so the broker dead-letters it: every
  delivery is settled, none holds a prefetch slot forever
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import aio_pika
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events import _inbox
from events._broker import Broker
from events._declare import declare_queue
from events._envelope import Envelope
from events._errors import ForgedMessage, PermanentError, PublishError
from events._event import Event
from events._metrics import CONSUMED, HANDLER_SECONDS
from events._registry import EventRegistry
from events._topology import ConsumerQueue
from events._tracing import consume_span
from events._transaction import Transaction, transaction
from events._trust import Provenance, provenance
from events._wire import DeadLetterReason, Headers

log = structlog.get_logger("events.consumer")

E = TypeVar("E", bound=Event)
Handler = Callable[[E, Transaction], Awaitable[None]]
"""``async def on_something(event, tx) -> None``: write with ``tx.session``, ``tx.emit``."""

DEFAULT_CONCURRENCY = 8
DEFAULT_SHUTDOWN_GRACE = 20.0
REPUBLISH_TIMEOUT = 5.0

Outcome = Literal["handled", "duplicate"]


async def handle_delivery(
    sessions: async_sessionmaker[AsyncSession],
    *,
    consumer: str,
    envelope: Envelope,
    event: Event,
    handler: Handler[Any],
) -> Outcome:
    """The unit of work per delivery: inbox claim + handler in ONE transaction.

    Commits on return (the caller acks after that); rolls back if the handler
    raises. ``EventConsumer`` runs exactly this; tests can call it directly.

    A pooled connection that died since its last use (database restarted,
    connection terminated) fails its first statement; SQLAlchemy then discards
    it and every connection as old. That transaction runs once more at once on a
    fresh connection, rather than the message going round a retry queue. It is
    safe even if the failure hit the COMMIT: the inbox answers "duplicate".
    """
    try:
        return await _handle_once(sessions, consumer, envelope, event, handler)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.info("event.connection_replaced", queue=consumer, error=type(exc.orig).__name__)
        return await _handle_once(sessions, consumer, envelope, event, handler)


async def _handle_once(
    sessions: async_sessionmaker[AsyncSession],
    consumer: str,
    envelope: Envelope,
    event: Event,
    handler: Handler[Any],
) -> Outcome:
    async with transaction(sessions, caused_by=envelope) as tx:
        if not await _inbox.claim(tx.session, consumer=consumer, envelope=envelope):
            return "duplicate"
        await handler(event, tx)
    return "handled"


class EventConsumer:
    def __init__(
        self,
        *,
        broker: Broker,
        queue: ConsumerQueue,
        sessions: async_sessionmaker[AsyncSession],
        handlers: Mapping[type[Event], Handler[Any]],
        registry: EventRegistry,
        publishers: Mapping[str, str],
        own_user: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE,
    ) -> None:
        handled = {model.TYPE for model in handlers}
        if handled != set(queue.bindings):
            raise ValueError(
                f"{queue.name}: handlers for {sorted(handled)}"
                f" but bindings {sorted(queue.bindings)}"
            )
        self._broker = broker
        self._spec = queue
        self._sessions = sessions
        self._handlers = {model.TYPE: handler for model, handler in handlers.items()}
        self._registry = registry
        # Routing key → the broker user allowed to publish it (the topology's owners).
        self._publishers = dict(publishers)
        # Our copies (retries, dead letters) carry our user; the broker checks it.
        self._own_user = own_user if own_user is not None else broker.user
        self._concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._shutdown_grace = shutdown_grace
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._dlx: AbstractExchange | None = None
        self._consumer_tag: str | None = None
        self._inflight: set[asyncio.Task[Any]] = set()
        self._stopping = False
        broker.on_connect(self._start)

    @property
    def is_consuming(self) -> bool:
        return (
            self._consumer_tag is not None
            and self._channel is not None
            and not self._channel.is_closed
        )

    async def _start(self, connection: AbstractConnection) -> None:
        if self._stopping:
            return
        channel = await connection.channel(publisher_confirms=True)
        # Prefetch beyond the concurrency keeps the next messages warm.
        await channel.set_qos(prefetch_count=self._concurrency * 2)
        self._queue = await declare_queue(channel, self._spec)
        self._dlx = await channel.get_exchange(self._spec.dead_letter_exchange, ensure=False)
        self._channel = channel
        channel.close_callbacks.add(self._on_channel_closed)
        self._consumer_tag = await self._queue.consume(self._on_message)
        log.info("consumer.started", queue=self._spec.name)

    def _on_channel_closed(self, *_: object) -> None:
        self._consumer_tag = None
        if not self._stopping:
            # A channel can die alone; rebuilding the whole connection is the one
            # recovery path we trust (and test).
            asyncio.get_running_loop().create_task(self._broker.reconnect())

    async def stop(self) -> None:
        """Stop consuming, let in-flight handlers finish (within grace), requeue the rest."""
        self._stopping = True
        if self.is_consuming and self._queue is not None and self._consumer_tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._consumer_tag, timeout=5)
        self._consumer_tag = None
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=self._shutdown_grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._channel is not None and not self._channel.is_closed:
            # Closing the channel hands every unacked delivery back to the queue.
            with contextlib.suppress(Exception):
                await self._channel.close()
        log.info("consumer.stopped", queue=self._spec.name)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # aiormq runs this callback in a task it cancels when the channel closes.
        # A transaction half-way through an external call (SMTP, a gateway) must
        # not be torn down by that, so the work runs in a task of our own that only
        # stop() may cancel. Its ack then fails; the redelivery is an inbox duplicate.
        work = asyncio.create_task(self._work(message))
        self._inflight.add(work)
        work.add_done_callback(self._finished)
        await asyncio.shield(work)

    async def _work(self, message: AbstractIncomingMessage) -> None:
        async with self._slots:
            try:
                await self._process(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A bug or a broker hiccup on our side: settle it all the same, by
                # rejection (the queue's dead-letter exchange keeps the message).
                log.exception("consumer.unsettled_delivery", queue=self._spec.name, error=repr(exc))
                with contextlib.suppress(Exception):
                    await message.reject(requeue=False)

    def _finished(self, work: asyncio.Task[None]) -> None:
        self._inflight.discard(work)
        if not work.cancelled() and work.exception() is not None:
            log.error("consumer.work_failed", queue=self._spec.name, error=repr(work.exception()))

    async def _process(self, message: AbstractIncomingMessage) -> None:
        if self._stopping:
            await self._requeue(message, self._label(message.routing_key))
            return
        try:
            origin = provenance(
                routing_key=message.routing_key,
                message_type=message.type,
                user_id=message.user_id,
                headers=message.headers or {},
                queue=self._spec,
                own_user=self._own_user,
                publishers=self._publishers,
            )
            envelope = Envelope.from_body(message.body)
            if envelope.type != origin.routing_key:
                raise ForgedMessage(
                    f"the body says {envelope.type!r}, the routing key {origin.routing_key!r}"
                )
            event = self._registry.decode(envelope)
        except PermanentError as exc:
            await self._dead_letter(message, exc, None)
            return

        context_vars = structlog.contextvars.bound_contextvars(
            event_type=envelope.type,
            event_id=str(envelope.id),
            correlation_id=envelope.correlation_id,
            causation_id=str(envelope.causation_id) if envelope.causation_id else None,
        )
        with context_vars, consume_span(envelope.type, message.headers or {}):
            started = time.perf_counter()
            try:
                outcome = await self._handle(envelope, event)
            except asyncio.CancelledError:
                await self._requeue(message, envelope.type)
                raise
            except PermanentError as exc:
                await self._dead_letter(message, exc, origin)
            except Exception as exc:
                if origin.retries < self._spec.max_retries:
                    await self._retry(message, exc, origin)
                else:
                    await self._dead_letter(message, exc, origin)
            else:
                await _ack(message)
                HANDLER_SECONDS.labels(self._spec.name, envelope.type).observe(
                    time.perf_counter() - started
                )
                CONSUMED.labels(self._spec.name, envelope.type, outcome).inc()
                log.info(f"event.{outcome}", queue=self._spec.name, retries=origin.retries)

    async def _handle(self, envelope: Envelope, event: Event) -> Outcome:
        return await handle_delivery(
            self._sessions,
            consumer=self._spec.name,
            envelope=envelope,
            event=event,
            handler=self._handlers[envelope.type],
        )

    async def _retry(
        self, message: AbstractIncomingMessage, exc: Exception, origin: Provenance
    ) -> None:
        attempt = origin.retries + 1
        log.warning(
            "event.retry_scheduled",
            queue=self._spec.name,
            attempt=attempt,
            delay=self._spec.retry_delays[attempt - 1],
            error=repr(exc),
        )
        headers = {Headers.RETRY_COUNT: attempt, Headers.LAST_ERROR: _describe(exc)}
        if await self._republish(message, self._spec.retry_queue(attempt), origin, headers):
            CONSUMED.labels(self._spec.name, origin.routing_key, "retried").inc()

    async def _dead_letter(
        self, message: AbstractIncomingMessage, exc: Exception, origin: Provenance | None
    ) -> None:
        """To the DLQ, saying why; ``origin`` is None when the message was not believed."""
        retries = 0 if origin is None else origin.retries
        label = self._label(message.routing_key if origin is None else origin.routing_key)
        if isinstance(exc, ForgedMessage):
            reason = DeadLetterReason.FORGED
        elif isinstance(exc, PermanentError):
            reason = DeadLetterReason.PERMANENT_ERROR
        else:
            reason = DeadLetterReason.RETRIES_EXHAUSTED
        log.error(
            "event.dead_lettered",
            queue=self._spec.name,
            event_type=label,
            message_id=message.message_id,
            reason=reason,
            retries=retries,
            error=repr(exc),
        )
        headers = {
            Headers.DEAD_LETTER_REASON: reason,
            Headers.EXCEPTION: type(exc).__name__,
            Headers.EXCEPTION_MESSAGE: str(exc)[:1000],
            Headers.ORIGINAL_QUEUE: self._spec.name,
            Headers.ATTEMPTS: retries + 1,
            Headers.FAILED_AT: datetime.now(UTC).isoformat(),
        }
        if await self._republish(message, self._spec.dead_letter_queue, origin, headers):
            CONSUMED.labels(self._spec.name, label, "dead_lettered").inc()

    async def _republish(
        self,
        message: AbstractIncomingMessage,
        routing_key: str,
        origin: Provenance | None,
        extra: dict[str, Any],
    ) -> bool:
        """Publish a copy via the queue's DLX (confirmed, as our own user), then ack.

        The copy records where the event came from: for a believed message what
        we checked; for any other what it claimed (a replay is checked again).
        """
        headers = dict(message.headers or {})
        if origin is None or not origin.returned:
            # A publisher's words: none of our control headers may ride along.
            headers = {k: v for k, v in headers.items() if k not in Headers.CONTROL}
        if origin is not None:
            headers[Headers.ORIGINAL_ROUTING_KEY] = origin.routing_key
            headers[Headers.ORIGINAL_USER_ID] = origin.publisher
        elif message.routing_key != self._spec.name:
            headers[Headers.ORIGINAL_ROUTING_KEY] = message.routing_key or ""
            headers[Headers.ORIGINAL_USER_ID] = message.user_id or ""
        headers.update(extra)
        copy = aio_pika.Message(
            body=message.body,
            headers=headers,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            type=message.type,
            timestamp=message.timestamp,
            user_id=self._own_user,
        )
        try:
            if self._dlx is None:
                raise PublishError("no channel to republish on")
            await self._dlx.publish(copy, routing_key, mandatory=True, timeout=REPUBLISH_TIMEOUT)
        except (TimeoutError, aio_pika.exceptions.AMQPError, PublishError) as exc:
            # Not acked: the broker redelivers it, so nothing is lost.
            log.warning("event.republish_failed", routing_key=routing_key, error=repr(exc))
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            return False
        await _ack(message)
        return True

    def _label(self, routing_key: str | None) -> str:
        """A metric label: one of our keys, never a value a publisher chose."""
        return routing_key if routing_key in self._handlers else "other"

    async def _requeue(self, message: AbstractIncomingMessage, event_type: str) -> None:
        with contextlib.suppress(Exception):
            await asyncio.shield(message.nack(requeue=True))
        CONSUMED.labels(self._spec.name, event_type, "requeued").inc()


async def _ack(message: AbstractIncomingMessage) -> None:
    try:
        await message.ack()
    except Exception as exc:
        # The channel died after our commit: the broker redelivers the message and
        # the inbox recognises it. Nothing is lost, nothing happens twice.
        log.warning("event.ack_failed", message_id=message.message_id, error=repr(exc))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]
