"""Drive the inventory's handlers the way the consumer does, and read what they did."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any, cast

from events import (
    Envelope,
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    OrderLine,
    handle_delivery,
)
from events.tables import outbox
from inventory_service.adapters.repository import ReservationRepository, StockRepository
from inventory_service.adapters.tables import reservations
from inventory_service.domain import Reservation, StockLevel
from inventory_service.handlers import build_handlers
from service_kit import Runtime
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

CONSUMER = "inventory.events"
HANDLERS = build_handlers(cast(Runtime, None))  # the handlers need nothing from it

Sessions = async_sessionmaker[AsyncSession]


async def deliver(sessions: Sessions, event: Event, envelope: Envelope | None = None) -> bool:
    """What the consumer does per delivery: inbox claim + handler in one transaction.

    Returns False for a duplicate (same event id already handled).
    """
    outcome = await handle_delivery(
        sessions,
        consumer=CONSUMER,
        envelope=envelope or Envelope.wrap(event),
        event=event,
        handler=HANDLERS[type(event)],
    )
    return outcome == "handled"


def created(items: dict[str, int], order_id: uuid.UUID | None = None) -> OrderCreated:
    """order.created for ``items`` ({sku: quantity}), lines in the dict's order."""
    return created_with(tuple(line(sku, quantity) for sku, quantity in items.items()), order_id)


def created_with(lines: tuple[OrderLine, ...], order_id: uuid.UUID | None = None) -> OrderCreated:
    return OrderCreated(
        order_id=order_id or uuid.uuid4(),
        customer_id="c-1",
        email="buyer@example.com",
        items=lines,
        total=sum((line.unit_price * line.quantity for line in lines), Decimal("0")),
        currency="EUR",
        payment_token="tok_visa",
    )


def line(sku: str, quantity: int) -> OrderLine:
    return OrderLine(sku=sku, quantity=quantity, unit_price=Decimal("1.00"))


def cancelled(order_id: uuid.UUID) -> OrderCancelled:
    return OrderCancelled(
        order_id=order_id, customer_id="c-1", email="buyer@example.com", reason="payment declined"
    )


def confirmed(order: OrderCreated) -> OrderConfirmed:
    return OrderConfirmed(
        order_id=order.order_id,
        customer_id=order.customer_id,
        email=order.email,
        items=order.items,
        total=order.total,
        currency=order.currency,
    )


async def restock(sessions: Sessions, available: dict[str, int]) -> None:
    async with sessions() as session, session.begin():
        for sku, quantity in available.items():
            await StockRepository(session).set_available(sku, quantity)


async def stock_of(sessions: Sessions, sku: str) -> StockLevel | None:
    async with sessions() as session:
        return await StockRepository(session).get(sku)


async def reservation_of(sessions: Sessions, order_id: uuid.UUID) -> Reservation | None:
    async with sessions() as session:
        return await ReservationRepository(session).get(order_id)


async def count_reservations(sessions: Sessions) -> int:
    async with sessions() as session:
        query = select(func.count()).select_from(reservations)
        return int((await session.execute(query)).scalar_one())


async def emitted(sessions: Sessions, order_id: uuid.UUID | None = None) -> list[Envelope]:
    """Events written to the outbox (for one order, if given), in write order."""
    query = select(outbox.c.body).order_by(outbox.c.seq)
    if order_id is not None:
        query = query.where(outbox.c.correlation_id == str(order_id))
    async with sessions() as session:
        bodies = (await session.execute(query)).scalars().all()
    return [Envelope.model_validate(json.loads(body)) for body in bodies]


def kinds(envelopes: list[Envelope]) -> list[str]:
    return [envelope.type for envelope in envelopes]


def items_of(envelope: Envelope) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], envelope.data["items"])
