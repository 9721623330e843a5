"""What the payment tests share beyond ``events.testing``: the payments table as
it stands, and a gateway slow enough to make deliveries overlap."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

from events import Envelope
from payment_service.adapters.gateway import Authorized, Declined, PaymentGateway
from payment_service.adapters.tables import payments
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

Sessions = async_sessionmaker[AsyncSession]

CONSUMER = "payment.events"
"""The payment service's consumer name, as its inbox records it."""


async def payment_row(sessions: Sessions, order_id: UUID) -> dict[str, Any] | None:
    async with sessions() as session:
        row = (
            await session.execute(select(payments).where(payments.c.order_id == order_id))
        ).first()
        return None if row is None else dict(row._mapping)


def types(envelopes: Sequence[Envelope]) -> list[str]:
    return [envelope.type for envelope in envelopes]


class SlowGateway:
    """A gateway answering only after ``delay`` seconds: keeps the handler's
    transaction (and its payment row) open, so races really overlap."""

    def __init__(self, inner: PaymentGateway, delay: float) -> None:
        self.inner = inner
        self.delay = delay
        self.authorizing = asyncio.Event()

    async def authorize(
        self, *, order_id: UUID, amount: Decimal, currency: str, token: str
    ) -> Authorized | Declined:
        self.authorizing.set()
        await asyncio.sleep(self.delay)
        return await self.inner.authorize(
            order_id=order_id, amount=amount, currency=currency, token=token
        )

    async def void(self, authorization_id: str) -> None:
        await asyncio.sleep(self.delay)
        await self.inner.void(authorization_id)

    async def release(self, *, order_id: UUID) -> str | None:
        await asyncio.sleep(self.delay)
        return await self.inner.release(order_id=order_id)
