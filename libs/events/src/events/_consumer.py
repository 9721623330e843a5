"""Idempotent consumer: take deliveries off a queue, handle them, settle them.

Per delivery: provenance (who published it, see ``_trust``) → decode → the unit
of work (``_unit_of_work``: inbox claim, handler, outbox writes, commit) → ack.
Deliveries that are ready are taken as a batch, one transaction and one ack for
all of them. Outcomes:

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
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import aio_pika
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events._broker import Broker
from events._declare import declare_queue
from events._envelope import Envelope
from events._errors import ForgedMessage, PermanentError, PublishError
from events._event import Event
from events._metrics import CONSUMED, DEAD_LETTER_DEPTH, HANDLER_SECONDS, QUEUE_CONSUMERS
from events._registry import EventRegistry
from events._topology import ConsumerQueue
from events._trust import Provenance, provenance
from events._unit_of_work import (
    Handler,
    HandlerFailed,
    Outcome,
    Prepare,
    about_event,
    handle_batch,
    handle_delivery,
)
from events._wire import DeadLetterReason, Headers

log = structlog.get_logger("events.consumer")

DEFAULT_CONCURRENCY = 4
DEFAULT_BATCH_SIZE = 32
# No wait by default: a batch is what arrived while the previous one was handled,
# so batches grow with the backlog and a quiet queue adds no latency per hop
# (5 ms cost POST -> CONFIRMED 17 ms at the median in the benchmark, for no CPU saved).
DEFAULT_BATCH_WAIT = 0.0
DEFAULT_SHUTDOWN_GRACE = 20.0
REPUBLISH_TIMEOUT = 5.0
WATCH_INTERVAL = 15.0  # seconds between looks at the queue's DLQ depth and consumers


class _Lane:
    """One channel's deliveries, handled a batch at a time, as they arrived.

    Batches of one lane never overlap, so when a batch is settled every earlier
    delivery of the channel is too: one ``basic.ack`` with ``multiple`` covers it.
    """

    def __init__(self, channel: AbstractChannel) -> None:
        self.channel = channel
        self.waiting: collections.deque[AbstractIncomingMessage] = collections.deque()
        self.arrived = asyncio.Event()
        self.consumer_tag: str | None = None
        self.queue: AbstractQueue | None = None
        self.worker: asyncio.Task[None] | None = None

    @property
    def is_consuming(self) -> bool:
        return self.consumer_tag is not None and not self.channel.is_closed

    def deliver(self, message: AbstractIncomingMessage) -> None:
        self.waiting.append(message)
        self.arrived.set()


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
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_wait: float = DEFAULT_BATCH_WAIT,
        prepare: Prepare | None = None,
        shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE,
    ) -> None:
        """``concurrency`` channels each handle ``batch_size`` deliveries at a time in
        one database transaction (``handle_batch``), waiting at most ``batch_wait``
        seconds for a batch to fill; ``prepare`` runs first in that transaction (to
        lock the rows the batch will touch in one global sequence)."""
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
        self._batch_size = batch_size
        self._batch_wait = batch_wait
        self._prepare = prepare
        self._shutdown_grace = shutdown_grace
        self._lanes: list[_Lane] = []
        self._dlx: AbstractExchange | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._stopping = False
        broker.on_connect(self._start)

    @property
    def is_consuming(self) -> bool:
        return bool(self._lanes) and all(lane.is_consuming for lane in self._lanes)

    async def _start(self, connection: AbstractConnection) -> None:
        if self._stopping:
            return
        # Copies to retry queues and the DLQ go out on a confirm channel of their own.
        publishing = await connection.channel(publisher_confirms=True)
        await declare_queue(publishing, self._spec)
        if publishing.is_closed:  # the DLQ's node is down (see declare_queue)
            publishing = await connection.channel(publisher_confirms=True)
        self._dlx = await publishing.get_exchange(self._spec.dead_letter_exchange, ensure=False)
        publishing.close_callbacks.add(self._on_channel_closed)
        self._lanes = []
        for number in range(self._concurrency):
            channel = await connection.channel(publisher_confirms=False)
            # Two batches' worth: the next batch is waiting when this one is done.
            await channel.set_qos(prefetch_count=self._batch_size * 2)
            lane = _Lane(channel)
            lane.queue = await channel.get_queue(self._spec.name, ensure=False)
            channel.close_callbacks.add(self._on_channel_closed)
            lane.worker = asyncio.create_task(self._drive(lane), name=f"lane-{number}")
            lane.consumer_tag = await lane.queue.consume(_delivered_to(lane))
            self._lanes.append(lane)
        if self._watcher is not None:
            self._watcher.cancel()
        self._watcher = asyncio.create_task(self._watch(connection), name="queue-watch")
        log.info("consumer.started", queue=self._spec.name, lanes=self._concurrency)

    async def _watch(self, connection: AbstractConnection) -> None:
        """Export the DLQ's depth and the queue's consumers, for alerts to read."""
        channel: AbstractChannel | None = None
        while not self._stopping:
            try:
                if channel is None or channel.is_closed:
                    channel = await connection.channel()
                dlq = await channel.declare_queue(self._spec.dead_letter_queue, passive=True)
                main = await channel.declare_queue(self._spec.name, passive=True)
                depth = dlq.declaration_result.message_count or 0
                DEAD_LETTER_DEPTH.labels(self._spec.dead_letter_queue).set(depth)
                consumers = main.declaration_result.consumer_count or 0
                QUEUE_CONSUMERS.labels(self._spec.name).set(consumers)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the connection is going: its successor watches
                log.debug("consumer.watch_failed", queue=self._spec.name, error=repr(exc))
                if connection.is_closed:
                    return
            await asyncio.sleep(WATCH_INTERVAL)

    def _on_channel_closed(self, *_: object) -> None:
        if not self._stopping:
            # A channel can die alone; rebuilding the whole connection is the one
            # recovery path we trust (and test).
            asyncio.get_running_loop().create_task(self._broker.reconnect())

    async def stop(self) -> None:
        """Stop consuming, let in-flight batches finish (within grace), requeue the rest."""
        self._stopping = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watcher
        for lane in self._lanes:
            if lane.is_consuming and lane.queue is not None and lane.consumer_tag is not None:
                with contextlib.suppress(Exception):
                    await lane.queue.cancel(lane.consumer_tag, timeout=5)
            lane.consumer_tag = None
            lane.arrived.set()  # an idle lane wakes up and sees it is stopping
        workers = [lane.worker for lane in self._lanes if lane.worker is not None]
        if workers:
            _, pending = await asyncio.wait(workers, timeout=self._shutdown_grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for lane in self._lanes:
            if not lane.channel.is_closed:
                # Closing the channel hands every unacked delivery back to the queue.
                with contextlib.suppress(Exception):
                    await lane.channel.close()
        log.info("consumer.stopped", queue=self._spec.name)

    async def _drive(self, lane: _Lane) -> None:
        """The lane's loop: wait for deliveries, take a batch, settle it, again."""
        while not self._stopping and not lane.channel.is_closed:
            await lane.arrived.wait()
            if self._stopping:
                return
            if len(lane.waiting) < self._batch_size and self._batch_wait > 0:
                # A few milliseconds for the batch to fill: one commit for many.
                await asyncio.sleep(self._batch_wait)
            batch = [
                lane.waiting.popleft() for _ in range(min(self._batch_size, len(lane.waiting)))
            ]
            if not lane.waiting:
                lane.arrived.clear()
            if not batch:
                continue
            try:
                await self._settle_batch(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A bug or a broker hiccup on our side: settle them all the same, by
                # rejection (the queue's dead-letter exchange keeps the messages).
                log.exception("consumer.unsettled_delivery", queue=self._spec.name, error=repr(exc))
                for message in batch:
                    with contextlib.suppress(Exception):
                        await message.reject(requeue=False)

    async def _settle_batch(self, messages: list[AbstractIncomingMessage]) -> None:
        """Believe and decode each delivery, handle the good ones together, settle all.

        One transaction and one inbox statement for the batch, one ack for it all.
        If a handler fails, the batch rolls back; that delivery is handled alone (so
        only it is retried or dead-lettered) and the rest go again as a batch. If the
        batch fails elsewhere (the database), each delivery is handled alone.
        """
        if self._stopping:
            for message in messages:
                await self._requeue(message, self._label(message.routing_key))
            return
        ready: list[_Ready] = []
        for message in messages:
            accepted = await self._accept(message)
            if accepted is not None:
                ready.append(accepted)
        if len(ready) == 1:
            await self._process(ready[0])
            return
        if not ready:
            return
        # One global sequence for the locks the handlers take: by aggregate, then as
        # delivered (a stable sort keeps one aggregate's events in sequence).
        remaining = sorted(ready, key=lambda r: r.envelope.correlation_id)
        while len(remaining) > 1:
            started = time.perf_counter()
            try:
                outcomes = await handle_batch(
                    self._sessions,
                    consumer=self._spec.name,
                    deliveries=remaining,
                    handlers=self._handlers,
                    prepare=self._prepare,
                )
            except asyncio.CancelledError:
                for item in remaining:
                    await self._requeue(item.message, item.envelope.type)
                raise
            except HandlerFailed as failed:
                culprit = next(r for r in remaining if r is failed.delivery)
                log.info(
                    "consumer.batch_failed",
                    queue=self._spec.name,
                    size=len(remaining),
                    event_type=culprit.envelope.type,
                    event_id=str(culprit.envelope.id),
                    correlation_id=culprit.envelope.correlation_id,
                    error=repr(failed.__cause__),
                )
                await self._process(culprit)  # alone: retried or dead-lettered
                remaining = [r for r in remaining if r is not culprit]
                continue
            except Exception as exc:
                log.info(
                    "consumer.batch_failed",
                    queue=self._spec.name,
                    size=len(remaining),
                    error=repr(exc),
                )
                break
            # Every earlier delivery of this lane is settled: one ack covers the batch.
            last = max(remaining, key=lambda r: r.message.delivery_tag or 0)
            await _ack(last.message, multiple=True)
            self._settled(remaining, outcomes, time.perf_counter() - started)
            return
        for item in remaining:
            await self._process(item)

    def _settled(
        self, batch: Sequence[_Ready], outcomes: Sequence[Outcome], elapsed: float
    ) -> None:
        """Metrics and one log line per event of a committed batch."""
        for item, outcome in zip(batch, outcomes, strict=True):
            envelope = item.envelope
            HANDLER_SECONDS.labels(self._spec.name, envelope.type).observe(elapsed)
            CONSUMED.labels(self._spec.name, envelope.type, outcome).inc()
            log.info(
                f"event.{outcome}",
                queue=self._spec.name,
                event_type=envelope.type,
                event_id=str(envelope.id),
                correlation_id=envelope.correlation_id,
                retries=item.origin.retries,
                batch=len(batch),
            )

    async def _accept(self, message: AbstractIncomingMessage) -> _Ready | None:
        """The delivery's provenance and event; None if it was dead-lettered instead."""
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
            return None
        return _Ready(message, origin, envelope, event)

    async def _process(self, ready: _Ready) -> None:
        """One delivery in a transaction of its own; retried or dead-lettered alone."""
        message, origin, envelope, event = ready
        with about_event(envelope, message.headers or {}):
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


class _Ready(NamedTuple):
    message: AbstractIncomingMessage
    origin: Provenance
    envelope: Envelope
    event: Event

    @property
    def headers(self) -> Mapping[str, Any]:
        return self.message.headers or {}


def _delivered_to(lane: _Lane) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
    # aiormq runs this in a task it cancels when the channel closes: it only queues
    # the delivery; the lane's own task (which only stop() cancels) does the work.
    async def deliver(message: AbstractIncomingMessage) -> None:
        lane.deliver(message)

    return deliver


async def _ack(message: AbstractIncomingMessage, *, multiple: bool = False) -> None:
    try:
        await message.ack(multiple=multiple)
    except Exception as exc:
        # The channel died after our commit: the broker redelivers the message and
        # the inbox recognises it. Nothing is lost, nothing happens twice.
        log.warning("event.ack_failed", message_id=message.message_id, error=repr(exc))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]
