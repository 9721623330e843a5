"""Helpers for the order service's integration tests."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from events import Envelope, Event, MessageContext
from events.tables import outbox
from order_service.adapters.tables import idempotency_keys, order_history, order_lines, orders
from order_service.checkout import PlaceOrder, place_order
from order_service.domain.catalogue import RequestedLine
from order_service.domain.idempotency import fingerprint
from order_service.handlers import build_handlers
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

HANDLERS = build_handlers(None)  # type: ignore[arg-type]  # needs nothing from the runtime


def order_body(**changes: Any) -> dict[str, Any]:
    return {
        "customer_id": "cust-42",
        "email": "buyer@example.com",
        "items": [{"sku": "KEYBOARD-01", "quantity": 2}, {"sku": "USB-C-HUB", "quantity": 1}],
        "payment_token": "tok_visa",
    } | changes


async def place(sessions: async_sessionmaker[AsyncSession], *lines: tuple[str, int]) -> UUID:
    """Place an order straight through the checkout (no HTTP)."""
    requested = [RequestedLine(sku, qty) for sku, qty in lines or (("KEYBOARD-01", 1),)]
    async with sessions() as session:
        order = await place_order(
            session,
            PlaceOrder(
                customer_id="cust-42",
                email="buyer@example.com",
                lines=requested,
                payment_token="tok_visa",
                request_hash=fingerprint({}),
            ),
        )
    return order.id


async def deliver(sessions: async_sessionmaker[AsyncSession], event: Event) -> Envelope:
    """Handle ``event`` as the consumer would: its own transaction, a MessageContext."""
    envelope = Envelope.wrap(event)
    async with sessions() as session, session.begin():
        await HANDLERS[type(event)](event, MessageContext(session, envelope, retries=0))
    return envelope


async def outbox_rows(
    sessions: async_sessionmaker[AsyncSession], routing_key: str | None = None
) -> list[dict[str, Any]]:
    """Bodies (decoded envelopes) of the outbox rows, oldest first."""
    query = select(outbox.c.body).order_by(outbox.c.seq)
    if routing_key is not None:
        query = query.where(outbox.c.routing_key == routing_key)
    async with sessions() as session:
        return [json.loads(body) for body in (await session.execute(query)).scalars()]


async def count_rows(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    counts = {}
    async with sessions() as session:
        for table in (orders, order_lines, order_history, idempotency_keys, outbox):
            query = select(func.count()).select_from(table)
            counts[table.name] = int((await session.execute(query)).scalar_one())
    return counts


def orders_counted(status: str) -> float:
    return REGISTRY.get_sample_value("orders_total", {"status": status}) or 0.0
