"""Queries on ``emails``; every method runs in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from shop_contract import EmailKind
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from email_service.adapters.tables import emails
from email_service.domain.emails import SentEmail

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


class EmailRepository(Protocol):
    async def claim(
        self, *, order_id: UUID, kind: EmailKind, recipient: str, message_id: str
    ) -> bool:
        """Record that this email is being sent; False if it already was (or is being) sent."""

    async def mark_sent(self, *, order_id: UUID, kind: EmailKind) -> datetime:
        """Stamp the time the SMTP server accepted the email."""

    async def for_order(self, order_id: UUID) -> Sequence[SentEmail]:
        """The order's emails, oldest first."""


class SqlEmailRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(
        self, *, order_id: UUID, kind: EmailKind, recipient: str, message_id: str
    ) -> bool:
        """A concurrent claim of the same ``(order_id, kind)`` waits on the primary key
        until the first transaction ends: it then sees the row (first committed) or
        takes it over (first rolled back), so exactly one of them sends."""
        result = await self._session.execute(
            _CLAIM,
            {"order_id": order_id, "kind": kind, "recipient": recipient, "message_id": message_id},
        )
        return result.first() is not None

    async def mark_sent(self, *, order_id: UUID, kind: EmailKind) -> datetime:
        result = await self._session.execute(_MARK_SENT, {"_order_id": order_id, "_kind": kind})
        sent_at: datetime = result.scalar_one()
        return sent_at

    async def for_order(self, order_id: UUID) -> Sequence[SentEmail]:
        rows = await self._session.execute(
            select(*_PUBLIC)
            .where(emails.c.order_id == order_id)
            .order_by(emails.c.sent_at, emails.c.kind)
        )
        return [SentEmail(*row) for row in rows]
