"""The events of the shop, as typed, versioned payloads.

Names are past tense: each one records something that happened. Events carry the
state their consumers need (event-carried state transfer), so no consumer has to
call another service back.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field, PlainSerializer

# Money travels as a decimal string ("12.50"), never a float.
Money = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2), PlainSerializer(str)]
Sku = Annotated[str, Field(min_length=1, max_length=64)]
Quantity = Annotated[int, Field(ge=1, le=1000)]
EmailKind = Literal["received", "confirmed", "cancelled"]


class Event(BaseModel):
    """Base of every event payload. ``TYPE`` is also the AMQP routing key."""

    # Tolerant reader: unknown fields are ignored so producers can add fields
    # within a schema version; a breaking change gets a new VERSION.
    model_config = ConfigDict(frozen=True, extra="ignore")

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1

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


class OrderCreated(Event):
    TYPE = "order.created"
    customer_id: str = Field(min_length=1, max_length=64)
    email: EmailStr
    items: tuple[OrderLine, ...] = Field(min_length=1)
    total: Money
    currency: str = Field(min_length=3, max_length=3)
    payment_token: str = Field(min_length=1, max_length=128)


class OrderConfirmed(Event):
    TYPE = "order.confirmed"
    customer_id: str
    email: EmailStr
    items: tuple[OrderLine, ...]
    total: Money
    currency: str


class OrderCancelled(Event):
    TYPE = "order.cancelled"
    customer_id: str
    email: EmailStr
    reason: str


class InventoryReserved(Event):
    TYPE = "inventory.reserved"
    items: tuple[StockLine, ...]


class InventoryRejected(Event):
    TYPE = "inventory.rejected"
    missing_skus: tuple[str, ...]
    reason: str


class InventoryReleased(Event):
    TYPE = "inventory.released"
    items: tuple[StockLine, ...]


class PaymentAuthorized(Event):
    TYPE = "payment.authorized"
    amount: Money
    currency: str
    authorization_id: str


class PaymentDeclined(Event):
    TYPE = "payment.declined"
    amount: Money
    reason: str


class PaymentVoided(Event):
    TYPE = "payment.voided"
    amount: Money


class EmailSent(Event):
    TYPE = "email.sent"
    kind: EmailKind
    to: EmailStr


ALL_EVENTS: tuple[type[Event], ...] = (
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
