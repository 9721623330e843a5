"""``/payments``: read-only; payments change only through order events."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, HTTPException
from service_kit import AUTH_RESPONSES, DatabaseDep, OperatorDep

from payment_service import service_layer
from payment_service.api.schemas import PaymentPublic
from payment_service.unit_of_work import SqlUnitOfWork

router = APIRouter(prefix="/payments", tags=["payments"])


@router.get(
    "/{order_id}",
    response_model=PaymentPublic,
    # ``reason`` only appears when there is one (DECLINED).
    response_model_exclude_none=True,
    responses={404: {"description": "No payment for this order (yet)."}, **AUTH_RESPONSES},
)
async def get_payment(order_id: UUID, db: DatabaseDep, _operator: OperatorDep) -> PaymentPublic:
    """The order's payment (operators)."""
    async with db.unit_of_work(SqlUnitOfWork) as uow:
        payment = await service_layer.payment_of(uow, order_id)
    if payment is None:
        raise HTTPException(status_code=404, detail=f"no payment for order {order_id}")
    return PaymentPublic.from_payment(payment)
