"""The inbox: remembers which events a consumer has already handled."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from events._envelope import Envelope
from events._tables import inbox

# Built once: SQLAlchemy then finds the compiled statement by a cheap cache key
# instead of walking a fresh statement, values included, on every message.
_CLAIM = insert(inbox).on_conflict_do_nothing().returning(inbox.c.event_id)


async def claim(session: AsyncSession, *, consumer: str, envelope: Envelope) -> bool:
    """Record ``envelope`` as handled by ``consumer``; False if it already was.

    Runs in the handler's transaction. A concurrent duplicate blocks on the
    primary key until the first commits (then sees the conflict) or rolls back
    (then claims it itself), so exactly one of them runs the handler.
    """
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


async def claim_many(
    session: AsyncSession, *, consumer: str, envelopes: Sequence[Envelope]
) -> set[UUID]:
    """Record a batch of events as handled by ``consumer`` in one statement; the ids
    that were new (the others were handled before, or are repeated in the batch)."""
    result = await session.execute(
        _CLAIM,
        [
            {
                "consumer": consumer,
                "event_id": envelope.id,
                "event_type": envelope.type,
                "correlation_id": envelope.correlation_id,
            }
            for envelope in envelopes
        ],
    )
    return set(result.scalars())
