"""Placing an order: price it, store it with its ``order.created`` event, once per key.

Everything of one order (its row, lines, first history entry, outbox event and
idempotency key) is written in one transaction: all of it or none of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

import events
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.adapters import repository
from order_service.adapters.metrics import ORDERS
from order_service.domain import idempotency
from order_service.domain.catalogue import RequestedLine, price_lines
from order_service.domain.order import Order, StatusChange
from order_service.domain.status import OrderStatus

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    customer_id: str
    email: str
    lines: Sequence[RequestedLine]
    payment_token: str
    request_hash: str
    idempotency_key: str | None = None


class IdempotencyConflict(Exception):
    """The Idempotency-Key was first used with a different request."""


async def place_order(session: AsyncSession, command: PlaceOrder) -> Order:
    """Place the order, or return the one this idempotency key already placed.

    One transaction either way. Raises ``UnorderableLines`` (unknown or repeated
    SKUs) and ``IdempotencyConflict``.
    """
    order_id = uuid4()
    async with session.begin():
        if command.idempotency_key is not None and not await repository.claim_idempotency_key(
            session, command.idempotency_key, command.request_hash, order_id
        ):
            # Used before, or by a twin request whose commit our claim waited for:
            # either way its order is committed and visible to the next statement.
            return await _placed_earlier(session, command.idempotency_key, command.request_hash)
        order = await _place(session, command, order_id)
    ORDERS.labels(OrderStatus.PENDING.value).inc()
    with structlog.contextvars.bound_contextvars(correlation_id=str(order.id)):
        log.info("order.placed", total=str(order.total), lines=len(order.lines))
    return order


async def _place(session: AsyncSession, command: PlaceOrder, order_id: UUID) -> Order:
    prices = await repository.prices_of(session, (line.sku for line in command.lines))
    lines = price_lines(command.lines, prices)
    order = Order.place(
        id=order_id,
        customer_id=command.customer_id,
        email=command.email,
        lines=lines,
        at=datetime.now(UTC),
    )
    await repository.add_order(session, order)
    envelope = await events.add(
        session,
        events.OrderCreated(
            order_id=order.id,
            customer_id=order.customer_id,
            email=order.email,
            items=tuple(
                events.OrderLine(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price)
                for line in order.lines
            ),
            total=order.total,
            currency=order.currency,
            payment_token=command.payment_token,
        ),
    )
    change = StatusChange(OrderStatus.PENDING, order.created_at, envelope.type, envelope.id)
    order.history.append(change)
    await repository.add_status_change(session, order.id, change)
    return order


async def _placed_earlier(session: AsyncSession, key: str, request_hash: str) -> Order:
    record = await repository.find_idempotency_key(session, key)
    if record is None:  # pragma: no cover - a claimed key is never deleted
        raise RuntimeError(f"idempotency key {key!r} conflicted but cannot be found")
    with structlog.contextvars.bound_contextvars(correlation_id=str(record.order_id)):
        if not idempotency.same_request(record.request_hash, request_hash):
            log.info("order.idempotency_conflict")
            raise IdempotencyConflict(
                "this Idempotency-Key was already used with a different request body"
            )
        order = await repository.get_order(session, record.order_id)
        assert order is not None  # the key's foreign key guarantees it
        log.info("order.replayed")
        return order
