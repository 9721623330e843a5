"""Reading and writing payments, inside the caller's transaction."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from sqlalchemy import Row, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from payment_service.adapters.tables import payments
from payment_service.domain import Payment, PaymentStatus

# Built once: SQLAlchemy then finds the compiled form by a cheap cache key, and
# the values travel as parameters.
_OPEN = (
    insert(payments)
    .on_conflict_do_nothing(index_elements=[payments.c.order_id])
    .returning(payments.c.order_id)
)
_PAYMENT_OF = select(payments).where(payments.c.order_id == bindparam("order_id"))
_LOCK = _PAYMENT_OF.with_for_update()
_SAVE = (
    payments.update()
    .where(payments.c.order_id == bindparam("_order_id"))
    .values(updated_at=func.now())
)


class PaymentRepository(Protocol):
    async def open(self, placeholder: Payment) -> tuple[Payment, bool]:
        """The order's payment, locked for this transaction; ``placeholder`` if it had
        none (then ``True``: it was just created)."""

    async def save(self, payment: Payment) -> None:
        """Write the status change of a payment locked by ``open``."""

    async def get(self, order_id: UUID) -> Payment | None: ...


class SqlPaymentRepository:
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
            _OPEN,
            {
                "order_id": placeholder.order_id,
                "status": placeholder.status.value,
                "amount": placeholder.amount,
                "currency": placeholder.currency,
            },
        )
        opened = inserted.first() is not None
        row = (await self._session.execute(_LOCK, {"order_id": placeholder.order_id})).one()
        return _to_payment(row), opened

    async def save(self, payment: Payment) -> None:
        """Write the status change of a payment locked by ``open``."""
        await self._session.execute(
            _SAVE,
            {
                "_order_id": payment.order_id,
                "status": payment.status.value,
                "reason": payment.reason,
                "authorization_id": payment.authorization_id,
            },
        )

    async def get(self, order_id: UUID) -> Payment | None:
        row = (await self._session.execute(_PAYMENT_OF, {"order_id": order_id})).first()
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
