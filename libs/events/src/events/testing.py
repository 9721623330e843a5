"""Helpers for testing code built on this library.

Against a real database: ``deliver`` runs a handler exactly as the consumer
does (inbox claim, handler, outbox writes, commit) without a broker, and
``deliver_batch`` a batch of events in one transaction as the consumer does;
``outbox_events`` reads back what a transaction emitted. Without one:
``FakeUnitOfWork`` is the base of a service's in-memory unit of work.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events._envelope import Envelope
from events._event import Event
from events._tables import outbox
from events._unit_of_work import (
    Handler,
    HandlerFailed,
    Outcome,
    Prepare,
    handle_batch,
    handle_delivery,
)

__all__ = ["Delivery", "FakeUnitOfWork", "deliver", "deliver_batch", "outbox_events"]


@dataclass(frozen=True, slots=True)
class Delivery:
    envelope: Envelope
    outcome: Outcome


async def deliver(
    sessions: async_sessionmaker[AsyncSession],
    handler: Handler[Any],
    event: Event,
    *,
    envelope: Envelope | None = None,
    consumer: str = "test.events",
    caused_by: Envelope | None = None,
) -> Delivery:
    """Handle ``event`` once, in a new envelope or again in ``envelope`` (a redelivery)."""
    envelope = envelope or Envelope.wrap(event, caused_by=caused_by)
    outcome = await handle_delivery(
        sessions, consumer=consumer, envelope=envelope, event=event, handler=handler
    )
    return Delivery(envelope, outcome)


@dataclass(frozen=True, slots=True)
class _Batched:
    envelope: Envelope
    event: Event
    headers: Mapping[str, Any] = field(default_factory=dict)


async def deliver_batch(
    sessions: async_sessionmaker[AsyncSession],
    handlers: Mapping[type[Event], Handler[Any]],
    events: Sequence[Event | tuple[Event, Envelope]],
    *,
    prepare: Prepare | None = None,
    consumer: str = "test.events",
) -> list[Delivery]:
    """Handle ``events`` as one batch: one transaction, ``prepare`` first, each new
    event's handler in the given sequence. An ``(event, envelope)`` pair is a redelivery.
    A handler's error is raised as it is (nothing of the batch is kept)."""
    batch = [
        _Batched(item[1], item[0])
        if isinstance(item, tuple)
        else _Batched(Envelope.wrap(item), item)
        for item in events
    ]
    try:
        outcomes = await handle_batch(
            sessions,
            consumer=consumer,
            deliveries=batch,
            handlers={model.TYPE: handler for model, handler in handlers.items()},
            prepare=prepare,
        )
    except HandlerFailed as failed:
        raise failed.__cause__ or failed from None
    return [Delivery(b.envelope, o) for b, o in zip(batch, outcomes, strict=True)]


async def outbox_events(
    sessions: async_sessionmaker[AsyncSession], correlation_id: str | None = None
) -> list[Envelope]:
    """Events written to the outbox (of one correlation id), oldest first."""
    query = select(outbox.c.body).order_by(outbox.c.seq)
    if correlation_id is not None:
        query = query.where(outbox.c.correlation_id == correlation_id)
    async with sessions() as session:
        bodies = (await session.execute(query)).scalars()
        return [Envelope.model_validate(json.loads(body)) for body in bodies]


class FakeUnitOfWork:
    """Emits, counts after commit, commits or rolls back, as a ``Transaction`` does.

    Subclass it per service with in-memory repositories, and override ``keep``
    to copy what the transaction wrote into the fake's committed store. Use it
    as ``async with``: it commits when the block ends and rolls back if it raises.
    """

    def __init__(self, *, caused_by: Envelope | None = None) -> None:
        self.caused_by = caused_by
        self.emitted: list[Event] = []
        self.envelopes: list[Envelope] = []
        self._after_commit: list[Callable[[], None]] = []
        self.committed = False
        self.rolled_back = False

    def emit(self, event: Event, *, trace: Mapping[str, str] | None = None) -> Envelope:
        envelope = Envelope.wrap(event, caused_by=self.caused_by)
        self.emitted.append(event)
        self.envelopes.append(envelope)
        return envelope

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)

    def keep(self) -> None:
        """Make this transaction's writes and events visible to later ones."""

    def commit(self) -> None:
        self._end()
        self.keep()
        self.committed = True
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def rollback(self) -> None:
        self._end()
        self.rolled_back = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.rollback()

    def _end(self) -> None:
        if self.committed or self.rolled_back:
            raise AssertionError("this unit of work has already ended")
