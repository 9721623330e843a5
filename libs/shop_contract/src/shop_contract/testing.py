"""Factories of the shop's events, for tests of any service or tool.

Every argument has a sensible default, so a test names only what it is about:
``order_created(token="tok_chargeDeclined")``, ``order_cancelled(order.order_id)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Protocol
from uuid import UUID, uuid4

from shop_contract.catalogue import (
    InventoryRejected,
    InventoryReserved,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    OrderLine,
    PaymentAuthorized,
    PaymentDeclined,
    StockLine,
)

__all__ = [
    "LINES",
    "inventory_rejected",
    "inventory_reserved",
    "line",
    "order_cancelled",
    "order_confirmed",
    "order_created",
    "payment_authorized",
    "payment_declined",
]


class Sealer(Protocol):
    def seal(self, secret: str) -> str: ...


def line(sku: str = "KEYBOARD-01", quantity: int = 1, unit_price: str = "89.00") -> OrderLine:
    return OrderLine(sku=sku, quantity=quantity, unit_price=Decimal(unit_price))


LINES = (line("SKU-1", 2, "9.99"), line("SKU-2", 1, "5.00"))


def order_created(
    order_id: UUID | None = None,
    *,
    items: Iterable[OrderLine] = LINES,
    token: str = "tok_visa",  # noqa: S107 (a sandbox card token)
    customer_id: str = "c-42",
    email: str = "buyer@example.com",
    total: Decimal | None = None,
    sealer: Sealer | None = None,
) -> OrderCreated:
    """``sealer``: seal ``token`` for the payment service (its tests need one); without
    it the token rides as is, for services that never open it."""
    lines = tuple(items)
    return OrderCreated(
        order_id=order_id or uuid4(),
        customer_id=customer_id,
        email=email,
        items=lines,
        total=total
        if total is not None
        else sum((x.quantity * x.unit_price for x in lines), Decimal(0)),
        currency="EUR",
        sealed_payment_token=sealer.seal(token) if sealer is not None else token,
    )


def order_confirmed(
    order_id: UUID | None = None,
    *,
    items: Iterable[OrderLine] = LINES,
    customer_id: str = "c-42",
    email: str = "buyer@example.com",
) -> OrderConfirmed:
    created = order_created(order_id, items=items, customer_id=customer_id, email=email)
    return OrderConfirmed(
        order_id=created.order_id,
        customer_id=created.customer_id,
        email=created.email,
        items=created.items,
        total=created.total,
        currency=created.currency,
    )


def order_cancelled(
    order_id: UUID | None = None,
    *,
    reason: str = "payment declined: card declined",
    customer_id: str = "c-42",
    email: str = "buyer@example.com",
) -> OrderCancelled:
    return OrderCancelled(
        order_id=order_id or uuid4(), customer_id=customer_id, email=email, reason=reason
    )


def inventory_reserved(order_id: UUID, *, items: Iterable[OrderLine] = LINES) -> InventoryReserved:
    return InventoryReserved(
        order_id=order_id,
        items=tuple(StockLine(sku=x.sku, quantity=x.quantity) for x in items),
    )


def inventory_rejected(
    order_id: UUID, *, missing: tuple[str, ...] = ("SKU-1",), reason: str = "insufficient stock"
) -> InventoryRejected:
    return InventoryRejected(order_id=order_id, missing_skus=missing, reason=reason)


def payment_authorized(
    order_id: UUID, *, amount: str = "24.98", authorization_id: str = "auth_test"
) -> PaymentAuthorized:
    return PaymentAuthorized(
        order_id=order_id,
        amount=Decimal(amount),
        currency="EUR",
        authorization_id=authorization_id,
    )


def payment_declined(
    order_id: UUID, *, amount: str = "24.98", reason: str = "card declined"
) -> PaymentDeclined:
    return PaymentDeclined(order_id=order_id, amount=Decimal(amount), reason=reason)
