"""Drive the inventory's handlers the way the consumer does, and read what they did."""

from __future__ import annotations

import uuid
from typing import Any, cast

from events import Envelope, Event, Handler
from events.testing import Delivery, deliver, outbox_events
from inventory_service.adapters.repository import SqlReservationRepository, SqlStockRepository
from inventory_service.adapters.tables import reservations
from inventory_service.dependencies import Dependencies
from inventory_service.domain import Reservation, StockLevel
from inventory_service.service import SERVICE
from shop_contract import OrderLine
from shop_contract.testing import line
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

# The queue the app's consumer reads, and so the inbox's consumer name.
CONSUMER = SERVICE.topology.queue(SERVICE.name).name
DEPENDENCIES = Dependencies()

Sessions = async_sessionmaker[AsyncSession]


def handler(event: Event) -> Handler[Event]:
    """The inventory's handler of ``event``, as the consumer runs it."""
    return SERVICE.handler_for(type(event), DEPENDENCIES)


async def handle(sessions: Sessions, event: Event, *, envelope: Envelope | None = None) -> Delivery:
    """``events.testing.deliver`` through the event's handler, under the consumer's name."""
    return await deliver(sessions, handler(event), event, envelope=envelope, consumer=CONSUMER)


def lines(items: dict[str, int]) -> tuple[OrderLine, ...]:
    """Order lines for ``items`` ({sku: quantity}), in the dict's order."""
    return tuple(line(sku, quantity) for sku, quantity in items.items())


async def restock(sessions: Sessions, available: dict[str, int]) -> None:
    async with sessions() as session, session.begin():
        for sku, quantity in available.items():
            await SqlStockRepository(session).set_available(sku, quantity)


async def stock_of(sessions: Sessions, sku: str) -> StockLevel | None:
    async with sessions() as session:
        return await SqlStockRepository(session).get(sku)


async def reservation_of(sessions: Sessions, order_id: uuid.UUID) -> Reservation | None:
    async with sessions() as session:
        return await SqlReservationRepository(session).get(order_id)


async def count_reservations(sessions: Sessions) -> int:
    async with sessions() as session:
        query = select(func.count()).select_from(reservations)
        return int((await session.execute(query)).scalar_one())


async def emitted(sessions: Sessions, order_id: uuid.UUID | None = None) -> list[Envelope]:
    """Events written to the outbox (for one order, if given), in write order."""
    return await outbox_events(sessions, None if order_id is None else str(order_id))


def kinds(envelopes: list[Envelope]) -> list[str]:
    return [envelope.type for envelope in envelopes]


def items_of(envelope: Envelope) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], envelope.data["items"])
