"""What goes over HTTP: ``XCreate`` comes in (strict, bounded), ``XPublic`` goes out."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    PlainSerializer,
    StrictInt,
)
from pydantic_core import PydanticCustomError
from service_kit.inputs import Storable

from order_service.domain.catalogue import OrderLine, Product, RequestedLine
from order_service.domain.order import Order, StatusChange
from order_service.domain.status import OrderStatus

MAX_LINES = 50

# Money leaves as a decimal string with two places ("89.00"), never a float.
Money = Annotated[
    Decimal,
    PlainSerializer(lambda amount: f"{amount:.2f}", return_type=str),
    Field(examples=["89.00"]),
]
Sku = Annotated[str, Field(min_length=1, max_length=64, examples=["KEYBOARD-01"]), Storable]


def _not_oversized(value: Any) -> Any:
    # Checked before the lines themselves are validated: a huge order is refused
    # as a whole, with one clear error instead of one per line.
    if isinstance(value, list) and len(value) > MAX_LINES:
        raise PydanticCustomError(
            "order_oversized",
            "order is oversized: at most {max_lines} lines, got {lines}",
            {"max_lines": MAX_LINES, "lines": len(value)},
        )
    return value


class OrderLineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Sku
    quantity: Annotated[StrictInt, Field(ge=1, le=1000)]  # strict: no bools, floats or "2"


class OrderCreate(BaseModel):
    """A new order. The same SKU may appear on one line only (else 422)."""

    model_config = ConfigDict(extra="forbid")

    # Storable: no NUL or lone surrogate, which PostgreSQL or UTF-8 cannot take (a 500).
    customer_id: Annotated[str, Field(min_length=1, max_length=64), Storable]
    email: Annotated[EmailStr, Field(max_length=254)]
    items: Annotated[
        list[OrderLineCreate],
        Field(min_length=1, max_length=MAX_LINES),
        BeforeValidator(_not_oversized),
    ]
    payment_token: Annotated[str, Field(min_length=1, max_length=128), Storable]

    def requested_lines(self) -> tuple[RequestedLine, ...]:
        return tuple(RequestedLine(line.sku, line.quantity) for line in self.items)


class ProductPublic(BaseModel):
    sku: str
    name: str
    price: Money

    @classmethod
    def of(cls, product: Product) -> ProductPublic:
        return cls(sku=product.sku, name=product.name, price=product.price)


class OrderLinePublic(BaseModel):
    sku: str
    quantity: int
    unit_price: Money

    @classmethod
    def of(cls, line: OrderLine) -> OrderLinePublic:
        return cls(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price)


class OrderAccepted(BaseModel):
    """The receipt of ``POST /orders``: the order as it was accepted.

    A replay with the same Idempotency-Key gets the same receipt; the order's
    current state is at ``GET /orders/{id}``.
    """

    id: UUID
    status: OrderStatus
    items: list[OrderLinePublic]
    total: Money
    currency: str
    created_at: datetime

    @classmethod
    def of(cls, order: Order) -> OrderAccepted:
        return cls(
            id=order.id,
            status=OrderStatus.PENDING,
            items=[OrderLinePublic.of(line) for line in order.lines],
            total=order.total,
            currency=order.currency,
            created_at=order.created_at,
        )


class StatusChangePublic(BaseModel):
    status: OrderStatus
    at: datetime
    event_type: str = Field(examples=["order.created"])
    event_id: UUID

    @classmethod
    def of(cls, change: StatusChange) -> StatusChangePublic:
        return cls(
            status=change.status,
            at=change.at,
            event_type=change.event_type,
            event_id=change.event_id,
        )


class OrderPublic(BaseModel):
    id: UUID
    customer_id: str
    status: OrderStatus
    reason: str | None = Field(description="Why the order was cancelled; null otherwise.")
    items: list[OrderLinePublic]
    total: Money
    currency: str
    created_at: datetime
    updated_at: datetime
    history: list[StatusChangePublic]

    @classmethod
    def of(cls, order: Order) -> OrderPublic:
        return cls(
            id=order.id,
            customer_id=order.customer_id,
            status=order.status,
            reason=order.reason,
            items=[OrderLinePublic.of(line) for line in order.lines],
            total=order.total,
            currency=order.currency,
            created_at=order.created_at,
            updated_at=order.updated_at,
            history=[StatusChangePublic.of(change) for change in order.history],
        )
