"""``/payments``: read-only; payments change only through order events."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, HTTPException
from service_kit import SessionDep

from payment_service.adapters.repository import PaymentRepository
from payment_service.api.schemas import PaymentPublic

router = APIRouter(prefix="/payments", tags=["payments"])


@router.get(
    "/{order_id}",
    response_model=PaymentPublic,
    # ``reason`` only appears when there is one (DECLINED).
    response_model_exclude_none=True,
    responses={404: {"description": "No payment for this order (yet)."}},
)
async def get_payment(order_id: UUID, session: SessionDep) -> PaymentPublic:
    payment = await PaymentRepository(session).get(order_id)
    # A tombstone is bookkeeping, not a payment: to a caller it does not exist.
    if payment is None or not payment.is_public:
        raise HTTPException(status_code=404, detail=f"no payment for order {order_id}")
    return PaymentPublic.from_payment(payment)
