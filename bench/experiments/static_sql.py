"""``events.inbox.claim`` and ``events.outbox.add`` with statements built once.

The library builds a new statement per call (``insert(...).values(**row)``), so
SQLAlchemy walks the whole statement, values included, to compute its cache key
every time. Built once with the values passed as parameters, the cache key is
computed on a constant statement and the compiled form is found at once. Same
SQL, same transaction, same results; this is the diff proposed to the lead.
"""

from __future__ import annotations

from uuid import UUID

from events.catalogue import Event
from events.envelope import Envelope, OutboundMessage
from events.tables import inbox, outbox
from events.tracing import current_trace_headers
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

_CLAIM = insert(inbox).on_conflict_do_nothing().returning(inbox.c.event_id)
_ADD = outbox.insert()


async def claim(session: AsyncSession, *, consumer: str, envelope: Envelope) -> bool:
    result = await session.execute(
        _CLAIM,
        {
            "consumer": consumer,
            "event_id": envelope.id,
            "event_type": envelope.type,
            "correlation_id": envelope.correlation_id,
        },
    )
    return result.first() is not None


async def add(
    session: AsyncSession,
    event: Event,
    *,
    correlation_id: str | None = None,
    causation_id: UUID | None = None,
) -> Envelope:
    envelope = Envelope.wrap(event, correlation_id=correlation_id, causation_id=causation_id)
    message = OutboundMessage.from_envelope(envelope, current_trace_headers())
    await session.execute(
        _ADD,
        {
            "event_id": envelope.id,
            "routing_key": message.routing_key,
            "correlation_id": message.correlation_id,
            "body": message.body.decode(),
            "headers": message.headers,
            "created_at": envelope.occurred_at,
        },
    )
    return envelope
