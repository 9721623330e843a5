"""Reading and writing payments, inside the caller's transaction."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import Row, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from payment_service.adapters.tables import payments
from payment_service.domain import Payment, PaymentStatus


class PaymentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def open(self, placeholder: Payment) -> tuple[Payment, bool]:
        """Insert ``placeholder`` unless its order has a payment; lock and return the row.

        Returns ``(payment, opened)``; ``opened`` says the placeholder was inserted.
        A concurrent handler for the same order that inserted first makes the
        INSERT wait for its transaction: once it commits we lock its row, if it
        rolls back ours goes in. Either way exactly one handler at a time decides.
        """
        inserted = await self._session.execute(
            insert(payments)
            .values(
                order_id=placeholder.order_id,
                status=placeholder.status.value,
                amount=placeholder.amount,
                currency=placeholder.currency,
            )
            .on_conflict_do_nothing(index_elements=[payments.c.order_id])
            .returning(payments.c.order_id)
        )
        opened = inserted.first() is not None
        row = (
            await self._session.execute(
                select(payments)
                .where(payments.c.order_id == placeholder.order_id)
                .with_for_update()
            )
        ).one()
        return _to_payment(row), opened

    async def save(self, payment: Payment) -> None:
        """Write the status change of a payment locked by ``open``."""
        await self._session.execute(
            payments.update()
            .where(payments.c.order_id == payment.order_id)
            .values(
                status=payment.status.value,
                reason=payment.reason,
                authorization_id=payment.authorization_id,
                updated_at=func.now(),
            )
        )

    async def get(self, order_id: UUID) -> Payment | None:
        row = (
            await self._session.execute(select(payments).where(payments.c.order_id == order_id))
        ).first()
        return None if row is None else _to_payment(row)


def _to_payment(row: Row[tuple[object, ...]]) -> Payment:
    values = row._mapping
    return Payment(
        order_id=values["order_id"],
        status=PaymentStatus(values["status"]),
        amount=values["amount"],
        currency=values["currency"],
        reason=values["reason"],
        authorization_id=values["authorization_id"],
    )
