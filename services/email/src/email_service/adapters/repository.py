"""Queries on ``emails``; every method runs in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from shop_contract import EmailKind
from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from email_service.adapters.tables import emails
from email_service.domain.emails import Claim, SentEmail

_PUBLIC = (emails.c.order_id, emails.c.kind, emails.c.recipient, emails.c.sent_at)

# The hot statements, built once: SQLAlchemy then finds their compiled form by a
# cheap cache key, and the values travel as parameters.
# A claim is new, or takes over a failed one, or one whose sender went silent for
# longer than the lease (a crash between claim and the SMTP reply).
_CLAIM = text(
    """
    INSERT INTO emails (order_id, kind, recipient, message_id, status, claimed_at,
                        attempts, announced, sent_at)
    VALUES (:order_id, :kind, :recipient, :message_id, 'claimed', clock_timestamp(),
            1, false, NULL)
    ON CONFLICT (order_id, kind) DO UPDATE
        SET status = 'claimed', claimed_at = clock_timestamp(),
            attempts = emails.attempts + 1, failure = NULL
        WHERE emails.status = 'failed'
           OR (emails.status = 'claimed'
               AND emails.claimed_at < clock_timestamp() - CAST(:lease AS interval))
    RETURNING attempts
    """
)
_STATUS = select(emails.c.status).where(
    emails.c.order_id == bindparam("order_id"), emails.c.kind == bindparam("kind")
)
_OF = (emails.c.order_id == bindparam("_order_id")) & (emails.c.kind == bindparam("_kind"))
_MARK_SENT = (
    update(emails)
    .where(_OF)
    .values(status="sent", sent_at=func.clock_timestamp())
    .returning(emails.c.sent_at)
)
_MARK_FAILED = update(emails).where(_OF, emails.c.status == "claimed").values(status="failed")
_ANNOUNCE = (
    update(emails)
    .where(_OF, emails.c.status == "sent", emails.c.announced.is_(False))
    .values(announced=True)
    .returning(emails.c.order_id)
)
_FOR_ORDER = (
    select(*_PUBLIC)
    .where(emails.c.order_id == bindparam("order_id"), emails.c.status == "sent")
    .order_by(emails.c.sent_at, emails.c.kind)
)


class EmailRepository(Protocol):
    async def claim(
        self,
        *,
        order_id: UUID,
        kind: EmailKind,
        recipient: str,
        message_id: str,
        lease: timedelta,
    ) -> Claim:
        """Take the right to send this email now (``MINE``), or say why not."""

    async def mark_sent(self, *, order_id: UUID, kind: EmailKind) -> datetime:
        """The SMTP server accepted it: stamp the time."""

    async def mark_failed(self, *, order_id: UUID, kind: EmailKind, reason: str) -> None:
        """It was not sent: give the claim up, so a later attempt may take it."""

    async def announce(self, *, order_id: UUID, kind: EmailKind) -> bool:
        """True once per sent email: the caller emits ``email.sent`` in this transaction."""

    async def for_order(self, order_id: UUID) -> Sequence[SentEmail]:
        """The order's sent emails, oldest first."""


class SqlEmailRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(
        self,
        *,
        order_id: UUID,
        kind: EmailKind,
        recipient: str,
        message_id: str,
        lease: timedelta,
    ) -> Claim:
        values = {"order_id": order_id, "kind": kind}
        claimed = await self._session.execute(
            _CLAIM, {**values, "recipient": recipient, "message_id": message_id, "lease": lease}
        )
        if claimed.first() is not None:
            return Claim.MINE
        status = (await self._session.execute(_STATUS, values)).scalar_one()
        return Claim.SENT if status == "sent" else Claim.BUSY

    async def mark_sent(self, *, order_id: UUID, kind: EmailKind) -> datetime:
        result = await self._session.execute(_MARK_SENT, {"_order_id": order_id, "_kind": kind})
        sent_at: datetime = result.scalar_one()
        return sent_at

    async def mark_failed(self, *, order_id: UUID, kind: EmailKind, reason: str) -> None:
        await self._session.execute(
            _MARK_FAILED, {"_order_id": order_id, "_kind": kind, "failure": reason[:1000]}
        )

    async def announce(self, *, order_id: UUID, kind: EmailKind) -> bool:
        result = await self._session.execute(_ANNOUNCE, {"_order_id": order_id, "_kind": kind})
        return result.first() is not None

    async def for_order(self, order_id: UUID) -> Sequence[SentEmail]:
        rows = await self._session.execute(_FOR_ORDER, {"order_id": order_id})
        return [SentEmail(*row) for row in rows]
