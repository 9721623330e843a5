"""The events of the shop, as typed, versioned payloads.

Names are past tense: each one records something that happened. Events carry the
state their consumers need (event-carried state transfer), so no consumer has to
call another service back. Every one is about one order: ``order_id`` is the
correlation id that ties an order's events together.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from events import Event
from pydantic import BaseModel, ConfigDict, EmailStr, Field, PlainSerializer

# Money travels as a decimal string ("12.50"), never a float.
Money = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2), PlainSerializer(str)]
Sku = Annotated[str, Field(min_length=1, max_length=64)]
Quantity = Annotated[int, Field(ge=1, le=1000)]
EmailKind = Literal["received", "confirmed", "cancelled"]


class OrderEvent(Event):
    """Base of the shop's events: each is about one order. ``TYPE`` is its routing key."""

    CORRELATED_BY: ClassVar[str | None] = "order_id"

    order_id: UUID


class OrderLine(BaseModel):
    model_config = ConfigDict(frozen=True)
    sku: Sku
    quantity: Quantity
    unit_price: Money


class StockLine(BaseModel):
    model_config = ConfigDict(frozen=True)
    sku: Sku
    quantity: Quantity


class OrderCreated(OrderEvent):
    TYPE = "order.created"
    customer_id: str = Field(min_length=1, max_length=64)
    email: EmailStr
    items: tuple[OrderLine, ...] = Field(min_length=1)
    total: Money
    currency: str = Field(min_length=3, max_length=3)
    # The customer's card token, sealed for the payment service alone (a JWE for its
    # public key): inventory, email, the outbox and any DLQ see only ciphertext.
    sealed_payment_token: str = Field(min_length=1, max_length=4096)


class OrderConfirmed(OrderEvent):
    TYPE = "order.confirmed"
    customer_id: str
    email: EmailStr
    items: tuple[OrderLine, ...]
    total: Money
    currency: str


class OrderCancelled(OrderEvent):
    TYPE = "order.cancelled"
    customer_id: str
    email: EmailStr
    reason: str


class InventoryReserved(OrderEvent):
    TYPE = "inventory.reserved"
    items: tuple[StockLine, ...]


class InventoryRejected(OrderEvent):
    TYPE = "inventory.rejected"
    missing_skus: tuple[str, ...]
    reason: str


class InventoryReleased(OrderEvent):
    TYPE = "inventory.released"
    items: tuple[StockLine, ...]


class PaymentAuthorized(OrderEvent):
    TYPE = "payment.authorized"
    amount: Money
    currency: str
    authorization_id: str


class PaymentDeclined(OrderEvent):
    TYPE = "payment.declined"
    amount: Money
    reason: str


class PaymentVoided(OrderEvent):
    TYPE = "payment.voided"
    amount: Money


class EmailSent(OrderEvent):
    TYPE = "email.sent"
    kind: EmailKind
    to: EmailStr


ALL_EVENTS: tuple[type[OrderEvent], ...] = (
    OrderCreated,
    OrderConfirmed,
    OrderCancelled,
    InventoryReserved,
    InventoryRejected,
    InventoryReleased,
    PaymentAuthorized,
    PaymentDeclined,
    PaymentVoided,
    EmailSent,
)
