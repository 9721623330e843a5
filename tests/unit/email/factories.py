"""Order events as the email service receives them."""

from __future__ import annotations

import uuid
from decimal import Decimal

from events import OrderCancelled, OrderConfirmed, OrderCreated, OrderLine

SCRIPT = "<script>alert('x')</script>"
LINES = (
    OrderLine(sku="SKU-1", quantity=2, unit_price=Decimal("9.99")),
    OrderLine(sku="SKU-2", quantity=1, unit_price=Decimal("5.00")),
)


def order_created(
    order_id: uuid.UUID | None = None,
    *,
    customer_id: str = "c-42",
    email: str = "buyer@example.com",
    lines: tuple[OrderLine, ...] = LINES,
) -> OrderCreated:
    return OrderCreated(
        order_id=order_id or uuid.uuid4(),
        customer_id=customer_id,
        email=email,
        items=lines,
        total=sum((line.quantity * line.unit_price for line in lines), Decimal("0")),
        currency="EUR",
        payment_token="tok_visa",
    )


def order_confirmed(order_id: uuid.UUID | None = None, **kwargs: object) -> OrderConfirmed:
    created = order_created(order_id, **kwargs)  # type: ignore[arg-type]
    return OrderConfirmed(
        order_id=created.order_id,
        customer_id=created.customer_id,
        email=created.email,
        items=created.items,
        total=created.total,
        currency=created.currency,
    )


def order_cancelled(
    order_id: uuid.UUID | None = None,
    *,
    customer_id: str = "c-42",
    email: str = "buyer@example.com",
    reason: str = "payment declined: card declined",
) -> OrderCancelled:
    return OrderCancelled(
        order_id=order_id or uuid.uuid4(),
        customer_id=customer_id,
        email=email,
        reason=reason,
    )
