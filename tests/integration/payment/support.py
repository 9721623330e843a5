"""Drive the payment handlers as the consumer does: one real transaction each."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any
from uuid import UUID

from events import (
    Envelope,
    MessageContext,
    OrderCancelled,
    OrderCreated,
    OrderLine,
    handle_delivery,
)
from events.catalogue import Event
from events.tables import outbox
from payment_service.adapters.gateway import Authorized, Declined
from payment_service.adapters.sandbox_gateway import SandboxGateway
from payment_service.adapters.tables import payments
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

Sessions = async_sessionmaker[AsyncSession]
Handler = Callable[[Any, MessageContext], Awaitable[None]]


def order_created(
    token: str = "tok_visa", total: str = "12.50", order_id: UUID | None = None
) -> OrderCreated:
    return OrderCreated(
        order_id=order_id or uuid.uuid4(),
        customer_id="c-1",
        email="buyer@example.com",
        items=(OrderLine(sku="SKU-1", quantity=1, unit_price=Decimal(total)),),
        total=Decimal(total),
        currency="EUR",
        payment_token=token,
    )


def order_cancelled(order_id: UUID) -> OrderCancelled:
    return OrderCancelled(
        order_id=order_id, customer_id="c-1", email="buyer@example.com", reason="out of stock"
    )


async def deliver(sessions: Sessions, handler: Handler, event: Event) -> Envelope:
    """Run ``handler`` as the consumer does: its own transaction, inbox claim included."""
    envelope = Envelope.wrap(event)
    await handle_delivery(
        sessions, consumer="payment.events", envelope=envelope, event=event, handler=handler
    )
    return envelope


async def payment_row(sessions: Sessions, order_id: UUID) -> dict[str, Any] | None:
    async with sessions() as session:
        row = (
            await session.execute(select(payments).where(payments.c.order_id == order_id))
        ).first()
        return None if row is None else dict(row._mapping)


async def emitted(sessions: Sessions, order_id: UUID) -> list[Envelope]:
    """The events written to the outbox for ``order_id``, oldest first."""
    async with sessions() as session:
        bodies = (
            await session.execute(
                select(outbox.c.body)
                .where(outbox.c.correlation_id == str(order_id))
                .order_by(outbox.c.seq)
            )
        ).scalars()
        return [Envelope.model_validate(json.loads(body)) for body in bodies]


def types(envelopes: list[Envelope]) -> list[str]:
    return [envelope.type for envelope in envelopes]


class SlowGateway:
    """The sandbox, answering only after ``delay`` seconds: keeps the handler's
    transaction (and its payment row) open, so races really overlap."""

    def __init__(self, inner: SandboxGateway, delay: float) -> None:
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
