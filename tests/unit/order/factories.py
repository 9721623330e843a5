"""Small builders for the order domain's unit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

from order_service.domain.catalogue import OrderLine
from order_service.domain.order import Order, StatusChange
from order_service.domain.outcomes import (
    Outcome,
    payment_authorized,
    payment_declined,
    stock_rejected,
    stock_reserved,
)

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

RESERVED = stock_reserved()
REJECTED = stock_rejected(["MONITOR-27", "MOUSE-01"])
AUTHORIZED = payment_authorized()
DECLINED = payment_declined("card declined")

EVENT_TYPES = {
    RESERVED: "inventory.reserved",
    REJECTED: "inventory.rejected",
    AUTHORIZED: "payment.authorized",
    DECLINED: "payment.declined",
}


def new_order(*lines: OrderLine) -> Order:
    return Order.place(
        id=uuid4(),
        customer_id="cust-1",
        email="buyer@example.com",
        lines=lines or (OrderLine("KEYBOARD-01", 2, Decimal("89.00")),),
        at=T0,
        deadline=timedelta(minutes=10),
    )


def deliver(
    order: Order, outcome: Outcome, minute: int = 1, event_id: UUID | None = None
) -> StatusChange | None:
    """The status change an outcome causes, if any."""
    return order.record(
        outcome,
        at=T0 + timedelta(minutes=minute),
        event_type=EVENT_TYPES[outcome],
        event_id=event_id or uuid4(),
    ).change
