"""Queries on ``emails``; every function runs in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from events.catalogue import EmailKind
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from email_service.adapters.tables import emails

LATEST_LIMIT = 100
_PUBLIC = (emails.c.order_id, emails.c.kind, emails.c.recipient, emails.c.sent_at)

# The handler's statements, built once: SQLAlchemy then finds their compiled form
# by a cheap cache key, and the values travel as parameters.
_CLAIM = (
    insert(emails)
    .on_conflict_do_nothing(index_elements=[emails.c.order_id, emails.c.kind])
    .returning(emails.c.order_id)
)
_MARK_SENT = (
    update(emails)
    .where(emails.c.order_id == bindparam("_order_id"), emails.c.kind == bindparam("_kind"))
    .values(sent_at=func.clock_timestamp())
    .returning(emails.c.sent_at)
)


@dataclass(frozen=True, slots=True)
class SentEmail:
    order_id: UUID
    kind: EmailKind
    recipient: str
    sent_at: datetime


async def claim(
    session: AsyncSession, *, order_id: UUID, kind: EmailKind, recipient: str, message_id: str
) -> bool:
    """Record that this email is being sent; False if it already was (or is being) sent.

    A concurrent claim of the same ``(order_id, kind)`` waits on the primary key
    until the first transaction ends: it then sees the row (first committed) or
    takes it over (first rolled back), so exactly one of them sends.
    """
    result = await session.execute(
        _CLAIM,
        {"order_id": order_id, "kind": kind, "recipient": recipient, "message_id": message_id},
    )
    return result.first() is not None


async def mark_sent(session: AsyncSession, *, order_id: UUID, kind: EmailKind) -> datetime:
    """Stamp the time the SMTP server accepted the email (``now()`` is the claim's)."""
    result = await session.execute(_MARK_SENT, {"_order_id": order_id, "_kind": kind})
    sent_at: datetime = result.scalar_one()
    return sent_at


async def for_order(session: AsyncSession, order_id: UUID) -> Sequence[SentEmail]:
    """The order's emails, oldest first."""
    rows = await session.execute(
        select(*_PUBLIC)
        .where(emails.c.order_id == order_id)
        .order_by(emails.c.sent_at, emails.c.kind)
    )
    return [SentEmail(*row) for row in rows]


async def latest(session: AsyncSession, limit: int = LATEST_LIMIT) -> Sequence[SentEmail]:
    """The ``limit`` most recent emails of all orders, newest first."""
    rows = await session.execute(
        select(*_PUBLIC)
        .order_by(emails.c.sent_at.desc(), emails.c.order_id, emails.c.kind)
        .limit(limit)
    )
    return [SentEmail(*row) for row in rows]
