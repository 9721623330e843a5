"""Helpers for the order service's integration tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from events import Envelope, Event, Handler, transaction
from events.testing import Delivery, deliver, outbox_events
from order_service import service_layer
from order_service.adapters.repository import SqlOrderRepository
from order_service.adapters.tables import idempotency_keys, order_history, order_lines, orders
from order_service.dependencies import Dependencies
from order_service.domain.catalogue import RequestedLine
from order_service.domain.idempotency import fingerprint
from order_service.domain.order import Order
from order_service.service import SERVICE
from order_service.unit_of_work import SqlUnitOfWork
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.tokens import sealer

Sessions = async_sessionmaker[AsyncSession]

# The queue the app's consumer reads, and so the inbox's consumer name.
CONSUMER = SERVICE.topology.queue(SERVICE.name).name
DEPENDENCIES = Dependencies(
    payment_tokens=sealer(), deadline=timedelta(minutes=10), idempotency_ttl=timedelta(hours=24)
)


def handler(event: Event) -> Handler[Event]:
    """The order service's handler of ``event``, as the consumer runs it."""
    return SERVICE.handler_for(type(event), DEPENDENCIES)


async def handle(sessions: Sessions, event: Event, *, envelope: Envelope | None = None) -> Delivery:
    """``events.testing.deliver`` through the event's handler, under the consumer's name."""
    return await deliver(sessions, handler(event), event, envelope=envelope, consumer=CONSUMER)


def order_body(**changes: Any) -> dict[str, Any]:
    return {
        "customer_id": "cust-42",
        "email": "buyer@example.com",
        "items": [{"sku": "KEYBOARD-01", "quantity": 2}, {"sku": "USB-C-HUB", "quantity": 1}],
        "payment_token": "tok_visa",
    } | changes


async def place(sessions: Sessions, *lines: tuple[str, int]) -> UUID:
    """Place an order straight through the service layer (no HTTP), as the route does."""
    requested = [RequestedLine(sku, qty) for sku, qty in lines or (("KEYBOARD-01", 1),)]
    async with transaction(sessions) as tx:
        order = await service_layer.place_order(
            SqlUnitOfWork(tx),
            service_layer.PlaceOrder(
                customer_id="cust-42",
                email="buyer@example.com",
                lines=requested,
                payment_token="tok_visa",
                request_hash=fingerprint({}),
            ),
            DEPENDENCIES,
        )
    return order.id


async def order_of(sessions: Sessions, order_id: UUID) -> Order:
    async with sessions() as session:
        order = await SqlOrderRepository(session).get(order_id)
    assert order is not None, f"no order {order_id}"
    return order


async def emitted(sessions: Sessions, event_type: str | None = None) -> list[Envelope]:
    """Envelopes in the outbox (of one type, if given), oldest first."""
    return [e for e in await outbox_events(sessions) if event_type in (None, e.type)]


async def count_rows(sessions: Sessions) -> dict[str, int]:
    counts = {}
    async with sessions() as session:
        for table in (orders, order_lines, order_history, idempotency_keys):
            query = select(func.count()).select_from(table)
            counts[table.name] = int((await session.execute(query)).scalar_one())
    counts["outbox"] = len(await outbox_events(sessions))
    return counts


def orders_counted(status: str) -> float:
    return REGISTRY.get_sample_value("orders_total", {"status": status}) or 0.0


async def outbox_texts(sessions: async_sessionmaker[AsyncSession]) -> str:
    """Every outbox row as the database holds it (body and headers), in one string."""
    async with sessions() as session:
        rows = await session.execute(text("SELECT body, headers::text FROM outbox"))
        return "\n".join(f"{body}\t{headers}" for body, headers in rows)
