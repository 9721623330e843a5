"""What the payment API answers."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from payment_service.domain import Payment

# Money is a decimal string ("12.50"), never a float.
Money = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2), PlainSerializer(str)]


class PaymentPublic(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    order_id: UUID
    status: Literal["AUTHORIZED", "DECLINED", "VOIDED"]
    amount: Money
    reason: str | None = Field(
        default=None, max_length=500, description="Why the gateway declined (DECLINED only)."
    )

    @classmethod
    def from_payment(cls, payment: Payment) -> PaymentPublic:
        return cls.model_validate(
            {
                "order_id": payment.order_id,
                "status": payment.status.value,
                "amount": payment.amount,
                "reason": payment.reason,
            }
        )
