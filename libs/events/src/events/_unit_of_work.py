"""The unit of work of one delivery, or of a batch: inbox claim, handlers, outbox
writes and commit in ONE database transaction. No AMQP here: ``EventConsumer``
acks after these return, and tests call them directly (``events.testing``)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, Protocol, TypeVar

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events import _inbox
from events._envelope import Envelope
from events._event import Event
from events._tracing import consume_span
from events._transaction import Transaction, transaction

log = structlog.get_logger("events.consumer")

E = TypeVar("E", bound=Event)
R = TypeVar("R")
Handler = Callable[[E, Transaction], Awaitable[None]]
"""``async def on_something(event, tx) -> None``: write with ``tx.session``, ``tx.emit``."""

Outcome = Literal["handled", "duplicate"]
Prepare = Callable[[AsyncSession, Sequence[Event]], Awaitable[None]]
"""Runs first in a batch's transaction with the events it will handle (new ones)."""


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
    return await _on_a_live_connection(
        consumer, lambda: _handle_once(sessions, consumer, envelope, event, handler)
    )


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


async def handle_batch(
    sessions: async_sessionmaker[AsyncSession],
    *,
    consumer: str,
    deliveries: Sequence[Batched],
    handlers: Mapping[str, Handler[Any]],
    prepare: Prepare | None = None,
) -> list[Outcome]:
    """The unit of work of a batch: one transaction, one inbox statement for all of
    it, each new event's handler in turn, one outbox statement, one commit.

    Raises ``HandlerFailed`` naming the delivery whose handler raised (nothing of
    the batch is kept), or the error itself if the batch failed elsewhere. A
    connection found dead is replaced at once, as for one delivery.
    """
    return await _on_a_live_connection(
        consumer, lambda: _batch_once(sessions, consumer, deliveries, handlers, prepare)
    )


async def _on_a_live_connection(consumer: str, unit_of_work: Callable[[], Awaitable[R]]) -> R:
    """Run it; if its connection had died while pooled, once more at once (see
    ``handle_delivery``)."""
    try:
        return await unit_of_work()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.info("event.connection_replaced", queue=consumer, error=type(exc.orig).__name__)
        return await unit_of_work()


async def _batch_once(
    sessions: async_sessionmaker[AsyncSession],
    consumer: str,
    deliveries: Sequence[Batched],
    handlers: Mapping[str, Handler[Any]],
    prepare: Prepare | None,
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    async with transaction(sessions) as batch:
        fresh = await _inbox.claim_many(
            batch.session, consumer=consumer, envelopes=[d.envelope for d in deliveries]
        )
        if prepare is not None:
            new = {d.envelope.id: d.event for d in deliveries if d.envelope.id in fresh}
            await prepare(batch.session, list(new.values()))  # each event once
        for delivery in deliveries:
            envelope = delivery.envelope
            if envelope.id not in fresh:  # handled before, or twice in this batch
                outcomes.append("duplicate")
                continue
            fresh.discard(envelope.id)
            with about_event(envelope, delivery.headers):
                try:
                    await handlers[envelope.type](delivery.event, batch.for_delivery(envelope))
                except Exception as exc:
                    raise HandlerFailed(delivery) from exc
            outcomes.append("handled")
    return outcomes


class HandlerFailed(Exception):
    """A handler of a batch raised (its error is the ``__cause__``); the batch is void."""

    def __init__(self, delivery: Batched) -> None:
        super().__init__(f"handler of {delivery.envelope.type} {delivery.envelope.id} failed")
        self.delivery = delivery


@contextlib.contextmanager
def about_event(envelope: Envelope, headers: Mapping[str, Any]) -> Iterator[None]:
    """Every log line and span inside names the event, its id, correlation and cause."""
    context_vars = structlog.contextvars.bound_contextvars(
        event_type=envelope.type,
        event_id=str(envelope.id),
        correlation_id=envelope.correlation_id,
        causation_id=str(envelope.causation_id) if envelope.causation_id else None,
    )
    with context_vars, consume_span(envelope.type, headers):
        yield


class Batched(Protocol):
    """One delivery of a batch, as ``handle_batch`` needs it."""

    @property
    def envelope(self) -> Envelope: ...
    @property
    def event(self) -> Event: ...
    @property
    def headers(self) -> Mapping[str, Any]: ...
